"""Pooling (Keras semantics, channels-last): MaxPooling1D/2D, AveragePooling1D/2D,
GlobalMaxPooling1D/2D, GlobalAveragePooling1D/2D. No params.

Output length per spatial axis of length n, pool p, stride s (default p):
  valid: floor((n - p)/s) + 1, and needs n >= p;   same: floor((n - 1)/s) + 1
Cost ('other'), per output element of a window of k = prod(pool_size):
  max: k - 1 compares;  average: k - 1 adds + 1 divide = k.
The full window is counted at every position, as for convolutions (Keras'
'same' average divides border windows by the cells that are really there;
the count here does not shrink those windows).
Global pooling over the n = prod(spatial) positions: max n - 1, average n per channel.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import sympy
from pydantic import StrictBool, model_validator

from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.convolutional import AXIS_NAMES, note_unread_tail
from analyzer.layers.registry import register
from analyzer.layers.sizes import OptionalSizes
from analyzer.spec.fields import Sizes
from analyzer.symbolic import floor_div, product, render


class PoolingSpec(LayerSpec):
    rank: ClassVar[int]
    reduce: ClassVar[str]  # "max" or "average"

    pool_size: Sizes = (sympy.Integer(2),)  # MaxPooling's default; AveragePooling has none
    strides: OptionalSizes = None  # None: the pool size
    padding: Literal["valid", "same"] = "valid"
    data_format: Literal["channels_last"] = "channels_last"

    @model_validator(mode="after")
    def _broadcast_tuples(self) -> PoolingSpec:
        for field in ("pool_size", "strides"):
            value = getattr(self, field)
            if value is None:
                continue
            if len(value) == 1 and self.rank > 1:
                object.__setattr__(self, field, value * self.rank)
            elif len(value) != self.rank:
                raise ValueError(f"{field} needs 1 or {self.rank} values for {self.rank}-D pooling, got {len(value)}")
        return self


def window_cost(reduce: str, window: sympy.Expr) -> sympy.Expr:
    """FLOPs to reduce one window of `window` elements."""
    return window - 1 if reduce == "max" else window


def pooling(layer: PoolingSpec, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    if len(shape) != layer.rank + 1:
        ctx.fail(f"expects an input of rank {layer.rank + 1} (spatial axes and channels), got rank {len(shape)}")
    strides = layer.strides or layer.pool_size
    spatial = []
    for axis, n, p, s in zip(AXIS_NAMES[layer.rank], shape[:-1], layer.pool_size, strides, strict=True):
        if layer.padding == "valid":
            ctx.require_at_least(n, p, f"needs input {axis} {render(n)} >= pool {axis} {render(p)}", "pool_size",
                                 violation=f"pool {axis} {render(p)} exceeds input {axis} {render(n)}")
            note_unread_tail(ctx, axis, n, p, s, "strides" if layer.strides else "pool_size")
            spatial.append(floor_div(n - p, s) + 1)
        else:
            spatial.append(floor_div(n - 1, s) + 1)
    out_shape = (*spatial, shape[-1])
    return LayerResult(out_shape, other=product(out_shape) * window_cost(layer.reduce, product(layer.pool_size)))


class MaxPooling1D(PoolingSpec):
    rank, reduce = 1, "max"
    type: Literal["MaxPooling1D"]


class MaxPooling2D(PoolingSpec):
    rank, reduce = 2, "max"
    type: Literal["MaxPooling2D"]


class AveragePooling1D(PoolingSpec):
    rank, reduce = 1, "average"
    type: Literal["AveragePooling1D"]
    pool_size: Sizes  # required in Keras 3 (MaxPooling's default is 2)


class AveragePooling2D(PoolingSpec):
    rank, reduce = 2, "average"
    type: Literal["AveragePooling2D"]
    pool_size: Sizes


for _pool in (MaxPooling1D, MaxPooling2D, AveragePooling1D, AveragePooling2D):
    register(_pool)(pooling)


class GlobalPoolingSpec(LayerSpec):
    rank: ClassVar[int]
    reduce: ClassVar[str]

    keepdims: StrictBool = False
    data_format: Literal["channels_last"] = "channels_last"


def global_pooling(layer: GlobalPoolingSpec, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    if len(shape) != layer.rank + 1:
        ctx.fail(f"expects an input of rank {layer.rank + 1} (spatial axes and channels), got rank {len(shape)}")
    channels = shape[-1]
    out_shape = (*(sympy.Integer(1),) * layer.rank, channels) if layer.keepdims else (channels,)
    return LayerResult(out_shape, other=channels * window_cost(layer.reduce, product(shape[:-1])))


class GlobalMaxPooling1D(GlobalPoolingSpec):
    rank, reduce = 1, "max"
    type: Literal["GlobalMaxPooling1D"]


class GlobalMaxPooling2D(GlobalPoolingSpec):
    rank, reduce = 2, "max"
    type: Literal["GlobalMaxPooling2D"]


class GlobalAveragePooling1D(GlobalPoolingSpec):
    rank, reduce = 1, "average"
    type: Literal["GlobalAveragePooling1D"]


class GlobalAveragePooling2D(GlobalPoolingSpec):
    rank, reduce = 2, "average"
    type: Literal["GlobalAveragePooling2D"]


for _pool in (GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalAveragePooling1D, GlobalAveragePooling2D):
    register(_pool)(global_pooling)
