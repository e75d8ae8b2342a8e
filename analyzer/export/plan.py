"""What both exporters share: the spec analyzed at concrete sizes, as a list of
layers with their inputs, concrete shapes and Python-safe names. The builders that
turn one layer into one framework object are in the layer families (tables in
analyzer/layers/builders.py).

Nothing here imports a framework. A builder only *describes* the object it wants
(`Construct("Conv1D", filters=128, ...)`); `to_keras` / `to_torch` instantiate the
description and the source writers print it, so the in-memory model and the
written file come from the same description.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import sympy

from analyzer.errors import Location, NNSpecError
from analyzer.graph import BIAS_MODES, analyze_spec, model_outputs, output_reference, split_reference
from analyzer.layers.base import LayerSpec
from analyzer.report import Counts, LayerRow, Report
from analyzer.spec.loader import Spec, load_spec, parse_spec
from analyzer.symbolic import evaluate_int


class ExportError(NNSpecError):
    """A spec (or a layer of it) that cannot be exported, or a framework that is not installed."""


@dataclass(frozen=True)
class InputPlan:
    name: str
    attr: str  # a Python identifier for the generated code and the torch forward
    shape: tuple[int, ...]  # without the batch axis
    keras_name: str = ""


@dataclass
class LayerPlan:
    """One spec layer at concrete sizes: what a builder sees."""

    name: str
    attr: str
    type: str
    spec: LayerSpec
    inputs: tuple[str, ...]  # spec names of its inputs
    input_attrs: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]
    location: Location | None
    values: Mapping[sympy.Symbol, int]
    bias_mode: str = "spec"
    options: Mapping[str, Any] = field(default_factory=dict)
    keras_name: str = ""  # the spec name where Keras accepts it (see keras_names)
    row: LayerRow | None = None  # the report row this layer comes from
    copies: int = 1  # > 1: one of the copies of a block repeated a symbolic number of times
    more_outputs: tuple[tuple[int, ...], ...] = ()  # shapes of outputs 1, 2, ... (return_state, merge_mode None)
    output_attrs: tuple[str, ...] = ()  # a Python name per output (the first is `attr`)

    @property
    def output_shapes(self) -> tuple[tuple[int, ...], ...]:
        return (self.output_shape, *self.more_outputs)

    @property
    def initial_state(self) -> bool:
        """Whether the layer takes an initial state after its sequence (Keras' `initial_state=`)."""
        return bool(self.spec.state_input_names()) and len(self.inputs) > 1

    @property
    def counts(self) -> Counts:
        """nnspec's counts for this one layer (a row of a symbolic repeat counts all its copies)."""
        assert self.row is not None
        return self.row.counts if self.copies == 1 else self.row.counts.scaled(sympy.Rational(1, self.copies))

    @property
    def input_shape(self) -> tuple[int, ...]:
        (shape,) = self.input_shapes
        return shape

    @property
    def multi_input(self) -> bool:
        """Whether the layer is called on a list of tensors (merges, Concatenate)."""
        return type(self.spec).arity != 1

    def int(self, expr: Any) -> int:
        return expr if isinstance(expr, int) else evaluate_int(expr, self.values)

    def ints(self, exprs: Any) -> tuple[int, ...]:
        return tuple(self.int(e) for e in exprs)

    def use_bias(self, declared: bool) -> bool:
        """As the analysis counts it: the spec's use_bias, or forced by --bias on/off."""
        return {"on": True, "off": False}.get(self.bias_mode, declared)

    def wrapped(self, input_shape: tuple[int, ...], output_shape: tuple[int, ...], **changes: Any) -> LayerPlan:
        """The layer a wrapper (Bidirectional, TimeDistributed) holds, as its builder sees it: its own spec and
        type, the shapes of one call, no name of its own. `changes`: fields of the wrapped spec to override."""
        inner = self.spec.layer
        if changes:
            inner = inner.model_copy(update=changes)
        return replace(self, type=inner.type, spec=inner, input_shapes=(input_shape,), output_shape=output_shape)

    def error(self, message: str, hint: str | None = None) -> ExportError:
        return ExportError(message, location=self.location, layer=self.name, layer_type=self.type, hint=hint)


@dataclass
class ExportPlan:
    name: str
    file: str
    symbols: dict[str, int]
    inputs: list[InputPlan]
    layers: list[LayerPlan]
    outputs: list[str]
    report: Report
    bias: str = "spec"

    @property
    def attrs(self) -> dict[str, str]:
        """Spec name (or `NAME:i` for output i of a layer with several) -> Python identifier, for inputs and layers."""
        out = {x.name: x.attr for x in self.inputs}
        for layer in self.layers:
            out.update({output_reference(layer.name, i): attr for i, attr in enumerate(layer.output_attrs or (layer.attr,))})
        return out

    @property
    def class_name(self) -> str:
        return python_class_name(self.name)

    def describe_sizes(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.symbols.items()) or "no symbols"


def plan_export(spec: str | Path | Spec, values: Mapping[str, int] | None = None, *, bias: str = "spec",
                options: Mapping[str, Any] | None = None) -> ExportPlan:
    """Analyze `spec` (a path, YAML text, or a loaded Spec) at `values` and lay it out for the builders.

    A block repeated a symbolic number of times (analyzed as one copy, `NAME.each.*`) is unrolled
    into its copies at the given values, named `NAME.block1.*`, `NAME.block2.*`, ...
    """
    if bias not in BIAS_MODES:
        raise ExportError(f"bias must be one of {', '.join(BIAS_MODES)}, got {bias!r}")
    if not isinstance(spec, Spec):
        spec = parse_spec(spec, "<string>") if isinstance(spec, str) and "\n" in spec else load_spec(spec)
    report = analyze_spec(spec, bias=bias)
    if values:
        report = report.at(**values)
    rows = [row for row in report.layers.values() if row.spec is not None]
    layers = _unroll(rows, spec, report)  # (name, row, inputs, copies)
    outputs = [_renamed_output(o, spec, report) for o in model_outputs(spec)]
    all_names = [*(x.name for x in spec.inputs), *(name for name, *_ in layers)]
    more = [f"{name}:{row.spec.output_names()[i]}" for name, row, *_ in layers for i in range(1, len(row.output_shapes))]
    attrs = python_names([*all_names, *more])  # a variable per output, for the written files
    knames = keras_names(all_names)
    inputs = [InputPlan(x.name, attrs[x.name], tuple(report.value(d) for d in x.shape), knames[x.name]) for x in spec.inputs]
    shapes = {x.name: x.shape for x in inputs}
    planned = []
    for name, row, sources, copies in layers:
        output_shapes = [tuple(report.value(d) for d in s) for s in row.output_shapes]
        output_attrs = (attrs[name], *(attrs[f"{name}:{n}"] for n in row.spec.output_names()[1:len(output_shapes)]))
        for i, attr in enumerate(output_attrs):
            attrs[output_reference(name, i)] = attr
        planned.append(LayerPlan(
            name, attrs[name], row.type, row.spec, tuple(sources), tuple(attrs[s] for s in sources),
            tuple(shapes[s] for s in sources), output_shapes[0], row.location, report.values, bias, dict(options or {}),
            knames[name], row, copies, tuple(output_shapes[1:]), output_attrs,
        ))
        for i, shape in enumerate(output_shapes):
            shapes[output_reference(name, i)] = shape
    return ExportPlan(spec.name, spec.file, report.symbol_values(), inputs, planned, outputs, report, bias)


@dataclass(frozen=True)
class _Unrolling:
    """A symbolic repeat as it is unrolled: its instance prefix, input and output, in the names of the copy of the
    enclosing repeats being written, and its number of copies at the export's values."""

    instance: str
    input: str
    output: str
    times: int

    def renamed(self, name: str, copy: int) -> str:
        """`name` in copy `copy`: INSTANCE.each.REST -> INSTANCE.blockCOPY.REST (other names as they are)."""
        prefix = f"{self.instance}.each."
        return f"{self.instance}.block{copy}.{name[len(prefix):]}" if name.startswith(prefix) else name

    def contains(self, name: str) -> bool:
        return name.startswith(f"{self.instance}.each.")


def _renamed_output(reference: str, spec: Spec, report: Report) -> str:
    """A model output that is a symbolic repeat's output, as its last copy's, at every level of nested repeats
    (`out.each.in.each.add` -> `out.block3.in.block2.add`; `NAME:i` keeps its output index)."""
    name, index = split_reference(reference)
    parts = name.split(".each.")
    if len(parts) == 1:
        return reference
    times = {r.instance: report.value(r.times) for r in spec.symbolic_repeats}
    written = parts[0]
    for i in range(1, len(parts)):
        written += f".block{times['.each.'.join(parts[:i])]}.{parts[i]}"
    return output_reference(written, index)


def _unroll(rows: list[LayerRow], spec: Spec, report: Report) -> list[tuple[str, LayerRow, list[str], int]]:
    """The rows with every symbolic repeat written out as its copies, nested repeats inside each copy."""
    levels = [_Unrolling(r.instance, r.input, r.output, report.value(r.times)) for r in spec.symbolic_repeats]
    return _unroll_level([(row.name, row, list(row.inputs)) for row in rows], levels, 1)


def _unroll_level(items: list[tuple[str, LayerRow, list[str]]], levels: list[_Unrolling],
                  copies: int) -> list[tuple[str, LayerRow, list[str], int]]:
    outermost = [r for r in levels if not any(o is not r and o.contains(r.instance) for o in levels)]
    inner = [r for r in levels if r not in outermost]

    def outside(source: str) -> str:  # a read of a repeat's output from outside it: its last copy's
        layer, index = split_reference(source)
        for r in outermost:
            if layer == r.output:
                return output_reference(r.renamed(layer, r.times), index)
        return source

    out: list[tuple[str, LayerRow, list[str], int]] = []
    done: set[str] = set()
    for name, row, sources in items:
        repeat = next((r for r in outermost if r.contains(name)), None)
        if repeat is None:
            out.append((name, row, [outside(s) for s in sources], copies))
            continue
        if repeat.instance in done:
            continue
        done.add(repeat.instance)
        body = [item for item in items if repeat.contains(item[0])]
        inside = {n for n, _, _ in body}
        nested = [r for r in inner if repeat.contains(r.instance)]
        for copy in range(1, repeat.times + 1):
            def written(source: str, copy: int = copy, repeat: _Unrolling = repeat, inside: set[str] = inside) -> str:
                layer, index = split_reference(source)
                if layer in inside:
                    return output_reference(repeat.renamed(layer, copy), index)
                if source == repeat.input and copy > 1:  # copy k + 1 reads copy k's output
                    return repeat.renamed(repeat.output, copy - 1)
                return outside(source)

            copy_items = [(repeat.renamed(n, copy), r, [written(s) for s in srcs]) for n, r, srcs in body]
            copy_levels = [_Unrolling(repeat.renamed(r.instance, copy), written(r.input), repeat.renamed(r.output, copy),
                                      r.times) for r in nested]
            out += _unroll_level(copy_items, copy_levels, copies * repeat.times)
    return out


# Names the generated code and torch.nn.Module use themselves: a layer may not take them as is.
RESERVED_NAMES = frozenset({
    # the generated files and SpecModel
    "self", "torch", "nn", "F", "keras", "layers", "ops", "os", "warnings", "build", "model", "main",
    "INPUT_SHAPES", "spec_name", "spec_inputs", "spec_outputs", "spec_graph", "spec_names", "spec_outputs_of",
    # attributes of torch.nn.Module (torch 2.13; tests/crosscheck checks that this list covers dir(nn.Module))
    "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children", "compile", "cpu",
    "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state",
    "get_parameter", "get_submodule", "half", "ipu", "load_state_dict", "modules", "mtia", "named_buffers",
    "named_children", "named_modules", "named_parameters", "parameters", "register_backward_hook", "register_buffer",
    "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
    "register_full_backward_pre_hook", "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook",
    "register_module", "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook",
    "requires_grad_", "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train",
    "training", "type", "xpu", "zero_grad",
})


def python_names(names: list[str]) -> dict[str, str]:
    """A distinct Python identifier for each spec name, the name itself where it already is one.

    Spec names may hold '.', '-' and '/' (they become '_'); a name that starts with a digit or '_'
    gets 'layer_' in front; a keyword or a reserved name gets '_' behind.
    """

    def base(name: str) -> str:
        text = re.sub(r"[^A-Za-z0-9_]", "_", name)
        if text[0].isdigit() or text.startswith("_"):
            text = "layer_" + text.lstrip("_")
        if keyword.iskeyword(text) or keyword.issoftkeyword(text) or text in RESERVED_NAMES:
            text += "_"
        return text

    result: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:  # names that are already fine keep them, whatever their order
        if base(name) == name:
            result[name] = name
            taken.add(name)
    for name in names:
        if name in result:
            continue
        candidate = stem = base(name)
        counter = 2
        while candidate in taken:
            candidate = f"{stem}_{counter}"
            counter += 1
        result[name] = candidate
        taken.add(candidate)
    return result


def keras_names(names: list[str]) -> dict[str, str]:
    """The name of each layer in Keras: the spec name, with '.' and '/' as '_' (Keras refuses '/', and on
    the torch backend '.' too: it keys torch parameters by the layer's path). So a block's `conv2.block1.1_conv`
    is Keras' own `conv2_block1_1_conv`."""
    result: dict[str, str] = {}
    taken = {n for n in names if not re.search(r"[./]", n)}
    for name in names:
        if name in taken:
            result[name] = name
            continue
        candidate = stem = re.sub(r"[./]", "_", name)
        counter = 2
        while candidate in taken:
            candidate = f"{stem}_{counter}"
            counter += 1
        taken.add(candidate)
        result[name] = candidate
    return result


def python_class_name(name: str) -> str:
    text = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_")
    if not text or text[0].isdigit() or keyword.iskeyword(text) or text in RESERVED_NAMES:
        text = "Model_" + text
    return text
