"""Elementwise layers: Lambda restricted to named math functions, and Rescaling.

A Keras Lambda wraps arbitrary Python; a spec names the function instead
(`function: cos`), from the fixed list below, so nothing in a spec runs as code.
Each function counts 1 FLOP per element, under 'other'.

Rescaling (Keras' keras.layers.Rescaling, Gemma's sqrt(hidden_size) embedding scale): y = x · scale + offset,
1 FLOP per element for the multiply when scale != 1 and 1 for the add when offset != 0, under 'other'; a
multiply by exactly 1 or an add of exactly 0 leaves every element as it is, so it is no arithmetic (and the
torch export does not run it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import sympy

from analyzer.layers import backward as train
from analyzer.layers import saved
from analyzer.layers import tool_rules as tools
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, Construct, Ref
from analyzer.layers.registry import counted_as, register, saves_as, trains_as
from analyzer.spec.fields import Real
from analyzer.symbolic import ZERO, product

if TYPE_CHECKING:
    from analyzer.export.plan import LayerPlan
    from analyzer.report import LayerRow

ElementwiseFunction = Literal["cos", "sin", "exp", "log", "sqrt", "abs", "square", "negative"]


class Lambda(LayerSpec):
    type: Literal["Lambda"]
    function: ElementwiseFunction


@register(Lambda)
def elementwise_function(layer: Lambda, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    return LayerResult(shape, other=product(shape))

# -- what each counting tool counts on the torch export (torch_modules.elementwise.Lambda: torch.cos, ...) --

LAMBDA_OPS = {"cos": "aten::cos", "sin": "aten::sin", "exp": "aten::exp", "log": "aten::log", "sqrt": "aten::sqrt",
              "abs": "aten::abs", "square": "aten::square", "negative": "aten::neg"}


def fvcore_elementwise(row: LayerRow) -> tools.Outcome:
    """Lambda cos / sin / exp / ...: aten::cos, aten::sin, aten::exp, ... are unsupported."""
    return tools.Skipped(tools.fvcore_unsupported([LAMBDA_OPS[row.spec.function]]))


counted_as("Lambda", torch=tools.torch_no_formula, thop=tools.thop_not_a_module, ptflops=tools.ptflops_not_patched,
           fvcore=fvcore_elementwise)


# -- export --

@TORCH_BUILDERS.register("Lambda")
def torch_builder(layer: Lambda, plan: LayerPlan) -> Construct:
    return Construct.of("Lambda", function=layer.function)


@KERAS_BUILDERS.register("Lambda")
def keras_builder(layer: Lambda, plan: LayerPlan) -> Construct:
    return Construct.of("Lambda", function=Ref(f"ops.{layer.function}"))


# -- training (one optimizer step, whole batch; docs/conventions.md#training) --

# d/dx times the incoming gradient g, per element: cos -sin(x)·g (sin, negate, multiply), sin cos(x)·g, exp y·g,
# log g/x, sqrt g/(2y) (multiply, divide), abs sign(x)·g, square 2x·g, negative -g.
FUNCTION_BACKWARD = {"cos": 3, "sin": 2, "exp": 1, "log": 1, "sqrt": 2, "abs": 2, "square": 2, "negative": 1}


def train_elementwise(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """dL/dx through the named function, per element (FUNCTION_BACKWARD)."""
    return train.Backward(grad_input=batch * product(row.output_shape) * FUNCTION_BACKWARD[row.spec.function])


trains_as("Lambda", rule=train_elementwise)


# -- saved for the backward (docs/conventions.md#training, Memory) --

# What each function's backward keeps (torch's derivatives.yaml): cos, sin, log, abs, square their input x; exp and
# sqrt their output y; negative nothing.
FUNCTION_SAVES = {"cos": "x", "sin": "x", "exp": "y", "log": "x", "sqrt": "y", "abs": "x", "square": "x", "negative": ""}


def saves_elementwise(ctx: saved.SaveContext) -> saved.Saves:
    """The function's (FUNCTION_SAVES); the output keeps the input's layout (TensorIterator)."""
    kept = {"x": (saved.Saved.input(0),), "y": (saved.OUTPUT,), "": ()}[FUNCTION_SAVES[ctx.spec.function]]
    return saved.Saves(kept, ctx.inputs[0].layout.dense())


saves_as("Lambda", rule=saves_elementwise)


# -- Rescaling: y = x · scale + offset (keras.layers.Rescaling) --

class Rescaling(LayerSpec):
    """Keras' Rescaling with a number for `scale` and `offset` (Keras also takes an array for a per-channel scale:
    not read)."""

    type: Literal["Rescaling"]
    scale: Real
    offset: Real = 0.0


def rescaling_ops(spec: Rescaling) -> tuple[str, ...]:
    """The aten ops the torch export runs: x * scale unless scale is 1, + offset unless offset is 0."""
    return (("aten::mul",) if spec.scale != 1 else ()) + (("aten::add",) if spec.offset != 0 else ())


@register(Rescaling)
def rescaling(layer: Rescaling, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    return LayerResult(shape, other=len(rescaling_ops(layer)) * product(shape))


def fvcore_rescaling(row: LayerRow) -> tools.Outcome:
    """x * scale and x + offset trace to aten::mul and aten::add, both unsupported (neither runs when scale is 1 and
    offset 0: nothing to skip)."""
    return tools.fvcore_outcome(ZERO, tools.fvcore_unsupported(rescaling_ops(row.spec)))


def thop_rescaling(row: LayerRow) -> sympy.Expr:
    """torch_modules.elementwise.Rescaling is not in thop's `register_hooks` (profile: "Cannot find rule for ...
    Treat it as zero Macs"), and its * + operators are no modules: 0."""
    return ZERO


def ptflops_rescaling(row: LayerRow) -> sympy.Expr:
    """torch_modules.elementwise.Rescaling is not in `MODULES_MAPPING`; `TENSOR_OPS_MAPPING` patches torch.mul,
    Tensor.mul, torch.add, ..., not the * + operators (Tensor.__mul__, __add__) the module uses: 0."""
    return ZERO


counted_as("Rescaling", torch=tools.torch_no_formula, thop=thop_rescaling, ptflops=ptflops_rescaling,
           fvcore=fvcore_rescaling)


@TORCH_BUILDERS.register("Rescaling")
@KERAS_BUILDERS.register("Rescaling")
def rescaling_builder(layer: Rescaling, plan: LayerPlan) -> Construct:
    """keras.layers.Rescaling, or torch_modules' Rescaling: the same arguments."""
    return Construct.of("Rescaling", scale=layer.scale, offset=layer.offset)


def train_rescaling(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """dL/dx of y = s·x + o is s·g: one multiply per element, none when s is 1 (g passes as it is); no weights."""
    return train.Backward(grad_input=batch * product(row.output_shape) if row.spec.scale != 1 else ZERO)


trains_as("Rescaling", rule=train_rescaling)


def saves_rescaling(ctx: saved.SaveContext) -> saved.Saves:
    """x * scale (mul.Scalar: mul_tensor_backward(grad, scale) keeps the number, no tensor) and x + offset
    (add.Scalar) keep nothing; with neither (scale 1, offset 0) the output is the input itself."""
    x = ctx.inputs[0]
    if not rescaling_ops(ctx.spec):
        return saved.Saves(layout=x.layout, alias=0)
    return saved.Saves((), x.layout.dense())


saves_as("Rescaling", rule=saves_rescaling)
