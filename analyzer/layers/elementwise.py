"""Lambda layers restricted to named elementwise math functions.

A Keras Lambda wraps arbitrary Python; a spec names the function instead
(`function: cos`), from the fixed list below, so nothing in a spec runs as code.
Each function counts 1 FLOP per element, under 'other'.
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
from analyzer.symbolic import product

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
