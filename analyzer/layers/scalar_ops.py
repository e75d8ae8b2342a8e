"""A tensor and a number, and keras.applications' own scaling layers.

ScalarOp: Keras 3 writes `x + 3.0`, `x * (1 / 6)`, `1.0 - x` on a symbolic tensor as an operation saved in the model
config as a layer (class Add / Subtract / Multiply / Divide of keras.src.ops.numpy, with the number among the call's
arguments). One FLOP per element (under 'other'), whatever the number: Keras computes it.

LayerScale (keras.src.applications.convnext): x · gamma, gamma a trainable vector of `projection_dim` values (the
last axis): projection_dim params, one multiply per element.

CustomScaleLayer (keras.src.applications.inception_resnet_v2): inputs[0] + inputs[1] · scale, no params: a multiply
and an add per element.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

import sympy
from pydantic import StrictBool, StrictInt

from analyzer.layers import backward as train
from analyzer.layers import saved
from analyzer.layers import tool_rules as tools
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, Construct
from analyzer.layers.registry import counted_as, register, saves_as, trains_as
from analyzer.spec.fields import Real
from analyzer.symbolic import ZERO, product

if TYPE_CHECKING:
    from analyzer.export.plan import LayerPlan
    from analyzer.report import LayerRow

ScalarOperation = Literal["add", "subtract", "multiply", "divide"]
# What torch.jit traces the * + - / operators of torch_modules.scalar_ops.ScalarOp to, by (op, reverse): a number on
# the left is Tensor.__radd__ / __rsub__ / __rmul__ / __rtruediv__ (torch/_tensor.py): __rsub__ is
# _VariableFunctions.rsub, __rtruediv__ is `self.reciprocal() * other`.
SCALAR_ATEN_OPS = {("add", False): ["aten::add"], ("add", True): ["aten::add"],
                   ("subtract", False): ["aten::sub"], ("subtract", True): ["aten::rsub"],
                   ("multiply", False): ["aten::mul"], ("multiply", True): ["aten::mul"],
                   ("divide", False): ["aten::div"], ("divide", True): ["aten::reciprocal", "aten::mul"]}


class ScalarOp(LayerSpec):
    """x OP value (value OP x with `reverse: true`), elementwise; the Keras names of ops.add / subtract / multiply /
    divide with one tensor operand."""

    type: Literal["ScalarOp"]
    op: ScalarOperation
    value: Real
    reverse: StrictBool = False


@register(ScalarOp)
def scalar_op(layer: ScalarOp, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    return LayerResult(shape, other=product(shape))


class LayerScale(LayerSpec):
    """ConvNeXt's LayerScale: x · gamma over the last axis, gamma of `projection_dim` values initialized to
    `init_values`."""

    type: Literal["LayerScale"]
    projection_dim: StrictInt
    init_values: Real = 1e-6


@register(LayerScale)
def layer_scale(layer: LayerScale, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    if not shape:
        ctx.fail("needs an input with a feature axis")
    ctx.require_equal(shape[-1], sympy.Integer(layer.projection_dim), f"needs its last axis ({shape[-1]}) to equal "
                      f"projection_dim {layer.projection_dim}: gamma multiplies it elementwise", "projection_dim")
    return LayerResult(shape, trainable_params=sympy.Integer(layer.projection_dim), other=product(shape))


class CustomScaleLayer(LayerSpec):
    """InceptionResNetV2's CustomScaleLayer: inputs[0] + inputs[1] · scale (two inputs of one shape)."""

    type: Literal["CustomScaleLayer"]
    scale: Real
    arity: ClassVar[int | None] = 2


@register(CustomScaleLayer)
def custom_scale(layer: CustomScaleLayer, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    first, second = inputs
    if len(first) != len(second):
        ctx.fail(f"its two inputs have different ranks ({len(first)} and {len(second)})")
    for a, b in zip(first, second, strict=True):
        ctx.require_equal(a, b, f"needs its two inputs to have one shape ({list(first)} vs {list(second)})")
    return LayerResult(first, other=2 * product(first))


# -- what each counting tool counts on the torch export (torch_modules.scalar_ops: the * + - / operators) --

def fvcore_scalar_op(row: LayerRow) -> tools.Outcome:
    """x + c, x - c, x * c, x / c trace to aten::add / aten::sub / aten::mul / aten::div; c + x and c * x to aten::add
    and aten::mul, c - x to aten::rsub, c / x to aten::reciprocal and aten::mul (SCALAR_ATEN_OPS): all unsupported."""
    return tools.fvcore_outcome(ZERO, tools.fvcore_unsupported(SCALAR_ATEN_OPS[(row.spec.op, row.spec.reverse)]))


def fvcore_layer_scale(row: LayerRow) -> tools.Outcome:
    """x * gamma traces to aten::mul, unsupported."""
    return tools.fvcore_outcome(ZERO, tools.fvcore_unsupported(["aten::mul"]))


def fvcore_custom_scale(row: LayerRow) -> tools.Outcome:
    """a + b * scale traces to aten::mul and aten::add, both unsupported."""
    return tools.fvcore_outcome(ZERO, tools.fvcore_unsupported(["aten::mul", "aten::add"]))


def thop_unknown_module(row: LayerRow) -> sympy.Expr:
    """torch_modules.scalar_ops' ScalarOp / LayerScale / CustomScaleLayer are not in thop's `register_hooks`
    (profile: "Cannot find rule for ... Treat it as zero Macs"); the operators they use are no modules: 0."""
    return ZERO


def ptflops_unknown_module(row: LayerRow) -> sympy.Expr:
    """The modules are not in ptflops' `MODULES_MAPPING`; `TENSOR_OPS_MAPPING` patches torch.mul, torch.add, ...,
    not the * + - / operators (Tensor.__mul__, ...) they use: 0."""
    return ZERO


for _type, _fvcore in (("ScalarOp", fvcore_scalar_op), ("LayerScale", fvcore_layer_scale),
                       ("CustomScaleLayer", fvcore_custom_scale)):
    counted_as(_type, torch=tools.torch_no_formula, thop=thop_unknown_module, ptflops=ptflops_unknown_module,
               fvcore=_fvcore)


# -- export --

@TORCH_BUILDERS.register("ScalarOp")
def torch_scalar_op(layer: ScalarOp, plan: LayerPlan) -> Construct:
    return Construct.of("ScalarOp", op=layer.op, value=layer.value, reverse=layer.reverse)


@TORCH_BUILDERS.register("LayerScale")
def torch_layer_scale(layer: LayerScale, plan: LayerPlan) -> Construct:
    return Construct.of("LayerScale", init_values=layer.init_values, projection_dim=layer.projection_dim)


@TORCH_BUILDERS.register("CustomScaleLayer")
def torch_custom_scale(layer: CustomScaleLayer, plan: LayerPlan) -> Construct:
    return Construct.of("CustomScaleLayer", scale=layer.scale)


KERAS_BUILDERS.refuse("ScalarOp", "is a keras.ops call on a tensor (x + 3.0), not a keras.layers class; the Keras "
                                  "export builds layers only")
KERAS_BUILDERS.refuse("LayerScale", "is keras.src.applications.convnext.LayerScale, a private class outside "
                                    "keras.layers")
KERAS_BUILDERS.refuse("CustomScaleLayer", "is keras.src.applications.inception_resnet_v2.CustomScaleLayer, a "
                                          "private class outside keras.layers")


# -- training (one optimizer step, whole batch; docs/conventions.md#training) --

# dL/dx per element, g the incoming gradient: x + c and x - c pass g (0), c - x is -g (1), x * c is g·c (1),
# x / c is g / c (1), c / x is -c·g / x² (x·x, a divide, a multiply: 3).
SCALAR_BACKWARD = {("add", False): 0, ("add", True): 0, ("subtract", False): 0, ("subtract", True): 1,
                   ("multiply", False): 1, ("multiply", True): 1, ("divide", False): 1, ("divide", True): 3}


def train_scalar_op(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """dL/dx through x OP c, per element (SCALAR_BACKWARD); no weights."""
    per = SCALAR_BACKWARD[(row.spec.op, row.spec.reverse)]
    return train.Backward(grad_input=batch * product(row.output_shape) * per)


def train_layer_scale(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """Over N = B·outputs, C = projection_dim: dL/dx = g·gamma, N multiplies; dL/dgamma = Σ g·x over the N / C
    positions of each channel: N multiplies and N - C adds."""
    n = batch * product(row.output_shape)
    channels = sympy.Integer(row.spec.projection_dim)
    return train.Backward(grad_input=n, grad_weight=2 * n - channels)


def train_custom_scale(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """dL/da = g (nothing to compute), dL/db = g·scale: one multiply per element."""
    return train.Backward(grad_input=batch * product(row.output_shape))


trains_as("ScalarOp", rule=train_scalar_op)
trains_as("LayerScale", rule=train_layer_scale)
trains_as("CustomScaleLayer", rule=train_custom_scale)


# -- saved for the backward (docs/conventions.md#training, Memory) --

def saves_scalar_op(ctx: saved.SaveContext) -> saved.Saves:
    """x + c, x - c, x * c, x / c, c + x, c - x (rsub), c * x keep only the number. c / x is Tensor.__rtruediv__,
    `x.reciprocal() * c` (torch/_tensor.py): reciprocal keeps its result r = 1 / x, a tensor of its own, and r * c
    keeps only the number; the layer's output r * c is another storage (not saved here)."""
    reciprocal = ctx.spec.op == "divide" and ctx.spec.reverse
    kept = (saved.Saved.new("reciprocal", ctx.inputs[0].elements),) if reciprocal else ()
    return saved.Saves(kept, ctx.inputs[0].layout.dense())


def saves_layer_scale(ctx: saved.SaveContext) -> saved.Saves:
    """x * gamma keeps x for dL/dgamma when gamma needs a gradient (gamma itself is a weight, not counted)."""
    kept = (saved.Saved.input(0),) if ctx.trains else ()
    return saved.Saves(kept, ctx.inputs[0].layout.dense())


def saves_custom_scale(ctx: saved.SaveContext) -> saved.Saves:
    """b * scale (mul.Scalar) and a + (that) keep nothing."""
    return saved.Saves((), ctx.inputs[0].layout.dense())


saves_as("ScalarOp", rule=saves_scalar_op)
saves_as("LayerScale", rule=saves_layer_scale)
saves_as("CustomScaleLayer", rule=saves_custom_scale)
