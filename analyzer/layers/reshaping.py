"""Reshape, Flatten, Permute, RepeatVector: no params, no cost (they move or
repeat data); Reshape checks element counts."""

from __future__ import annotations

from typing import Literal

import sympy
from pydantic import StrictInt

from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape, shape_str
from analyzer.layers.registry import register
from analyzer.spec.fields import ReshapeDims, Size
from analyzer.symbolic import product, render


class Reshape(LayerSpec):
    type: Literal["Reshape"]
    target_shape: ReshapeDims


@register(Reshape)
def reshape(layer: Reshape, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    total = product(shape)
    known = product(d for d in layer.target_shape if d != -1)
    if -1 in layer.target_shape:
        inferred = sympy.cancel(total / known)  # exact division of polynomials, not simplify
        ctx.require(
            "int", inferred, sympy.Integer(0),
            f"the -1 in target_shape becomes {render(total)} / {render(known)}, which must be an integer",
            "target_shape",
            violation=f"the -1 in target_shape would be {render(total)} / {render(known)}, which is not an integer",
        )
        out = tuple(inferred if d == -1 else d for d in layer.target_shape)
    else:
        out = tuple(layer.target_shape)
    ctx.require_equal(
        product(out), total,
        f"target_shape {shape_str(out)} must hold the {render(total)} elements of the input {shape_str(shape)}",
        "target_shape",
        violation=f"target_shape {shape_str(out)} holds {render(product(out))} elements, "
        f"but the input {shape_str(shape)} has {render(total)}",
    )
    return LayerResult(out)


class Flatten(LayerSpec):
    type: Literal["Flatten"]
    data_format: Literal["channels_last"] = "channels_last"


@register(Flatten)
def flatten(layer: Flatten, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    return LayerResult((product(shape),))


class Permute(LayerSpec):
    """dims: a permutation of 1..rank (axis 0 is the batch, as in Keras)."""

    type: Literal["Permute"]
    dims: list[StrictInt]


@register(Permute)
def permute(layer: Permute, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    if sorted(layer.dims) != list(range(1, len(shape) + 1)):
        ctx.fail(f"dims {layer.dims} must be a permutation of 1..{len(shape)} for an input of rank {len(shape)} "
                 "(axis 0 is the batch)", "dims")
    return LayerResult(tuple(shape[d - 1] for d in layer.dims))


class RepeatVector(LayerSpec):
    type: Literal["RepeatVector"]
    n: Size


@register(RepeatVector)
def repeat_vector(layer: RepeatVector, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    if len(shape) != 1:
        ctx.fail(f"expects an input of rank 1 (features), got rank {len(shape)}")
    return LayerResult((layer.n, shape[0]))
