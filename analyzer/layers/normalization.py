"""BatchNormalization (at inference), LayerNormalization, GroupNormalization.

Params (Keras): gamma and beta are trainable (if scale / center), moving mean and
moving variance are not. Cost: with the moving statistics folded into one scale
and one shift per channel, y = x * a + b is 2 FLOPs per element (folding the
constants is done once, not per input, and is not counted).
Layer and group normalization compute their statistics per sample: see
normalization_flops.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import sympy
from pydantic import BeforeValidator, StrictBool, StrictInt, ValidationInfo

from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape, normalize_axis
from analyzer.layers.registry import register
from analyzer.spec.fields import Real, to_size
from analyzer.symbolic import product, render


class BatchNormalization(LayerSpec):
    type: Literal["BatchNormalization"]
    axis: StrictInt = -1
    center: StrictBool = True
    scale: StrictBool = True
    momentum: Real = 0.99
    epsilon: Real = 1e-3


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


def normalization_flops(elements: sympy.Expr, rows: sympy.Expr, center: bool, scale: bool) -> sympy.Expr:
    """Normalizing `rows` groups of n = elements/rows values each with their own
    statistics: per group mean n (n - 1 adds, 1 divide), x - mean n, variance 2n
    (n squares, n - 1 adds, 1 divide), + epsilon and sqrt 2, divide by the std n:
    5n + 2; then one multiply per element for gamma, one add for beta."""
    return 5 * elements + 2 * rows + (int(scale) + int(center)) * elements


class LayerNormalization(LayerSpec):
    """Statistics per sample over `axis` (one axis or several); gamma and beta have
    the shape of those axes."""

    type: Literal["LayerNormalization"]
    axis: StrictInt | list[StrictInt] = -1
    epsilon: Real = 1e-3
    center: StrictBool = True
    scale: StrictBool = True


@register(LayerNormalization)
def layer_normalization(layer: LayerNormalization, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    axes = layer.axis if isinstance(layer.axis, list) else [layer.axis]
    if not axes:
        ctx.fail("axis needs at least one axis", "axis")
    normalized = sorted({normalize_axis(a, len(shape), ctx) for a in axes})
    n = product(shape[a] for a in normalized)
    elements = product(shape)
    return LayerResult(
        shape,
        trainable_params=(int(layer.center) + int(layer.scale)) * n,
        other=normalization_flops(elements, elements / n, layer.center, layer.scale),
    )


def _groups(value: Any, info: ValidationInfo) -> Any:
    return value if value == -1 and not isinstance(value, bool) else to_size(value, info, 1)


class GroupNormalization(LayerSpec):
    """Channels split into `groups` (-1: one per channel, i.e. instance normalization);
    statistics per sample and group over all other axes; gamma and beta per channel."""

    type: Literal["GroupNormalization"]
    groups: Annotated[Any, BeforeValidator(_groups)] = sympy.Integer(32)
    axis: StrictInt = -1
    epsilon: Real = 1e-3
    center: StrictBool = True
    scale: StrictBool = True


@register(GroupNormalization)
def group_normalization(layer: GroupNormalization, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    channels = shape[normalize_axis(layer.axis, len(shape), ctx)]
    groups = channels if layer.groups == -1 else layer.groups
    ctx.require_at_least(channels, groups, f"groups {render(groups)} cannot exceed the channels {render(channels)}", "groups",
                         violation=f"groups {render(groups)} exceed the channels {render(channels)}")
    ctx.require("int", channels / groups, sympy.Integer(0),
                f"channels {render(channels)} must be divisible by groups {render(groups)}", "groups",
                violation=f"channels {render(channels)} are not divisible by groups {render(groups)}")
    return LayerResult(
        shape,
        trainable_params=(int(layer.center) + int(layer.scale)) * channels,
        other=normalization_flops(product(shape), groups, layer.center, layer.scale),
    )
