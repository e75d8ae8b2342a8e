"""Every spec in specs/ (and the layer zoo) at every cross-check size: nnspec's shapes and
params against the exported Keras model, its MACs against PyTorch's FlopCounterMode on the
exported torch model, and both exported models computing the same values.

Each test compares nnspec with what a real framework reports; none compares nnspec with itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from crosscheck_harness import Case, Mismatches, keras_param_gap, output_shapes

from analyzer.graph import output_reference


def keras_count(weights) -> int:
    return sum(math.prod(w.shape) for w in weights)


def test_output_shapes_match_both_frameworks(case: Case) -> None:
    m = Mismatches(case, "output shapes (without the batch axis)")
    for x in case.plan.inputs:
        m.compare(x, "input shape", x.shape, tuple(case.keras_layer(x.name).output.shape[1:]), "keras")
    for row in case.layers():  # a layer with several outputs (return_state): the tuple of their shapes
        ours = row.output_shapes if row.more_outputs else row.output_shape
        m.compare(row, "output shape", ours, output_shapes(case.keras_layer(row.name).output), "keras", None)
    for row in case.layers():  # torch's, from forward hooks (harness.run_torch_once)
        ours = row.output_shapes if row.more_outputs else row.output_shape
        m.compare(row, "output shape", ours, case.torch_shapes.get(row.name), "torch")
    m.check()


def test_params_match_keras(case: Case) -> None:
    m = Mismatches(case, "params")
    gaps = 0
    for row in case.layers():
        layer = case.keras_layer(row.name)
        c = row.counts
        gap = keras_param_gap(row)  # cudnn_compatible's second bias: no Keras 3 layer has it
        gaps += gap
        m.compare(row, "params", case.value(c.params), layer.count_params() + gap, "keras count_params()", c.params)
        m.compare(row, "trainable params", case.value(c.trainable_params), keras_count(layer.trainable_weights) + gap,
                  "keras trainable_weights", c.trainable_params)
        m.compare(row, "non-trainable params", case.value(c.non_trainable_params), keras_count(layer.non_trainable_weights),
                  "keras non_trainable_weights", c.non_trainable_params)
    total, model = case.report.total, case.keras_model
    m.compare(None, "params", case.value(total.params), model.count_params() + gaps, "keras count_params()", total.params)
    m.compare(None, "trainable params", case.value(total.trainable_params), keras_count(model.trainable_weights) + gaps,
              "keras trainable_weights", total.trainable_params)
    m.compare(None, "non-trainable params", case.value(total.non_trainable_params), keras_count(model.non_trainable_weights),
              "keras non_trainable_weights", total.non_trainable_params)
    m.check()


def test_flop_counter_counts_twice_the_macs(case: Case) -> None:
    """FlopCounterMode counts 2 per multiply-accumulate of conv / matmul (batch 1), nothing else."""
    m = Mismatches(case, "2 x MACs vs torch.utils.flop_counter.FlopCounterMode")
    for row in case.layers():  # counted per module name in harness.run_torch_once
        m.compare(row, "2 x MACs", 2 * case.value(row.counts.macs), case.flop_counts[row.name], "FlopCounterMode",
                  2 * row.counts.macs)
    total = case.report.total.macs
    m.compare(None, "2 x MACs", 2 * case.value(total), case.flop_total, "FlopCounterMode", 2 * total)
    m.check()


def torch_params(module: torch.nn.Module) -> tuple[int, int]:
    """(trainable, non-trainable) as Keras splits them: frozen params and the running statistics of
    batch normalization are non-trainable (num_batches_tracked is torch bookkeeping, not a weight)."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
    stats = sum(b.numel() for n, b in module.named_buffers() if n.endswith(("running_mean", "running_var")))
    return trainable, frozen + stats


def test_torch_params_match(case: Case) -> None:
    """The torch model has the params nnspec counts (and so Keras', checked above), split the same way."""
    m = Mismatches(case, "torch params")
    for row in case.layers():
        trainable, non_trainable = torch_params(case.torch_module(row.name))
        c = row.counts
        m.compare(row, "trainable params", case.value(c.trainable_params), trainable, "torch", c.trainable_params)
        m.compare(row, "non-trainable params", case.value(c.non_trainable_params), non_trainable, "torch",
                  c.non_trainable_params)
    total = case.report.total
    trainable, non_trainable = torch_params(case.torch_model)
    m.compare(None, "trainable params", case.value(total.trainable_params), trainable, "torch", total.trainable_params)
    m.compare(None, "non-trainable params", case.value(total.non_trainable_params), non_trainable, "torch",
              total.non_trainable_params)
    m.check()


# float32 rounding, not a wrong export (which is off by O(1)): torch's fused kernels (nn.LayerNorm, addmm) and
# Keras' ops sum in other orders, and over the three BERT-width blocks of specs/transformer_encoder.yaml the
# outputs differed by 7.44e-05 at a largest value of 6.25 (1.2e-5 of it) on this CI's CPUs; 3e-5 of the scale
# leaves room for other CPUs' kernels.
ABSOLUTE_TOLERANCE = 3e-5


def close(torch_value: np.ndarray, keras_value: np.ndarray) -> str | None:
    if torch_value.shape != keras_value.shape:
        return f"shape {torch_value.shape} != keras {keras_value.shape}"
    finite = np.abs(keras_value[np.isfinite(keras_value)])  # an overflow (inf) must not make the tolerance infinite
    scale = max(1.0, float(finite.max())) if finite.size else 1.0
    if np.allclose(torch_value, keras_value, rtol=1e-4, atol=ABSOLUTE_TOLERANCE * scale, equal_nan=True):
        return None
    diff = np.nanmax(np.abs(torch_value - keras_value))
    return f"max |torch - keras| = {diff:.3g} (largest keras value {scale:.3g})"


def test_every_torch_layer_computes_the_keras_layer(case: Case) -> None:
    """Each torch module, fed the Keras layer's own inputs (batch 2), gives the Keras layer's output."""
    m = Mismatches(case, "torch layer values vs keras (same weights, same inputs)")
    if case.weights_error:
        pytest.fail(f"{case.title}: {case.weights_error}", pytrace=False)
    for row in case.layers():
        if row.name in case.exempt:
            continue
        args = [torch.as_tensor(case.keras_outputs[s]) for s in row.inputs]
        with torch.no_grad():
            out = case.torch_module(row.name)(*args)
        outs = out if row.more_outputs else (out,)  # several outputs: a tuple, in Keras' order
        for i, value in enumerate(outs):
            problem = close(value.numpy(), case.keras_outputs[output_reference(row.name, i)])
            if problem:
                m.note(f"layer '{row.name}' ({row.type}){f' output {i}' if row.more_outputs else ''}: {problem}")
    m.check()


def test_torch_model_computes_the_keras_model(case: Case) -> None:
    """The whole exported torch model, end to end (batch 2), against the Keras model."""
    if case.weights_error:
        pytest.fail(f"{case.title}: {case.weights_error}", pytrace=False)
    if case.exempt:
        pytest.skip("; ".join(f"{k}: {v}" for k, v in case.exempt.items()))
    with torch.no_grad():
        outputs = case.torch_model(*(torch.as_tensor(x) for x in case.inputs))
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    m = Mismatches(case, "model outputs vs keras")
    for name, out in zip(case.plan.outputs, outputs, strict=True):
        problem = close(out.numpy(), case.keras_outputs[name])
        if problem:
            m.note(f"output '{name}': {problem}")
    m.check()
