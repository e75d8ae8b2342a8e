"""Dense: a matrix product on the last axis of an input of any rank (Keras semantics)."""

from __future__ import annotations

from typing import Literal

from pydantic import StrictBool

from analyzer.layers.activations import ActivationName, activation_flops
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.registry import register
from analyzer.spec.fields import Size
from analyzer.symbolic import product


class Dense(LayerSpec):
    type: Literal["Dense"]
    units: Size
    activation: ActivationName | None = None
    use_bias: StrictBool = True


@register(Dense)
def dense(layer: Dense, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    if not shape:
        ctx.fail("needs an input with at least one axis besides the batch")
    n = shape[-1]
    out_shape = (*shape[:-1], layer.units)
    outputs = product(out_shape)
    bias = ctx.use_bias(layer.use_bias)
    return LayerResult(
        out_shape,
        trainable_params=n * layer.units + (layer.units if bias else 0),
        macs=outputs * n,
        dot=outputs * (2 * n - 1),
        bias=outputs if bias else 0,
        activation=activation_flops(layer.activation or "linear", out_shape),
    )
