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

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import sympy

from analyzer.layers import tool_rules as tools
from analyzer.layers.activations import activation_flops
from analyzer.layers.base import LayerContext, LayerResult, Shape
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, Construct, one_or_tuple
from analyzer.layers.convolutional import (
    AXIS_NAMES,
    ConvSpec,
    check_conv_input,
    keras_kernel_arguments,
    torch_kernel_arguments,
)
from analyzer.layers.registry import counted_as, register
from analyzer.layers.sizes import OptionalNonNegativeSizes
from analyzer.layers.torch_modules.crops import conv_transpose_crops
from analyzer.layers.torch_ops import fused_activation, has_bias
from analyzer.symbolic import ZERO, evaluate, floor_div, product, render

if TYPE_CHECKING:
    from analyzer.export.plan import LayerPlan
    from analyzer.report import LayerRow


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


# -- what each counting tool counts on the torch export (torch_modules.conv_transpose.ConvTranspose) --

@dataclass(frozen=True)
class ConvTransposeCall:
    """One nn.ConvTransposeNd call (padding 0, output_padding where Keras' output is longer), then a crop.
    `input_positions` scatter into `kernel` taps of `filters` outputs each, a dot product over `in_channels`;
    `full_positions`: positions of the nn.ConvTransposeNd output, before the crop."""

    input_positions: sympy.Expr
    full_positions: sympy.Expr
    in_channels: sympy.Expr
    filters: sympy.Expr
    kernel: sympy.Expr
    bias: bool

    @property
    def macs(self) -> sympy.Expr:
        return self.input_positions * self.kernel * self.in_channels * self.filters


def conv_transpose_call(row: LayerRow) -> ConvTransposeCall:
    """Conv1DTranspose / Conv2DTranspose as exported; kernel_size, strides, dilation_rate and output_padding must be
    numbers (the crops are), the input length may be symbolic: full length (n - 1)·s + d·(k - 1) + 1 + extension."""
    spec = row.spec
    (shape,) = row.input_shapes
    ints = [[int(v) for v in values] for values in (spec.kernel_size, spec.strides, spec.dilation_rate)]
    output_padding = [int(v) for v in spec.output_padding] if spec.output_padding is not None else None
    crops = conv_transpose_crops(*ints[:2], spec.padding, output_padding, ints[2])
    full = [(n - 1) * s + (k - 1) * d + 1 + max(0, -after)
            for n, k, s, d, (_, after) in zip(shape[:-1], *ints, crops, strict=True)]
    return ConvTransposeCall(product(shape[:-1]), product(full), shape[-1], spec.filters, product(spec.kernel_size),
                             has_bias(row))


def torch_conv_transpose(row: LayerRow) -> sympy.Expr:
    """aten.convolution (transposed) -> `conv_flop_count` with transposed=True: prod(*input* spatial) · prod(kernel) ·
    batch · c_out · c_in · 2 (the scatter of every input position); the crop after it is a slice, no formula."""
    return 2 * conv_transpose_call(row).macs


def thop_conv_transpose(row: LayerRow) -> sympy.Expr:
    """nn.ConvTransposeNd -> `count_convNd` -> `calculate_conv2d_flops`: prod(y) · in_c · prod(kernel), y being the
    module's own output (the full length (n - 1)·s + d·(k - 1) + 1, plus torch's output_padding, before the export's
    crop); the bias is ignored."""
    conv = conv_transpose_call(row)
    return conv.full_positions * conv.filters * conv.in_channels * conv.kernel


def ptflops_conv_transpose(row: LayerRow) -> sympy.Expr:
    """nn.ConvTransposeNd -> `conv_flops_counter_hook(transpose=True)`: prod(kernel) · in_channels · out_channels per
    *input* position, + output.numel() with a bias, output being the module's own (the full length plus torch's
    output_padding, before the export's crop); then the fused activation if patched."""
    conv = conv_transpose_call(row)
    bias = conv.full_positions * conv.filters if conv.bias else ZERO
    return conv.macs + bias + tools.ptflops_activations(fused_activation(row))


def fvcore_conv_transpose(row: LayerRow) -> tools.Outcome:
    """nn.ConvTransposeNd (padding 0) traces to aten::_convolution with transposed=True -> `conv_flop_jit` ->
    `conv_flop_count`: batch · prod(w_shape) · prod(*input* spatial) = in · out · prod(kernel) per input position; the
    bias is ignored, the crop is a slice (ignored). A fused activation other than relu is unsupported."""
    return tools.fvcore_outcome(conv_transpose_call(row).macs, tools.fvcore_activation_reason(fused_activation(row)))


counted_as("Conv1DTranspose", "Conv2DTranspose", torch=torch_conv_transpose, thop=thop_conv_transpose,
           ptflops=ptflops_conv_transpose, fvcore=fvcore_conv_transpose)


# -- export --

@TORCH_BUILDERS.register("Conv1DTranspose", "Conv2DTranspose")
def torch_builder(layer: ConvTransposeSpec, plan: LayerPlan) -> Construct:
    """ConvTranspose: nn.ConvTransposeNd with padding 0, then Keras' crops (Keras' own torch backend does this)."""
    output_padding = plan.ints(layer.output_padding) if layer.output_padding is not None else None
    return Construct.of("ConvTranspose", in_channels=plan.input_shape[-1], filters=plan.int(layer.filters),
                        **torch_kernel_arguments(layer, plan), output_padding=output_padding,
                        use_bias=plan.use_bias(layer.use_bias), activation=layer.activation)


@KERAS_BUILDERS.register("Conv1DTranspose", "Conv2DTranspose")
def keras_builder(layer: ConvTransposeSpec, plan: LayerPlan) -> Construct:
    output_padding = plan.ints(layer.output_padding) if layer.output_padding is not None else None
    return Construct.of(layer.type, filters=plan.int(layer.filters), **keras_kernel_arguments(layer, plan),
                        output_padding=one_or_tuple(output_padding) if output_padding else None,
                        activation=layer.activation, use_bias=plan.use_bias(layer.use_bias))
