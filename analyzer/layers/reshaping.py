"""Reshape and Flatten: no params, no cost; they only check element counts."""

from __future__ import annotations

from typing import Literal

import sympy

from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape, shape_str
from analyzer.layers.registry import register
from analyzer.spec.fields import ReshapeDims
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
        )
        out = tuple(inferred if d == -1 else d for d in layer.target_shape)
    else:
        out = tuple(layer.target_shape)
    ctx.require_equal(
        product(out), total,
        f"target_shape {shape_str(out)} must hold the {render(total)} elements of the input {shape_str(shape)}",
        "target_shape",
    )
    return LayerResult(out)


class Flatten(LayerSpec):
    type: Literal["Flatten"]
    data_format: Literal["channels_last"] = "channels_last"


@register(Flatten)
def flatten(layer: Flatten, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    return LayerResult((product(shape),))
