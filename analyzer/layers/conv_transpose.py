"""Transposed convolutions: Conv1DTranspose, Conv2DTranspose (Keras 3 semantics).

Output length per spatial axis of length n, kernel k, stride s, dilation d,
K = d(k - 1) + 1 (Keras backend_utils._get_output_shape_given_tf_padding):
  valid, no output_padding:  (n - 1)s + max(K, s)
  valid, output_padding p:   (n - 1)s + K + p
  same, no output_padding:   n*s
  same, output_padding p:    (n - 1)s + K mod 2 + p
output_padding must be < s on each axis.

Costs, counted as the scatter (col2im) every framework computes: each of the
P_in input positions multiplies its C channels into k*F kernel taps.
  macs:  P_in * k * F * C                 (= FlopCounterMode / 2)
  dot:   P_in * k * F * (2C - 1)          (the C-term products)
  other: P_in * k * F                     (each product added into the output)
  bias:  b * P_out * F
"""

from __future__ import annotations

from typing import ClassVar, Literal

import sympy

from analyzer.layers.activations import activation_flops
from analyzer.layers.base import LayerContext, LayerResult, Shape
from analyzer.layers.convolutional import AXIS_NAMES, ConvSpec, check_conv_input
from analyzer.layers.registry import register
from analyzer.layers.sizes import OptionalNonNegativeSizes
from analyzer.symbolic import evaluate, floor_div, product, render


class ConvTransposeSpec(ConvSpec):
    output_padding: OptionalNonNegativeSizes = None

    tuple_fields: ClassVar[tuple[str, ...]] = ("kernel_size", "strides", "dilation_rate", "output_padding")


def transpose_output_length(n: sympy.Expr, k: sympy.Expr, s: sympy.Expr, d: sympy.Expr, padding: str,
                            output_padding: sympy.Expr | None) -> sympy.Expr:
    span = d * (k - 1) + 1
    if padding == "valid":
        return (n - 1) * s + (sympy.Max(span, s) if output_padding is None else span + output_padding)
    if output_padding is None:
        return n * s
    return (n - 1) * s + (span - 2 * floor_div(span, 2)) + output_padding


def conv_transpose(layer: ConvTransposeSpec, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    check_conv_input(layer, shape, ctx)
    strided = any(evaluate(s, ctx.defaults) > 1 for s in layer.strides)
    if strided and any(evaluate(d, ctx.defaults) > 1 for d in layer.dilation_rate):
        ctx.fail("strides > 1 cannot be combined with dilation_rate > 1 (Keras refuses this)", "strides")
    paddings = layer.output_padding or (None,) * layer.rank
    spatial = []
    axes = zip(AXIS_NAMES[layer.rank], shape[:-1], layer.kernel_size, layer.strides, layer.dilation_rate, paddings, strict=True)
    for axis, n, k, s, d, p in axes:
        if p is not None:
            what = f"output_padding {render(p)} on the {axis} axis"
            ctx.require_at_least(s - 1, p, f"{what} must be less than the stride {render(s)}", "output_padding",
                                 violation=f"{what} is not less than the stride {render(s)} (Keras refuses this)")
        spatial.append(transpose_output_length(n, k, s, d, layer.padding, p))
    channels, filters = shape[-1], layer.filters
    out_shape = (*spatial, filters)
    taps = product(shape[:-1]) * product(layer.kernel_size) * filters  # products of C terms each
    bias = ctx.use_bias(layer.use_bias)
    return LayerResult(
        out_shape,
        trainable_params=product(layer.kernel_size) * channels * filters + (filters if bias else 0),
        macs=taps * channels,
        dot=taps * (2 * channels - 1),
        other=taps,
        bias=product(out_shape) if bias else 0,
        activation=activation_flops(layer.activation or "linear", out_shape),
    )


class Conv1DTranspose(ConvTransposeSpec):
    rank = 1
    type: Literal["Conv1DTranspose"]


class Conv2DTranspose(ConvTransposeSpec):
    rank = 2
    type: Literal["Conv2DTranspose"]


for _conv in (Conv1DTranspose, Conv2DTranspose):
    register(_conv)(conv_transpose)
