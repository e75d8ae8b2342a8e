"""Convolutions: Conv1D, Conv2D, SeparableConv1D (Keras semantics, channels-last).

Output length per spatial axis (Keras ops.compute_conv_output_shape):
  valid:        floor((n - d(k-1) - 1) / s) + 1, and needs n >= d(k-1) + 1
  same, causal: floor((n - 1) / s) + 1  (= ceil(n / s))
Costs count the full kernel at every output position (padding zeros included),
as Keras, PyTorch and every counter do.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import sympy
from pydantic import StrictBool, model_validator

from analyzer.layers.activations import ActivationName, activation_flops
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.registry import register
from analyzer.spec.fields import Size, Sizes
from analyzer.symbolic import evaluate, floor_div, product, render

AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}


class ConvSpec(LayerSpec):
    rank: ClassVar[int]

    filters: Size
    kernel_size: Sizes
    strides: Sizes = (sympy.Integer(1),)
    padding: Literal["valid", "same"] = "valid"
    dilation_rate: Sizes = (sympy.Integer(1),)
    activation: ActivationName | None = None
    use_bias: StrictBool = True
    data_format: Literal["channels_last"] = "channels_last"

    @model_validator(mode="after")
    def _broadcast_tuples(self) -> ConvSpec:
        rank = self.rank
        for field in ("kernel_size", "strides", "dilation_rate"):
            value = getattr(self, field)
            if len(value) == 1 and rank > 1:
                object.__setattr__(self, field, value * rank)
            elif len(value) != rank:
                raise ValueError(f"{field} needs 1 or {rank} values for a {rank}-D convolution, got {len(value)}")
        return self


def conv_output_length(n: sympy.Expr, kernel: sympy.Expr, stride: sympy.Expr, dilation: sympy.Expr, padding: str) -> sympy.Expr:
    if padding == "valid":
        return floor_div(n - dilation * (kernel - 1) - 1, stride) + 1
    return floor_div(n - 1, stride) + 1  # same, causal


def conv_spatial_output(layer: ConvSpec, spatial: Shape, ctx: LayerContext) -> Shape:
    """Output spatial dims, stating the 'kernel fits' requirement for valid padding."""
    strides_used = any(evaluate(s, ctx.defaults) > 1 for s in layer.strides)
    if strides_used and any(evaluate(d, ctx.defaults) > 1 for d in layer.dilation_rate):
        ctx.fail("strides > 1 cannot be combined with dilation_rate > 1 (Keras refuses this)", "strides")
    out = []
    for axis, n, k, s, d in zip(AXIS_NAMES[layer.rank], spatial, layer.kernel_size, layer.strides, layer.dilation_rate):
        if layer.padding == "valid":
            effective = d * (k - 1) + 1
            what = f"kernel {axis} {render(effective)}" + (f" ({render(k)} dilated by {render(d)})" if d != 1 else "")
            ctx.require_at_least(n, effective, f"needs input {axis} {render(n)} >= {what}", "kernel_size")
        out.append(conv_output_length(n, k, s, d, layer.padding))
    return tuple(out)


def check_conv_input(layer: ConvSpec, shape: Shape, ctx: LayerContext) -> None:
    if len(shape) != layer.rank + 1:
        ctx.fail(f"expects an input of rank {layer.rank + 1} (spatial axes and channels), got rank {len(shape)}")


def check_groups(channels: sympy.Expr, filters: sympy.Expr, groups: sympy.Expr, ctx: LayerContext) -> None:
    if groups != 1:
        ctx.require("int", channels / groups, sympy.Integer(0), f"input channels {render(channels)} divisible by groups {render(groups)}", "groups")
        ctx.require("int", filters / groups, sympy.Integer(0), f"filters {render(filters)} divisible by groups {render(groups)}", "groups")


class GroupedConvSpec(ConvSpec):
    groups: Size = sympy.Integer(1)


def convolution(layer: GroupedConvSpec, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    check_conv_input(layer, shape, ctx)
    channels = shape[-1]
    check_groups(channels, layer.filters, layer.groups, ctx)
    out_shape = (*conv_spatial_output(layer, shape[:-1], ctx), layer.filters)
    terms = product(layer.kernel_size) * channels / layer.groups  # n of each output's dot product
    outputs = product(out_shape)
    bias = ctx.use_bias(layer.use_bias)
    return LayerResult(
        out_shape,
        trainable_params=terms * layer.filters + (layer.filters if bias else 0),
        macs=outputs * terms,
        dot=outputs * (2 * terms - 1),
        bias=outputs if bias else 0,
        activation=activation_flops(layer.activation or "linear", out_shape),
    )


class Conv1D(GroupedConvSpec):
    rank = 1
    type: Literal["Conv1D"]
    padding: Literal["valid", "same", "causal"] = "valid"


class Conv2D(GroupedConvSpec):
    rank = 2
    type: Literal["Conv2D"]


register(Conv1D)(convolution)
register(Conv2D)(convolution)


class SeparableConv1D(ConvSpec):
    """Depthwise conv (depth_multiplier per channel, no bias) then a 1x1 conv with bias."""

    rank = 1
    type: Literal["SeparableConv1D"]
    depth_multiplier: Size = sympy.Integer(1)


@register(SeparableConv1D)
def separable_convolution(layer: SeparableConv1D, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    check_conv_input(layer, shape, ctx)
    spatial = conv_spatial_output(layer, shape[:-1], ctx)
    depthwise_channels = shape[-1] * layer.depth_multiplier
    kernel = product(layer.kernel_size)
    positions = product(spatial)
    out_shape = (*spatial, layer.filters)
    bias = ctx.use_bias(layer.use_bias)
    depthwise_outputs = positions * depthwise_channels
    pointwise_outputs = positions * layer.filters
    return LayerResult(
        out_shape,
        trainable_params=kernel * depthwise_channels + depthwise_channels * layer.filters + (layer.filters if bias else 0),
        macs=depthwise_outputs * kernel + pointwise_outputs * depthwise_channels,
        dot=depthwise_outputs * (2 * kernel - 1) + pointwise_outputs * (2 * depthwise_channels - 1),
        bias=pointwise_outputs if bias else 0,
        activation=activation_flops(layer.activation or "linear", out_shape),
    )
