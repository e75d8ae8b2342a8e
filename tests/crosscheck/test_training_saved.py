"""The training step's saved activations against torch autograd itself (issue 16): the bytes of the distinct
storages that torch.autograd.graph.saved_tensors_hooks sees saved during the forward pass of nnspec's PyTorch
export (the parameters' and buffers' storages excluded; each storage by its own size and dtype), with the loss the
sum of the outputs and the inputs not requiring a gradient, equal nnspec's saved_activations total at B = 1, 2 and
8: with no layer frozen and with the first trainable layer frozen.

The model runs in train mode, as a training step does: dropout draws and keeps its mask, batch normalization
keeps the batch statistics (eval mode would keep neither, and measure another step). torch's F.batch_norm refuses
one value per channel in train mode (a Python-level guard, `_verify_batch_size`; the kernel computes it, variance
0, as Keras does), which B = 1 meets after a global pooling to 1x1: the guard is lifted for the measurement.

Every cross-check case (MixtureOfExperts included: its saves total P·k routed rows whatever the routing)."""

from __future__ import annotations

import pytest
from crosscheck_harness import ROOT, all_cases, case_id, loop_capped, torch_model_to_train

from analyzer import analyze
from analyzer.conventions.measure import example_inputs
from analyzer.export.plan import plan_export
from analyzer.export.torch_model import build_torch
from analyzer.layers.backward import NoBackwardRule
from analyzer.training import training_step
from analyzer.training_memory import saved_activations, step_memory

torch = pytest.importorskip("torch")

CASES = loop_capped([case for case in all_cases() if case[1] is not None])
BATCHES = (1, 2, 8)


def torch_saved_bytes(model, plan, batch: int) -> int:
    """Bytes of the storages autograd saves in one forward pass (loss = the sum of the outputs)."""
    weights = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    storages: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            storages.setdefault(storage.data_ptr(), storage.nbytes())
        return tensor  # kept alive until the end, so no address is reused by another storage

    inputs = example_inputs(model, {x.attr: x.shape for x in plan.inputs}, batch=batch)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        outputs = model(*inputs)
        loss = sum(o.float().sum() for o in (outputs if isinstance(outputs, tuple) else (outputs,)))
    del loss
    return sum(storages.values())


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_saved_activations_equal_autograds(case, monkeypatch):
    path, values = case
    report = analyze(ROOT / path).at(**values)
    try:
        training_step(report)
    except NoBackwardRule as error:
        pytest.fail(f"--training refuses a type that has a saved-activation rule: {error}")
    plan = plan_export(ROOT / path, values)
    monkeypatch.setattr(torch.nn.functional, "_verify_batch_size", lambda size: None)
    first_trainable = next(name for name, row in report.layers.items() if report.value(row.counts.trainable_params))
    for frozen in (None, first_trainable):
        step = training_step(report, frozen=(frozen,) if frozen else ())
        note = step_memory(step)[-2].note
        assert not note, note
        total = sum(saved_activations(step).values())
        model = torch_model_to_train(plan, frozen, train=True)
        for batch in BATCHES:
            expected = step.report.at(B=batch).value(total)
            assert expected == torch_saved_bytes(model, plan, batch), f"frozen {frozen}, B = {batch}"


# The families and options no cross-check case above reaches (their specs also hold recurrent layers), and the
# layouts that decide between a view and a copy: every activation and Lambda function, the merges (Multiply with a
# frozen or broadcast input), Embedding, Dropout at rate 0, RepeatVector, Permute, Reshape and Flatten of
# channels-first data, crops before Dense and Conv, each normalization's options, pooling after Dense; the
# mixture of experts' options (bias, no renormalization, k = E, a frozen mixture, on a non-contiguous input).
ZOO = {
    "attention": """
inputs: [{name: x, shape: [5, 4]}, {name: m, shape: [3, 6]}, {name: k, shape: [3, 2]}, {name: img, shape: [3, 4, 2]},
         {name: vol, shape: [2, 3, 4, 2]}]
layers:
  - {type: MultiHeadAttention, name: self_x, num_heads: 2, key_dim: 3, inputs: [x, x]}
  - {type: Dense, name: dq, units: 4, inputs: [x]}
  - {type: MultiHeadAttention, name: cross, num_heads: 3, key_dim: 2, value_dim: 4, use_bias: false, inputs: [dq, m, k]}
  - {type: MultiHeadAttention, name: gated, num_heads: 2, key_dim: 2, use_gate: true, output_shape: [3], inputs: [x, m]}
  - {type: MultiHeadAttention, name: gated_after, num_heads: 1, key_dim: 2, use_gate: true, inputs: [dq, dq]}
  - {type: Conv1D, name: cx, filters: 4, kernel_size: 1, inputs: [x]}
  - {type: MultiHeadAttention, name: on_conv, num_heads: 2, key_dim: 2, inputs: [cx, cx]}
  - {type: MultiHeadAttention, name: on_conv_gated, num_heads: 2, key_dim: 2, use_gate: true, inputs: [cx, m]}
  - {type: MultiHeadAttention, name: axis1, num_heads: 2, key_dim: 3, attention_axes: [1], inputs: [img, img]}
  - {type: MultiHeadAttention, name: axis_last, num_heads: 3, key_dim: 2, value_dim: 4, attention_axes: -2,
     use_gate: true, inputs: [axis1, axis1]}
  - {type: MultiHeadAttention, name: vol_two, num_heads: 2, key_dim: 2, attention_axes: [1, 3], inputs: [vol, vol]}
  - {type: MultiHeadAttention, name: vol_mid, num_heads: 2, key_dim: 2, attention_axes: [2], inputs: [vol_two, vol_two]}
outputs: [self_x, cross, gated, gated_after, on_conv, on_conv_gated, axis_last, vol_mid]
""",
    "transpose": """
inputs: [{name: s, shape: [6, 3]}, {name: img, shape: [4, 5, 2]}]
layers:
  - {type: Conv1DTranspose, name: t_valid, filters: 4, kernel_size: 3, strides: 2, activation: relu, inputs: [s]}
  - {type: Conv1DTranspose, name: t_same, filters: 3, kernel_size: 4, strides: 3, padding: same}
  - {type: Conv1DTranspose, name: t_short, filters: 2, kernel_size: 1, strides: 3}
  - {type: Conv1DTranspose, name: t_valid_op, filters: 3, kernel_size: 2, strides: 3, output_padding: 2}
  - {type: Conv1DTranspose, name: t_same_op, filters: 2, kernel_size: 5, strides: 2, padding: same, output_padding: 1,
     activation: tanh}
  - {type: Conv1DTranspose, name: t_dilated, filters: 3, kernel_size: 3, dilation_rate: 2, padding: same, use_bias: false,
     activation: gelu}
  - {type: Conv1DTranspose, name: t_cropped, filters: 3, kernel_size: 4, strides: 2, padding: same, inputs: [s]}
  - {type: Activation, name: gelu_on_crop, activation: gelu}
  - {type: Dense, name: d_on_crop, units: 2, inputs: [t_cropped]}
  - {type: Conv1D, name: c_on_crop, filters: 2, kernel_size: 1, inputs: [t_cropped]}
  - {type: Conv2DTranspose, name: t2_same, filters: 3, kernel_size: [3, 2], strides: [2, 3], padding: same, inputs: [img]}
  - {type: Conv2DTranspose, name: t2_valid_op, filters: 2, kernel_size: [2, 3], strides: [3, 2], output_padding: [1, 0],
     activation: sigmoid}
  - {type: Conv2DTranspose, name: t2_same_op, filters: 2, kernel_size: 3, strides: 2, padding: same, output_padding: [0, 1],
     activation: softsign}
  - {type: Conv2DTranspose, name: t2_cropped, filters: 2, kernel_size: 3, strides: 2, padding: same, inputs: [img]}
  - {type: Activation, name: elu_on_crop, activation: elu}
outputs: [t_dilated, gelu_on_crop, d_on_crop, c_on_crop, t2_same_op, elu_on_crop]
""",
    "activations": """
inputs: [{name: x, shape: [7, 3]}]
layers:
  - {type: Dense, name: d0, units: 4}
  - {type: Activation, name: relu, activation: relu}
  - {type: Activation, name: relu6, activation: relu6}
  - {type: Activation, name: leaky, activation: leaky_relu}
  - {type: Activation, name: elu, activation: elu}
  - {type: Activation, name: selu, activation: selu}
  - {type: Activation, name: sigmoid, activation: sigmoid}
  - {type: Activation, name: tanh, activation: tanh}
  - {type: Activation, name: gelu, activation: gelu}
  - {type: Activation, name: gelu_tanh, activation: gelu_tanh}
  - {type: Activation, name: silu, activation: swish}
  - {type: Activation, name: hard_sigmoid, activation: hard_sigmoid}
  - {type: Activation, name: softplus, activation: softplus}
  - {type: Activation, name: softsign, activation: softsign}
  - {type: Activation, name: exponential, activation: exponential}
  - {type: Softmax, name: softmax}
  - {type: Lambda, name: cos, function: cos}
  - {type: Lambda, name: sin, function: sin}
  - {type: Lambda, name: exp, function: exp}
  - {type: Lambda, name: log, function: log}
  - {type: Lambda, name: sqrt, function: sqrt}
  - {type: Lambda, name: abs, function: abs}
  - {type: Lambda, name: square, function: square}
  - {type: Lambda, name: negative, function: negative}
  - {type: Dense, name: fused, units: 3, activation: hard_sigmoid}
""",
    "merges": """
inputs: [{name: x, shape: [6, 4]}, {name: v, shape: [4]}, {name: ids, shape: [5]}]
layers:
  - {type: Dense, name: a, units: 4, inputs: [x]}
  - {type: Dense, name: b, units: 4, inputs: [x], trainable: false}
  - {type: Conv1D, name: c, filters: 4, kernel_size: 1, inputs: [x]}
  - {type: Add, name: add_ac, inputs: [a, c]}
  - {type: Conv1D, name: c_add, filters: 4, kernel_size: 1}
  - {type: Add, name: add_ca, inputs: [c, a]}
  - {type: Conv1D, name: c_add2, filters: 4, kernel_size: 1}
  - {type: Multiply, name: mul_ab, inputs: [a, b]}
  - {type: Multiply, name: mul_ba, inputs: [b, a]}
  - {type: Multiply, name: mul_ac, inputs: [a, c]}
  - {type: Dense, name: dv, units: 4, inputs: [v]}
  - {type: Multiply, name: mul_broadcast, inputs: [a, dv]}
  - {type: Subtract, name: sub, inputs: [a, c]}
  - {type: Average, name: avg, inputs: [a, c]}
  - {type: Concatenate, name: cat, inputs: [a, c]}
  - {type: Conv1D, name: c_cat, filters: 4, kernel_size: 1}
  - {type: Embedding, name: emb, input_dim: 10, output_dim: 3, inputs: [ids]}
  - {type: Dropout, name: drop, rate: 0.5}
  - {type: Dense, name: d_drop, units: 2}
  - {type: Dropout, name: drop0, rate: 0.0, inputs: [c]}
  - {type: Conv1D, name: c_drop0, filters: 2, kernel_size: 1}
  - {type: GaussianNoise, name: noise, stddev: 0.1, inputs: [a]}
outputs: [add_ac, c_add, c_add2, mul_ab, mul_ba, mul_ac, mul_broadcast, sub, avg, c_cat, d_drop, c_drop0, noise]
""",
    "views": """
inputs: [{name: x, shape: [6, 4]}, {name: v, shape: [5]}]
layers:
  - {type: Conv1D, name: c0, filters: 4, kernel_size: 1, inputs: [x]}
  - {type: Reshape, name: r_first, target_shape: [24]}
  - {type: Dense, name: d_r, units: 3}
  - {type: Conv1D, name: c1, filters: 4, kernel_size: 1, inputs: [x], activation: relu}
  - {type: Dense, name: d_after_conv, units: 3}
  - {type: Permute, name: p, dims: [2, 1], inputs: [c1]}
  - {type: Conv1D, name: c_p, filters: 2, kernel_size: 1}
  - {type: Dense, name: dv, units: 3, inputs: [v]}
  - {type: RepeatVector, name: rep, n: 4}
  - {type: Dense, name: d_rep, units: 2}
  - {type: Activation, name: act_rep, activation: gelu, inputs: [rep]}
  - {type: Conv1D, name: c3, filters: 3, kernel_size: 1, inputs: [x], activation: relu}
  - {type: Cropping1D, name: crop, cropping: [1, 2]}
  - {type: Dense, name: d_crop, units: 2}
  - {type: Conv1D, name: c_crop, filters: 2, kernel_size: 1, inputs: [crop]}
  - {type: Dense, name: d5, units: 3, inputs: [x], activation: relu}
  - {type: Cropping1D, name: crop_last, cropping: [1, 0]}
  - {type: Dense, name: d_crop_last, units: 2}
  - {type: Dense, name: d6, units: 3, inputs: [x]}
  - {type: ZeroPadding1D, name: zp, padding: [1, 1]}
  - {type: Conv1D, name: c_zp, filters: 2, kernel_size: 1}
  - {type: UpSampling1D, name: up, size: 2, inputs: [d6]}
  - {type: Conv1D, name: c_up, filters: 2, kernel_size: 1}
  - {type: Flatten, name: flat, inputs: [c_up]}
  - {type: Dense, name: d_flat, units: 2}
outputs: [d_r, d_after_conv, c_p, d_rep, act_rep, d_crop, c_crop, d_crop_last, c_zp, d_flat]
""",
    "normalizations": """
inputs: [{name: x, shape: [6, 4]}, {name: v, shape: [5]}]
layers:
  - {type: Dense, name: d0, units: 4, inputs: [x]}
  - {type: BatchNormalization, name: bn}
  - {type: BatchNormalization, name: bn_scale_only, center: false}
  - {type: BatchNormalization, name: bn_center_only, scale: false}
  - {type: BatchNormalization, name: bn_none, center: false, scale: false}
  - {type: BatchNormalization, name: bn_axis1, axis: 1}
  - {type: Conv1D, name: c0, filters: 4, kernel_size: 1}
  - {type: BatchNormalization, name: bn_after_conv}
  - {type: LayerNormalization, name: ln}
  - {type: LayerNormalization, name: ln_plain, center: false, scale: false}
  - {type: LayerNormalization, name: ln_scale, center: false}
  - {type: LayerNormalization, name: ln_2axes, axis: [1, 2]}
  - {type: GroupNormalization, name: gn_after_ln, groups: 2}
  - {type: Conv1D, name: c1, filters: 4, kernel_size: 1}
  - {type: GroupNormalization, name: gn_after_conv, groups: -1, center: false, scale: false}
  - {type: RMSNormalization, name: rms}
  - {type: RMSNormalization, name: rms_plain, scale: false}
  - {type: MaxPooling1D, name: max_after_rms, pool_size: 2}
  - {type: Conv1D, name: c2, filters: 4, kernel_size: 1}
  - {type: Dense, name: dv, units: 3, inputs: [v]}
  - {type: BatchNormalization, name: bn_rank2}
  - {type: Dense, name: dx, units: 3, inputs: [x]}
  - {type: AveragePooling1D, name: avg_same, pool_size: 3, strides: 2, padding: same}
  - {type: Conv1D, name: c3, filters: 2, kernel_size: 1}
outputs: [c2, bn_rank2, c3]
""",
    "mixture": """
inputs: [{name: x, shape: [6, 4]}]
layers:
  - {type: Dense, name: d0, units: 4, inputs: [x]}
  - {type: MixtureOfExperts, name: moe, num_experts: 4, experts_per_token: 2, intermediate_dim: 5}
  - {type: MixtureOfExperts, name: moe_bias, num_experts: 3, experts_per_token: 1, intermediate_dim: 3, use_bias: true,
     normalize_top_k: false, activation: relu, inputs: [d0]}
  - {type: MixtureOfExperts, name: moe_all, num_experts: 3, experts_per_token: 3, intermediate_dim: 2,
     activation: softsign, inputs: [d0]}
  - {type: MixtureOfExperts, name: moe_frozen, num_experts: 5, experts_per_token: 2, intermediate_dim: 3,
     activation: hard_sigmoid, trainable: false, inputs: [d0]}
  - {type: MixtureOfExperts, name: moe_linear, num_experts: 2, experts_per_token: 1, intermediate_dim: 3,
     activation: linear, inputs: [x]}
  - {type: Permute, name: p, dims: [2, 1], inputs: [d0]}
  - {type: MixtureOfExperts, name: moe_on_permute, num_experts: 3, experts_per_token: 2, intermediate_dim: 2,
     activation: gelu}
outputs: [moe, moe_bias, moe_all, moe_frozen, moe_linear, moe_on_permute]
""",
}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_saved_activations_of_the_other_families_equal_autograds(name, monkeypatch):
    text = f"name: {name}\n{ZOO[name]}"
    report = analyze(text)
    plan = plan_export(text, {})
    monkeypatch.setattr(torch.nn.functional, "_verify_batch_size", lambda size: None)
    first_trainable = next(n for n, row in report.layers.items() if report.value(row.counts.trainable_params))
    for frozen in (None, first_trainable):
        step = training_step(report, frozen=(frozen,) if frozen else ())
        total = sum(saved_activations(step).values())
        model = build_torch(plan).train()
        if frozen is not None:
            getattr(model, model.spec_names[frozen]).requires_grad_(False)
        for batch in BATCHES:
            expected = step.report.at(B=batch).value(total)
            assert expected == torch_saved_bytes(model, plan, batch), f"frozen {frozen}, B = {batch}"
