"""Lambda layers restricted to named elementwise math functions.

A Keras Lambda wraps arbitrary Python; a spec names the function instead
(`function: cos`), from the fixed list below, so nothing in a spec runs as code.
Each function counts 1 FLOP per element, under 'other'.
"""

from __future__ import annotations

from typing import Literal

from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.registry import register
from analyzer.symbolic import product

ElementwiseFunction = Literal["cos", "sin", "exp", "log", "sqrt", "abs", "square", "negative"]


class Lambda(LayerSpec):
    type: Literal["Lambda"]
    function: ElementwiseFunction


@register(Lambda)
def elementwise_function(layer: Lambda, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    return LayerResult(shape, other=product(shape))
