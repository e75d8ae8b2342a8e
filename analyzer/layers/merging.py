"""Merge layers: Add, Subtract, Multiply (Keras broadcasting) and Concatenate.

Elementwise merges of k inputs cost k - 1 operations per output element, under
'other'. Keras broadcasts like NumPy over the non-batch axes (it prepends axes of
size 1 to the lower-rank input).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import sympy
from pydantic import StrictInt

from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape, normalize_axis, shape_str
from analyzer.layers.registry import register
from analyzer.symbolic import product, render


def broadcast_shapes(shapes: list[Shape], ctx: LayerContext) -> Shape:
    rank = max(len(s) for s in shapes)
    padded = [(sympy.Integer(1),) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    for axis in range(rank):
        dims = [s[axis] for s in padded]
        sized = [d for d in dims if d != 1]
        result = sized[0] if sized else sympy.Integer(1)
        for d in sized[1:]:
            ctx.require_equal(
                d, result,
                f"inputs {', '.join(shape_str(s) for s in shapes)} must match on axis {axis + 1} "
                f"({render(result)} vs {render(d)}) or be 1 there",
            )
        out.append(result)
    return tuple(out)


class ElementwiseMerge(LayerSpec):
    arity: ClassVar[int | None] = None


def elementwise_merge(layer: ElementwiseMerge, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    shape = broadcast_shapes(inputs, ctx)
    return LayerResult(shape, other=(len(inputs) - 1) * product(shape))


class Add(ElementwiseMerge):
    type: Literal["Add"]


class Multiply(ElementwiseMerge):
    type: Literal["Multiply"]


class Subtract(ElementwiseMerge):
    type: Literal["Subtract"]
    arity: ClassVar[int | None] = 2


for _merge in (Add, Multiply, Subtract):
    register(_merge)(elementwise_merge)


class Concatenate(LayerSpec):
    type: Literal["Concatenate"]
    axis: StrictInt = -1
    arity: ClassVar[int | None] = None


@register(Concatenate)
def concatenate(layer: Concatenate, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    rank = len(inputs[0])
    if any(len(s) != rank for s in inputs):
        ctx.fail(f"inputs must have the same rank, got {', '.join(shape_str(s) for s in inputs)}")
    axis = normalize_axis(layer.axis, rank, ctx)
    for i in range(rank):
        if i == axis:
            continue
        for s in inputs[1:]:
            ctx.require_equal(
                s[i], inputs[0][i],
                f"inputs {', '.join(shape_str(s) for s in inputs)} must match on every axis but the "
                f"concatenation axis {axis + 1} (axis {i + 1}: {render(inputs[0][i])} vs {render(s[i])})",
            )
    out = list(inputs[0])
    out[axis] = sum((s[axis] for s in inputs), sympy.Integer(0))
    return LayerResult(tuple(out))
