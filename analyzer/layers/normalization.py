"""BatchNormalization at inference.

Params (Keras): gamma and beta are trainable (if scale / center), moving mean and
moving variance are not. Cost: with the moving statistics folded into one scale
and one shift per channel, y = x * a + b is 2 FLOPs per element (folding the
constants is done once, not per input, and is not counted).
"""

from __future__ import annotations

from typing import Literal

from pydantic import StrictBool, StrictInt

from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape, normalize_axis
from analyzer.layers.registry import register
from analyzer.symbolic import product


class BatchNormalization(LayerSpec):
    type: Literal["BatchNormalization"]
    axis: StrictInt = -1
    center: StrictBool = True
    scale: StrictBool = True
    momentum: float = 0.99
    epsilon: float = 1e-3


@register(BatchNormalization)
def batch_normalization(layer: BatchNormalization, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    channels = shape[normalize_axis(layer.axis, len(shape), ctx)]
    affine = int(layer.center) + int(layer.scale)
    return LayerResult(
        shape,
        trainable_params=affine * channels,
        non_trainable_params=2 * channels,
        other=2 * product(shape),
    )
