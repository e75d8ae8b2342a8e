"""Lambda layers restricted to named elementwise math functions.

A Keras Lambda wraps arbitrary Python; a spec names the function instead
(`function: cos`), from the fixed list below, so nothing in a spec runs as code.
Each function counts 1 FLOP per element, under 'other'.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from analyzer.layers import tool_rules as tools
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, Construct, Ref
from analyzer.layers.registry import counted_as, register
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
