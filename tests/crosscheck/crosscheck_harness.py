"""The cross-check harness: which specs, at which sizes, and one built case per (spec, sizes).

A case is the spec analyzed by nnspec at concrete symbol values, the exported Keras model
(with random weights, moving statistics included) and the exported torch model carrying
the same weights, plus every Keras layer's output on one random batch of 2.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from analyzer.export import copy_keras_weights
from analyzer.export.keras_model import build_keras
from analyzer.export.plan import ExportPlan, LayerPlan, plan_export
from analyzer.export.torch_model import build_torch
from analyzer.graph import output_reference
from analyzer.report import Report
from analyzer.symbolic import render

ROOT = Path(__file__).resolve().parents[2]
SIZES_FILE = Path(__file__).with_name("sizes.yaml")
# Every spec shipped in specs/ (any depth), and the layer zoo that exercises every exporter option.
SPEC_PATTERNS = ("specs/**/*.yaml", "specs/**/*.yml", "tests/crosscheck/specs/*.yaml")
MIN_VALUES = 3
BATCH = 2  # > 1, so that a wrong broadcast against the batch axis shows


def spec_files() -> list[str]:
    found = {p.relative_to(ROOT).as_posix() for pattern in SPEC_PATTERNS for p in ROOT.glob(pattern)}
    return sorted(found)


def load_sizes() -> dict[str, dict[str, list[int]]]:
    return yaml.safe_load(SIZES_FILE.read_text(encoding="utf-8")) or {}


def cases_of(entry: dict[str, list[int]]) -> list[dict[str, int]]:
    """Case i takes the i-th value of each symbol (shorter lists wrap around): every value is used."""
    count = max((len(v) for v in entry.values()), default=1)
    return [{name: vals[i % len(vals)] for name, vals in entry.items()} for i in range(count)]


def all_cases() -> list[tuple[str, dict[str, int] | None]]:
    """(spec, values) pairs; a spec with no entry in sizes.yaml gets (spec, None), which fails."""
    sizes = load_sizes()
    out: list[tuple[str, dict[str, int] | None]] = []
    for path in spec_files():
        entry = sizes.get(path)
        if not entry:
            out.append((path, None))
        else:
            out.extend((path, values) for values in cases_of(entry))
    return out


# The torch export runs a recurrent layer as a Python loop over the sequence (KerasLSTM, KerasGRU, KerasRNN), which
# torch.onnx.export unrolls and FlopCounterMode and autograd walk step by step: at L = 1000 one case takes minutes
# in the tests that trace or train the loop, and checks no other formula (every count is a polynomial in L, the same
# at 301 steps as at 1000). Those tests (ONNX round trip, the training step's FLOPs, optimizer state, saved
# activations) run the specs with a recurrent layer at sizes up to LOOP_CAP: 77, 128, 301 instead of 77, 128, 1000.
LOOP_CAP = 301
RECURRENT_TYPES = {"LSTM", "GRU", "SimpleRNN", "Bidirectional"}


def loop_capped(cases: list[tuple[str, dict[str, int] | None]]) -> list[tuple[str, dict[str, int] | None]]:
    """cases, with every size above LOOP_CAP lowered to it in the specs that have a recurrent layer (duplicates once)."""
    from analyzer.spec.loader import load_spec

    out: list[tuple[str, dict[str, int] | None]] = []
    loops: dict[str, bool] = {}
    for path, values in cases:
        if values is not None:
            if path not in loops:
                loops[path] = any(e.type in RECURRENT_TYPES for e in load_spec(ROOT / path).layers)
            if loops[path]:
                values = {k: min(v, LOOP_CAP) if v > LOOP_CAP else v for k, v in values.items()}
        if (path, values) not in out:
            out.append((path, values))
    return out


def case_id(case: tuple[str, dict[str, int] | None]) -> str:
    path, values = case
    sizes = ",".join(f"{k}={v}" for k, v in values.items()) if values else "NO-SIZES"
    return f"{path}[{sizes}]"


@dataclass
class Case:
    path: str
    values: dict[str, int]
    report: Report
    plan: ExportPlan
    keras_model: Any
    torch_model: Any
    inputs: list[np.ndarray]  # batch of BATCH, in spec input order
    keras_outputs: dict[str, np.ndarray]  # spec name (inputs and layers) -> Keras value
    exempt: dict[str, str] = field(default_factory=dict)  # layer -> why its values may differ from Keras'
    torch_shapes: dict[str, Any] = field(default_factory=dict)  # layer -> torch output shape(s) (batch 1)
    flop_counts: dict[str, int] = field(default_factory=dict)  # layer -> FlopCounterMode count (batch 1)
    flop_total: int = 0
    weights_error: str | None = None  # copy_keras_weights failed (a param mismatch): the value tests report it

    @property
    def title(self) -> str:
        return f"{self.path} at {', '.join(f'{k}={v}' for k, v in self.values.items())}"

    def layers(self) -> list[LayerPlan]:
        """The exported layers (a block repeated a symbolic number of times appears once per copy)."""
        return self.plan.layers

    def value(self, expr: Any) -> int:
        return self.report.value(expr)

    def torch_module(self, name: str) -> torch.nn.Module:
        return getattr(self.torch_model, self.torch_model.spec_names[name])

    def keras_layer(self, name: str) -> Any:
        return self.keras_model.get_layer(self.keras_names[name])

    @property
    def keras_names(self) -> dict[str, str]:
        return {x.name: x.keras_name for x in [*self.plan.inputs, *self.plan.layers]}


def randomize_keras_weights(model: Any, rng: np.random.Generator) -> None:
    """Non-zero biases and non-trivial batch-norm statistics, so that every weight mapping matters."""
    for layer in model.layers:
        for w in layer.weights:
            value = keras.ops.convert_to_numpy(w)
            if w.name in ("moving_variance", "gamma"):
                new = rng.uniform(0.5, 1.5, value.shape)
            elif w.name == "moving_mean":
                new = rng.normal(0, 0.5, value.shape)
            else:
                new = value + rng.normal(0, 0.1, value.shape)
            w.assign(new.astype(value.dtype))


def keras_param_gap(layer: LayerPlan) -> int:
    """Params nnspec counts that no Keras 3 layer has: the second bias vector of an LSTM with
    cudnn_compatible (Keras 2's CuDNNLSTM; torch.nn.LSTM has it too). The export gives Keras a plain
    LSTM, the same function (the two biases only add up) with 4*units fewer params."""
    spec = layer.spec
    if layer.type == "LSTM" and spec.cudnn_compatible and layer.use_bias(spec.use_bias):
        return 4 * layer.int(spec.units)
    return 0


def known_keras_deviations(plan: ExportPlan) -> dict[str, str]:
    """Layers whose Keras-on-torch values are not Keras' documented semantics.

    AveragePooling with padding 'same' and an odd total padding: Keras' torch backend pads
    with copies of the border ('replicate') and averages them in; TensorFlow, JAX and nnspec's
    export average only the cells that are really there (docs/export.md).
    """
    out = {}
    for layer in plan.layers:
        spec = layer.spec
        if layer.type.startswith("AveragePooling") and spec.padding == "same":
            pool = layer.ints(spec.pool_size)
            strides = layer.ints(spec.strides) if spec.strides is not None else pool
            for n, k, s in zip(layer.input_shape[:-1], pool, strides, strict=True):
                total = max((-(-n // s) - 1) * s + k - n, 0)
                if total % 2:
                    out[layer.name] = "Keras' torch backend averages replicated border cells into 'same' windows"
    return out


def random_input(plan: ExportPlan, name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Normal noise, or valid ids (as floats) for an input that feeds an Embedding."""
    vocab = [layer.int(layer.spec.input_dim) for layer in plan.layers if layer.type == "Embedding" and name in layer.inputs]
    if vocab:
        return rng.integers(0, min(vocab), (BATCH, *shape)).astype("float32")
    return rng.standard_normal((BATCH, *shape)).astype("float32")


def build_case(path: str, values: dict[str, int]) -> Case:
    keras.utils.set_random_seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    plan = plan_export(ROOT / path, values)
    report = plan.report
    skip_without_keras(plan)
    keras_model = build_keras(plan)
    torch_model = build_torch(plan)
    randomize_keras_weights(keras_model, rng)
    try:
        copy_keras_weights(keras_model, torch_model)
        weights_error = None
    except Exception as error:  # reported by the value tests; shapes, params and MACs are still checked
        weights_error = f"copying the Keras weights into the torch model failed: {type(error).__name__}: {error}"
    inputs = [random_input(plan, x.name, x.shape, rng) for x in plan.inputs]
    names = [output_reference(layer.name, i) for layer in plan.layers for i in range(len(layer.output_shapes))]
    probe = keras.Model(keras_model.inputs, [o for layer in plan.layers for o in keras_outputs(keras_model, layer)])
    outputs = probe(inputs, training=False)
    values_by_name = {x.name: v for x, v in zip(plan.inputs, inputs, strict=True)}
    values_by_name.update({n: keras.ops.convert_to_numpy(o) for n, o in zip(names, outputs, strict=True)})
    case = Case(path, values, report, plan, keras_model, torch_model, inputs, values_by_name, known_keras_deviations(plan))
    case.weights_error = weights_error
    run_torch_once(case)
    return case


def skip_without_keras(plan: ExportPlan) -> None:
    """A spec with a layer the Keras export refuses (keras_hub's layers, the decoder options of
    GroupedQueryAttention) has no Keras model to compare against: its case is skipped, naming the layer.
    test_profiles.py still checks every tool on its torch export, test_llm.py its params and values."""
    from analyzer.export.plan import ExportError
    from analyzer.layers.builders import KERAS_BUILDERS

    for layer in plan.layers:
        try:
            KERAS_BUILDERS.build(layer)
        except ExportError as error:
            pytest.skip(f"no Keras export: {error}")


def keras_outputs(keras_model: Any, layer: LayerPlan) -> list[Any]:
    """The Keras layer's output tensors: one, or the list of a layer with several (return_state, merge_mode None)."""
    output = keras_model.get_layer(layer.keras_name).output
    return list(output) if layer.more_outputs else [output]


def output_shapes(value: Any) -> Any:
    """The shape without the batch axis of a tensor, or the tuple of shapes of a module's several outputs."""
    if isinstance(value, (tuple, list)):
        return tuple(tuple(v.shape[1:]) for v in value)
    return tuple(value.shape[1:])


def run_torch_once(case: Case) -> None:
    """One forward of the torch model at batch 1 under FlopCounterMode, recording each layer's
    output shape (forward hooks) and flop count (by module name)."""
    model = case.torch_model
    hooks = [case.torch_module(layer.name).register_forward_hook(
        lambda module, args, out, name=layer.name: case.torch_shapes.__setitem__(name, output_shapes(out)))
        for layer in case.layers()]
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(*(torch.as_tensor(x[:1]) for x in case.inputs))
    finally:
        for hook in hooks:
            hook.remove()
    by_module = counter.get_flop_counts()
    root = type(model).__name__
    for layer in case.layers():
        case.flop_counts[layer.name] = sum(by_module.get(f"{root}.{layer.attr}", {}).values())
    case.flop_total = counter.get_total_flops()


class Mismatches:
    """Collects every disagreement of a case; fails once with all of them (layer, both numbers, formula)."""

    def __init__(self, case: Case, what: str) -> None:
        self.case = case
        self.what = what
        self.lines: list[str] = []

    def compare(self, row: Any, quantity: str, ours: Any, theirs: Any, framework: str,
                formula: Any = None) -> None:
        if ours == theirs:
            return
        where = f"layer '{row.name}' ({row.type})" if row is not None else "total"
        text = f"{where}: {quantity}: nnspec {_fmt(ours)} != {framework} {_fmt(theirs)}"
        if formula is not None:
            text += f"   [nnspec formula: {render(formula)}]"
        self.lines.append(text)

    def note(self, text: str) -> None:
        self.lines.append(text)

    def check(self) -> None:
        if self.lines:
            head = f"{self.case.title}: {self.what}: {len(self.lines)} mismatch(es)\n  "
            pytest.fail(head + "\n  ".join(self.lines), pytrace=False)


def _fmt(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def torch_model_to_train(plan: ExportPlan, frozen: str | None, train: bool) -> Any:
    """The torch export of `plan` in train (or eval) mode with spec row `frozen` not requiring a gradient: every
    exported copy of it, since a row of a block repeated a symbolic number of times stands for each copy. Skips a
    spec the torch export refuses."""
    from analyzer.export.plan import ExportError

    try:
        model = build_torch(plan)
    except ExportError as error:
        pytest.skip(f"not exportable to torch: {error}")
    model.train(train)
    if frozen is not None:
        for layer in plan.layers:
            if layer.row is not None and layer.row.name == frozen:
                getattr(model, model.spec_names[layer.name]).requires_grad_(False)
    return model


def assert_torch_flops_per_row(model: Any, plan: ExportPlan, report: Report, counter: FlopCounterMode) -> None:
    """After `counter` ran the export `model` of `plan`: each report row's --convention torch count equals
    FlopCounterMode's for its modules (the copies of a repeated block summed), and the totals agree."""
    from analyzer.conventions import recount_with

    by_module = counter.get_flop_counts()
    recount = recount_with(report, "torch")
    root = type(model).__name__
    measured: dict[str, int] = {}
    for layer in plan.layers:
        measured[layer.row.name] = measured.get(layer.row.name, 0) + sum(
            by_module.get(f"{root}.{layer.attr}", {}).values())
    for name, flops in measured.items():
        assert report.value(recount.layers[name].expr) == flops, name
    assert report.value(recount.total) == counter.get_total_flops()


def torch_export_with_its_params_checked(path: Path, values: dict[str, int]) -> tuple[ExportPlan, Report, Any]:
    """The spec's torch export at `values`: each layer's params and the total = the modules' parameters."""
    plan = plan_export(path, values)
    report, model = plan.report, build_torch(plan)
    for layer in plan.layers:
        module = getattr(model, layer.attr)
        assert report.value(layer.counts.params) == sum(p.numel() for p in module.parameters()), layer.name
    assert report.value(report.total.params) == sum(p.numel() for p in model.parameters())
    return plan, report, model
