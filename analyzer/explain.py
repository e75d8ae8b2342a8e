"""`analyze explain SPEC LAYER [--set L=1024]`: how one layer's numbers come about, step by
step, each step as formula = formula with the symbol values substituted = value:

    outputs   = (L - 7)·1·75 = 121·1·75 = 9,075
    n         = 8·2·1 = 16 terms per output (kernel 8·2, 1 input channel)
    dot FLOPs = outputs·(2n - 1) = 9,075·(2·16 - 1) = 281,325

Conv1D/2D/3D, Dense, DepthwiseConv, SeparableConv, SimpleRNN/LSTM/GRU and BatchNormalization
are worked through; every other layer shows each count's formula with the values substituted.
A worked explanation is checked against the layer's counts (the handler's); if it ever
disagrees, the generic one is shown instead, so an explanation never contradicts the table.

`--training` adds the layer's part of one training step (analyzer/training.py): which gradients it
needs and why, its rule's docstring, and each part's formula = substituted = value.
"""

from __future__ import annotations

import argparse
import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sympy

from analyzer.assignments import parse_assignments
from analyzer.command import run_guarded
from analyzer.errors import UsageError, did_you_mean
from analyzer.formats.common import outputs_formula, outputs_value, shape_formula
from analyzer.layers.activations import PER_ELEMENT_FLOPS
from analyzer.layers.registry import INPUT_LAYER, TORCH_TRAINING, TRAINING
from analyzer.report import FLOP_KINDS, LayerRow, Report
from analyzer.symbolic import product, render
from analyzer.training import BATCH, OPTIMIZER_FLOPS, TrainingStep, epoch, per_epoch, training_step, training_values


@dataclass(frozen=True)
class Step:
    label: str
    formula: str  # in the spec's terms
    substituted: str  # the same with numbers
    value: int | None  # None: a list of values, not one
    note: str = ""

    def text(self, width: int) -> str:
        parts = [self.formula]
        if self.substituted != self.formula:
            parts.append(self.substituted)
        if self.value is not None and parts[-1] != str(self.value) and parts[-1] != f"{self.value:,}":
            parts.append(f"{self.value:,}")
        return f"  {self.label:<{width}} = " + " = ".join(parts) + (f"   ({self.note})" if self.note else "")


@dataclass
class Worked:
    """A worked explanation: steps, and the per-copy counts it arrives at (checked against the row)."""

    steps: list[Step]
    trainable: sympy.Expr
    non_trainable: sympy.Expr
    macs: sympy.Expr
    flops: dict[str, sympy.Expr]  # FLOP_KINDS


def _flops(dot: sympy.Expr, bias: sympy.Expr, activation: sympy.Expr, other: sympy.Expr | int = 0) -> dict[str, sympy.Expr]:
    return {"dot": dot, "bias": bias, "activation": activation, "other": sympy.sympify(other)}


class _Explainer:
    def __init__(self, report: Report) -> None:
        self.report = report

    def num(self, expr: sympy.Expr | int) -> str:
        return f"{self.report.value(expr):,}"

    def paren(self, expr: sympy.Expr | int) -> str:
        text = render(expr)
        return f"({text})" if re.search(r"[ +\-*/]", text.lstrip("-")) else text

    def product_step(self, label: str, factors: Sequence[sympy.Expr | int], note: str = "") -> tuple[Step, sympy.Expr]:
        expr = product(factors)
        formula = "·".join(self.paren(f) for f in factors) if len(factors) > 1 else render(expr)
        substituted = "·".join(self.num(f) for f in factors)
        return Step(label, formula, substituted, self.report.value(expr), note), expr

    def step(self, label: str, formula: str, substituted: str, expr: sympy.Expr | int, note: str = "") -> Step:
        return Step(label, formula, substituted, self.report.value(expr), note)

    def activation(self, name: str | None, shape: tuple[sympy.Expr, ...],
                   label: str = "activation FLOPs") -> tuple[Step, sympy.Expr]:
        name = name or "linear"
        elements = product(shape)
        if name == "softmax":
            n = shape[-1] if shape else sympy.Integer(1)
            rows = product(shape[:-1])
            expr = rows * (3 * n - 1)
            return self.step(label, f"rows·(3n - 1) = {self.paren(rows)}·(3·{self.paren(n)} - 1)",
                             f"{self.num(rows)}·(3·{self.num(n)} - 1)", expr,
                             "softmax per row of n: n exps, n - 1 adds, n divides"), expr
        per = PER_ELEMENT_FLOPS[name]
        expr = per * elements
        return self.step(label, f"{per}·outputs", f"{per}·{self.num(elements)}", expr,
                         f"{name}: {per} per element"), expr

    def kernel_layer(self, row: LayerRow, n_factors: list[sympy.Expr], n_note: str, groups: sympy.Expr, filters: sympy.Expr,
                     bias: bool, activation: str | None, units: str = "filters") -> Worked:
        """Conv and Dense: each output is an n-term dot product (+ bias, + activation)."""
        steps: list[Step] = []
        out, outputs = self.product_step("outputs", list(row.output_shape), "output elements")
        steps.append(out)
        n_step, n = self.product_step("n", n_factors, n_note)
        if groups != 1:
            n = n / groups
            n_step = Step("n", f"{n_step.formula}/{self.paren(groups)}", f"{n_step.substituted}/{self.num(groups)}",
                          self.report.value(n), n_note)
        steps.append(n_step)
        params = n * filters + (filters if bias else 0)
        steps.append(self.step("params", f"n·{units}" + (f" + {units} (bias)" if bias else ""),
                               f"{self.num(n)}·{self.num(filters)}" + (f" + {self.num(filters)}" if bias else ""), params))
        macs = outputs * n
        steps.append(self.step("MACs", "outputs·n", f"{self.num(outputs)}·{self.num(n)}", macs))
        dot = outputs * (2 * n - 1)
        steps.append(self.step("dot FLOPs", "outputs·(2n - 1)", f"{self.num(outputs)}·(2·{self.num(n)} - 1)", dot,
                               "an n-term dot product: n multiplies, n - 1 adds"))
        bias_flops = outputs if bias else sympy.Integer(0)
        steps.append(self.step("bias FLOPs", "outputs" if bias else "0 (no bias)", self.num(bias_flops), bias_flops))
        act_step, act = self.activation(activation, row.output_shape)
        steps.append(act_step)
        return Worked(steps, params, sympy.Integer(0), macs, _flops(dot, bias_flops, act))


def _bias(report: Report, declared: bool) -> bool:
    return {"on": True, "off": False}.get(report.bias, declared)


def _convolution(ex: _Explainer, row: LayerRow) -> Worked:
    layer = row.spec
    (shape,) = row.input_shapes
    channels = shape[-1]
    kernel = list(layer.kernel_size)  # type: ignore[union-attr]
    note = f"kernel {'·'.join(render(k) for k in kernel)}, {render(channels)} input channel(s)"
    return ex.kernel_layer(row, [*kernel, channels], note + " / groups" if layer.groups != 1 else note,  # type: ignore[union-attr]
                           layer.groups, layer.filters, _bias(ex.report, layer.use_bias), layer.activation)  # type: ignore[union-attr]


def _dense(ex: _Explainer, row: LayerRow) -> Worked:
    layer = row.spec
    (shape,) = row.input_shapes
    return ex.kernel_layer(row, [shape[-1]], "input features (last axis)", sympy.Integer(1), layer.units,  # type: ignore[union-attr]
                           _bias(ex.report, layer.use_bias), layer.activation, "units")  # type: ignore[union-attr]


def _depthwise(ex: _Explainer, row: LayerRow) -> Worked:
    layer = row.spec
    kernel = list(layer.kernel_size)  # type: ignore[union-attr]
    channels = row.output_shape[-1]
    return ex.kernel_layer(row, kernel, "kernel positions (one channel each)", sympy.Integer(1), channels,
                           _bias(ex.report, layer.use_bias), layer.activation, "channels")  # type: ignore[union-attr]


def _separable(ex: _Explainer, row: LayerRow) -> Worked:
    layer = row.spec
    (shape,) = row.input_shapes
    r = ex.report
    steps: list[Step] = []
    kernel_step, k = ex.product_step("k", list(layer.kernel_size), "depthwise kernel positions")  # type: ignore[union-attr]
    dc_step, dc = ex.product_step("channels", [shape[-1], layer.depth_multiplier],  # type: ignore[union-attr]
                                  "input channels · depth_multiplier")
    pos_step, positions = ex.product_step("positions", list(row.output_shape[:-1]), "output positions")
    filters = layer.filters  # type: ignore[union-attr]
    steps += [kernel_step, dc_step, pos_step]
    bias = _bias(r, layer.use_bias)  # type: ignore[union-attr]
    params = k * dc + dc * filters + (filters if bias else 0)
    steps.append(ex.step("params", "k·channels + channels·filters" + (" + filters (bias)" if bias else ""),
                         f"{ex.num(k)}·{ex.num(dc)} + {ex.num(dc)}·{ex.num(filters)}" + (f" + {ex.num(filters)}" if bias else ""),
                         params, "depthwise kernel, pointwise 1x1 kernel"))
    dw, pw = positions * dc, positions * filters
    steps.append(ex.step("depthwise outputs", "positions·channels", f"{ex.num(positions)}·{ex.num(dc)}", dw))
    steps.append(ex.step("pointwise outputs", "positions·filters", f"{ex.num(positions)}·{ex.num(filters)}", pw))
    macs = dw * k + pw * dc
    steps.append(ex.step("MACs", "depthwise outputs·k + pointwise outputs·channels",
                         f"{ex.num(dw)}·{ex.num(k)} + {ex.num(pw)}·{ex.num(dc)}", macs))
    dot = dw * (2 * k - 1) + pw * (2 * dc - 1)
    steps.append(ex.step("dot FLOPs", "depthwise outputs·(2k - 1) + pointwise outputs·(2·channels - 1)",
                         f"{ex.num(dw)}·(2·{ex.num(k)} - 1) + {ex.num(pw)}·(2·{ex.num(dc)} - 1)", dot))
    bias_flops = pw if bias else sympy.Integer(0)
    steps.append(ex.step("bias FLOPs", "pointwise outputs" if bias else "0 (no bias)", ex.num(bias_flops), bias_flops))
    act_step, act = ex.activation(layer.activation, row.output_shape)  # type: ignore[union-attr]
    steps.append(act_step)
    return Worked(steps, params, sympy.Integer(0), macs, _flops(dot, bias_flops, act))


def _recurrent(ex: _Explainer, row: LayerRow) -> Worked:
    layer = row.spec
    (shape,) = row.input_shapes
    steps_t, features = shape
    units, cell = layer.units, layer.cell  # type: ignore[union-attr]
    r = ex.report
    vectors = layer.bias_vectors() if _bias(r, layer.use_bias) else 0  # type: ignore[union-attr]
    g = cell.gates
    T, I, H = ex.num(steps_t), ex.num(features), ex.num(units)  # noqa: E741
    out = [Step("T, I, H", f"{render(steps_t)}, {render(features)}, {render(units)}", f"{T}, {I}, {H}", None,
                f"timesteps, input features, units; {g} gate block(s) of H units, {vectors} bias vector(s)")]
    params = g * units * (features + units) + vectors * g * units
    out.append(ex.step("params", f"{g}·H·(I + H) + {vectors}·{g}·H", f"{g}·{H}·({I} + {H}) + {vectors}·{g}·{H}", params,
                       "kernel, recurrent kernel, bias"))
    macs = steps_t * g * units * (features + units)
    out.append(ex.step("MACs", f"T·{g}·H·(I + H)", f"{T}·{g}·{H}·({I} + {H})", macs))
    dot = steps_t * g * units * ((2 * features - 1) + (2 * units - 1))
    out.append(ex.step("dot FLOPs", f"T·{g}·H·((2I - 1) + (2H - 1))", f"{T}·{g}·{H}·((2·{I} - 1) + (2·{H} - 1))", dot,
                       "an I-term dot with x and an H-term dot with h per gate unit"))
    bias = steps_t * vectors * g * units
    out.append(ex.step("bias FLOPs", f"T·{vectors}·{g}·H", f"{T}·{vectors}·{g}·{H}", bias))
    kinds = [(cell.activations, layer.activation)]  # type: ignore[union-attr]
    if cell.recurrent_activations:
        kinds.append((cell.recurrent_activations, layer.recurrent_activation))  # type: ignore[union-attr]
    if any(name == "softmax" for _, name in kinds):
        raise _NotWorked
    per_unit = " + ".join(f"{count}·{PER_ELEMENT_FLOPS[name]}" for count, name in kinds)
    act = sum(count * PER_ELEMENT_FLOPS[name] for count, name in kinds) * steps_t * units
    note = ", ".join(f"{count} {name} ({PER_ELEMENT_FLOPS[name]} FLOPs each)" for count, name in kinds) + " per unit per step"
    out.append(ex.step("activation FLOPs", f"T·H·({per_unit})", f"{T}·{H}·({per_unit})", act, note))
    other = steps_t * cell.other * units
    out.append(ex.step("other FLOPs", f"T·{cell.other}·H", f"{T}·{cell.other}·{H}", other,
                       f"{cell.other} elementwise gate operations per unit per step"))
    return Worked(out, params, sympy.Integer(0), macs, {"dot": dot, "bias": bias, "activation": act, "other": other})


def _batch_normalization(ex: _Explainer, row: LayerRow) -> Worked:
    layer = row.spec
    channels = row.output_shape[-1] if layer.axis == -1 else None  # type: ignore[union-attr]
    if channels is None:
        raise _NotWorked
    affine = int(layer.center) + int(layer.scale)  # type: ignore[union-attr]
    C = ex.num(channels)
    out_step, elements = ex.product_step("outputs", list(row.output_shape), "elements")
    trainable = affine * channels
    steps = [
        Step("C", render(channels), C, ex.report.value(channels), "channels (the last axis)"),
        ex.step("trainable params", f"{affine}·C", f"{affine}·{C}", trainable,
                " and ".join(n for n, on in (("gamma", layer.scale), ("beta", layer.center)) if on) or "none"),  # type: ignore[union-attr]
        ex.step("non-trainable params", "2·C", f"2·{C}", 2 * channels, "moving mean and variance"),
        out_step,
        ex.step("other FLOPs", "2·outputs", f"2·{ex.num(elements)}", 2 * elements,
                "inference: one multiply and one add per element (statistics folded)"),
    ]
    zero = sympy.Integer(0)
    return Worked(steps, trainable, 2 * channels, zero, {"dot": zero, "bias": zero, "activation": zero, "other": 2 * elements})


class _NotWorked(Exception):
    """This layer's settings are not covered by the worked explanation: use the generic one."""


WORKED: dict[str, Callable[[_Explainer, LayerRow], Worked]] = {
    **dict.fromkeys(("Conv1D", "Conv2D", "Conv3D"), _convolution),
    "Dense": _dense,
    **dict.fromkeys(("DepthwiseConv1D", "DepthwiseConv2D"), _depthwise),
    **dict.fromkeys(("SeparableConv1D", "SeparableConv2D"), _separable),
    **dict.fromkeys(("SimpleRNN", "LSTM", "GRU"), _recurrent),
    "BatchNormalization": _batch_normalization,
}


def _agrees(worked: Worked, row: LayerRow) -> bool:
    m = row.multiplier
    c = row.counts
    pairs = [(worked.trainable + worked.non_trainable, c.params), (worked.macs, c.macs),
             *((worked.flops[k], getattr(c, k)) for k in FLOP_KINDS)]
    return all(sympy.expand(mine * m - theirs) == 0 for mine, theirs in pairs)


def worked_steps(report: Report, row: LayerRow) -> Worked | None:
    """The worked explanation of `row`, or None (no explainer for its type, settings it does not
    cover, or, which would be a bug, a result that differs from the layer's counts)."""
    if row.spec is None or row.type not in WORKED:
        return None
    try:
        worked = WORKED[row.type](_Explainer(report), row)
    except (_NotWorked, AttributeError, KeyError, TypeError, ValueError):
        return None
    return worked if _agrees(worked, row) else None


def _substitute(report: Report, expr: sympy.Expr) -> str:
    """The rendered formula with each symbol replaced by its value: '1200*L - 8400' -> '1200*128 - 8400'."""
    values = report.symbol_values()
    text = render(expr)
    return re.sub(r"\b[A-Za-z_][A-Za-z0-9_]*\b", lambda m: str(values.get(m.group(0), m.group(0))), text)


def generic_steps(report: Report, row: LayerRow) -> list[Step]:
    """Each count's formula with the symbol values substituted (params, MACs, FLOPs always; the rest if not 0)."""
    c = row.counts
    shown = [("params", c.params), ("trainable params", c.trainable_params), ("non-trainable params", c.non_trainable_params),
             ("MACs", c.macs), *((f"{k} FLOPs", getattr(c, k)) for k in FLOP_KINDS), ("FLOPs", c.flops)]
    always = {"params", "MACs", "FLOPs"}
    return [Step(label, render(e), _substitute(report, e), report.value(e)) for label, e in shown if label in always or e != 0]


def explain(report: Report, layer: str) -> str:
    """The explanation of `layer` at the report's symbol values, as text."""
    row = report.layers.get(layer)
    if row is None:
        raise UsageError(f"no layer '{layer}' in {report.file}", hint=did_you_mean(layer, list(report.layers)))
    values = ", ".join(f"{k}={v}" for k, v in report.symbol_values().items()) or "no symbols"
    ex = _Explainer(report)
    shapes = ", ".join(shape_formula(s) for s in row.input_shapes) or "none (a model input)"
    out_f, out_v = outputs_formula(row.output_shapes), outputs_value(report, row.output_shapes)
    lines = [f"{row.name} ({row.type}) at {values}",
             f"  input shape(s): {shapes}",
             f"  output shape:   {out_f}" + (f" = {out_v}" if out_v != out_f else "")]
    worked = worked_steps(report, row)
    if worked is None:
        steps = generic_steps(report, row)
        lines.append("  each count's formula, with the values substituted:")
    else:
        steps = list(worked.steps)
        c = row.counts
        flops = [ex.num(getattr(c, k) / row.multiplier) for k in FLOP_KINDS]
        steps.append(Step("FLOPs", "dot + bias + activation + other", " + ".join(flops), report.value(c.flops / row.multiplier)))
        if not row.spec.trainable:  # type: ignore[union-attr]
            lines.append("  trainable: false, so all of its params count as non-trainable")
    width = max(len(s.label) for s in steps)
    lines += [s.text(width) for s in steps]
    if worked is not None and row.multiplier != 1:
        lines.append(f"  x {render(row.multiplier)} = {ex.num(row.multiplier)} copies (a block repeated "
                     f"{render(row.multiplier)} times): every count above times {ex.num(row.multiplier)}")
    return "\n".join(lines) + "\n"


def explain_convention(report: Report, layer: str, name: str) -> str:
    """What profile `name` (--convention) counts for `layer`, against nnspec's count in the same unit, and the
    tool rule that says why (its docstring names the tool's function)."""
    from analyzer.conventions import recount_with
    from analyzer.layers.registry import CONVENTIONS

    recount = recount_with(report, name)
    row, profile = report.layers[layer], recount.profile
    count = recount.layers[layer]
    in_macs = profile.unit.startswith("MACs")
    ours, unit = (row.counts.macs, "MACs") if in_macs else (row.counts.flops, "FLOPs")
    theirs, mine = report.value(count.expr), report.value(ours)
    lines = [f"--convention {name}: {profile.tool}; one count is: {profile.unit}",
             f"  this layer       = {render(count.expr)} = {theirs:,}" + (f"  ({count.skipped})" if count.skipped else ""),
             f"  nnspec's {unit:<7} = {render(ours)} = {mine:,}",
             f"  difference       = {theirs - mine:+,}" + ("" if theirs == mine else f" ({theirs / mine:.4g}x)" if mine else "")]
    rule = CONVENTIONS.rule(name, row.type) if profile.table is None and profile.generic is None else None
    if rule is not None:
        lines.append("  the rule:")
        lines += [f"    {text}" for text in (inspect.getdoc(rule) or "(no docstring)").splitlines()]
    return "\n".join(lines) + "\n"


# -- --training: the layer's part of one training step ---------------------------------------------------------


def _requires(step: TrainingStep, name: str) -> bool:
    """Does the output of `name` need a gradient in the step (it trains, or something before it does)?"""
    if step.report.layers[name].type == INPUT_LAYER:
        return step.input_grad
    needs = step.needs[name]
    return needs.input or needs.weights


def _why_input(step: TrainingStep, row: LayerRow) -> str:
    needing = [ref.partition(":")[0] for ref in row.inputs if _requires(step, ref.partition(":")[0])]
    if not needing:
        return "no: nothing before it trains and the model input needs none (--input-grad adds it)"

    def why(name: str) -> str:
        if step.report.layers[name].type == INPUT_LAYER:
            return f"{name} is a model input and --input-grad asks for its gradient"
        return f"{name} trains" if step.needs[name].weights else f"{name} passes it back to a layer that trains"

    return "yes: dL/dx goes back to its input(s): " + "; ".join(why(n) for n in needing)


def _why_weights(step: TrainingStep, row: LayerRow) -> str:
    trainable = step.layers[row.name].trainable_params
    if trainable != 0:
        formula = f" ({render(trainable)})" if trainable.free_symbols else ""
        return f"yes: it trains {step.report.value(trainable):,} params{formula}"
    if row.counts.trainable_params != 0:
        return "no: frozen (--frozen), its weights get no gradient and no optimizer step"
    return "no: it has no trainable weights" + (" (trainable: false)" if row.counts.non_trainable_params != 0 else "")


def explain_training(step: TrainingStep, layer: str) -> str:
    """The training step through `layer`, step by step: which gradients it needs and why, the rule (its docstring),
    and each part's formula with the values substituted."""
    report = step.report
    row = report.layers.get(layer)
    if row is None:
        raise UsageError(f"no layer '{layer}' in {report.file}", hint=did_you_mean(layer, list(report.layers)))
    part = step.layers[layer]
    b = report.symbol(BATCH).symbol
    counted = ", as torch's FlopCounterMode counts it" if step.convention == "torch" else ""
    lines = [f"Training step through {row.name} ({row.type}): optimizer {step.optimizer}, "
             f"B={report.value(b):,}{counted}"]
    if row.type == INPUT_LAYER:
        return "\n".join([*lines, "  a model input: no arithmetic (its gradient, with --input-grad, is its "
                                   "reader's grad input)"]) + "\n"
    needs = step.needs[layer]
    lines += [f"  needs the input gradient:  {_why_input(step, row)}",
              f"  needs the weight gradient: {_why_weights(step, row)}"]
    rules = TORCH_TRAINING if step.convention == "torch" else TRAINING
    rule = rules.get(row.type)
    if not (needs.input or needs.weights):
        lines.append("  so no backward at all: the rule is not run")
    elif rule is not None:
        lines.append(f"  rule: {rule.__module__}.{rule.__name__}:")
        lines += [f"    {text}" for text in (inspect.getdoc(rule) or "(no docstring)").splitlines()]
    if step.convention == "torch":
        forward_note = "FlopCounterMode's forward: 2 per MAC of mm and convolution, B samples"
    elif sympy.expand(part.forward - b * row.counts.flops) == 0:
        forward_note = f"B × the inference forward, {report.value(row.counts.flops):,} per sample"
    else:
        forward_note = "the training-mode forward (batch statistics, masks: the rule's)"
    trainable = part.trainable_params
    per_parameter = 0 if step.convention == "torch" else OPTIMIZER_FLOPS[step.optimizer]
    optimizer_note = ("FlopCounterMode counts no optimizer op" if step.convention == "torch"
                      else f"{step.optimizer}: {per_parameter} FLOPs per trainable parameter")
    shown = [("forward", part.forward, forward_note), ("grad input", part.grad_input, "dL/dx" if needs.input else "not needed"),
             ("grad weight", part.grad_weight, "dL/dW and dL/db" if needs.weights else "not needed"),
             ("grad other", part.grad_other, "the elementwise backward both need")]
    steps = [Step(label, render(e), _substitute(report, e), report.value(e), note) for label, e, note in shown]
    steps.append(Step("optimizer", f"{per_parameter}·trainable params", f"{per_parameter}·{report.value(trainable):,}",
                      report.value(part.optimizer), optimizer_note))
    values = [f"{report.value(x):,}" for x in (part.forward, part.grad_input, part.grad_weight, part.grad_other,
                                               part.optimizer)]
    steps.append(Step("step FLOPs", "forward + grad input + grad weight + grad other + optimizer", " + ".join(values),
                      report.value(part.flops), render(part.flops)))
    if step.dataset is not None:
        e = epoch(step)
        flops = per_epoch(part.flops, e.samples, b)
        steps.append(Step("epoch FLOPs", render(flops), _substitute(report, flops), report.value(flops),
                          f"{report.value(e.steps):,} steps of N={report.value(e.samples):,} samples"))
    width = max(len(s.label) for s in steps)
    lines += [s.text(width) for s in steps]
    if row.multiplier != 1:
        lines.append(f"  (every part counts the {render(row.multiplier)} copies of a repeated block)")
    if part.note:
        lines.append(f"  note: {part.note}")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="analyze explain", description="How one layer's params, MACs and FLOPs are derived, with the values substituted.")
    parser.add_argument("spec", help="path to a spec file")
    parser.add_argument("layer", help="the layer's name, as in the table")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="NAME=VALUE",
                        help="value of a symbol, e.g. --set L=1024 (repeatable)")
    parser.add_argument("--bias", choices=("spec", "on", "off"), default="spec", help="as for analyze")
    training = parser.add_argument_group("training", "also the layer's part of one training step of B samples")
    training.add_argument("--training", action="store_true",
                          help="which gradients the layer computes and why, its rule, and each part's formula "
                               "(the batch is the symbol B: --set B=32; --set N=50000 adds the epoch)")
    training.add_argument("--optimizer", choices=tuple(OPTIMIZER_FLOPS), default=None,
                          help="with --training: the optimizer (default: adam)")
    training.add_argument("--frozen", action="append", default=[], metavar="NAME[,NAME...]",
                          help="with --training: layers (or block instances) that do not train")
    training.add_argument("--input-grad", action="store_true", help="with --training: also the model input's gradient")
    training.add_argument("--convention", default=None,
                          help="without --training: what that counter (torch, thop, ptflops, fvcore, ...) counts for "
                               "the layer, against nnspec, and its rule; with --training: nnspec (default) or torch's "
                               "FlopCounterMode")
    return parser


def main(argv: Sequence[str]) -> int:
    from analyzer.api import analyze

    args = build_parser().parse_args(list(argv))

    def produce() -> str:
        values = parse_assignments(args.assignments)
        if not args.training:
            if args.optimizer or args.frozen or args.input_grad:
                raise UsageError("--optimizer, --frozen and --input-grad go with --training")
            report = analyze(args.spec, bias=args.bias, **values)
            text = explain(report, args.layer)
            return text + "\n" + explain_convention(report, args.layer, args.convention) if args.convention else text
        if args.convention not in (None, "nnspec", "torch"):
            raise UsageError(f"--training counts with the nnspec or the torch convention, not {args.convention!r}")
        report = analyze(args.spec, bias=args.bias)
        batch, dataset = training_values(report, values)
        report = report.at(**values) if values else report
        frozen = tuple(n.strip() for names in args.frozen for n in names.split(",") if n.strip())
        if args.frozen and not frozen:
            raise UsageError("--frozen: no layer name given, e.g. --frozen conv1d_1")
        step = training_step(report, optimizer=args.optimizer or "adam", frozen=frozen, input_grad=args.input_grad,
                             batch=batch, convention=args.convention or "nnspec", dataset=dataset)
        return explain(report, args.layer) + "\n" + explain_training(step, args.layer)

    return run_guarded(produce, debug=getattr(args, "debug", False), report_with="the spec file")
