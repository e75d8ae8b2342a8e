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

from analyzer.layers import backward as train
from analyzer.layers import saved
from analyzer.layers import tool_rules as tools
from analyzer.layers.activations import activation_flops, activation_saves
from analyzer.layers.base import LayerContext, LayerResult, Shape
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, Construct, one_or_tuple
from analyzer.layers.convolutional import (
    AXIS_NAMES,
    ConvSpec,
    check_conv_input,
    keras_kernel_arguments,
    torch_kernel_arguments,
)
from analyzer.layers.registry import counted_as, register, saves_as, trains_as
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


# -- training (one optimizer step, whole batch; docs/conventions.md#training) --

def train_conv_transpose(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """Over R = B·P_in input positions, each scattered into k taps of F filters (the full output, the crop's
    positions included, as the forward counts them). Through the activation, dz per (kept) output; the crop's
    backward pads dz with zeros, no arithmetic. dL/dx is the (forward, strided) convolution of dz: R·C gradients,
    each a dot product of k·F terms. dL/dW: one gradient per weight, an R-term dot product (every input position
    meets every tap once); dL/db: F sums over the B·P_out outputs the bias is added to."""
    (shape,) = row.input_shapes
    rows, channels, filters = batch * product(shape[:-1]), shape[-1], row.spec.filters
    kernel = product(row.spec.kernel_size)
    outputs = batch * product(row.output_shape[:-1])
    return train.Backward(
        grad_input=train.dot_product_gradients(rows * channels, kernel * filters),
        grad_weight=(train.dot_product_gradients(kernel * filters * channels, rows)
                     + train.bias_gradient(filters, outputs, has_bias(row))),
        grad_other=train.activation_backward(row.spec.activation, row.output_shape, batch, row.name),
    )


def torch_train_conv_transpose(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """aten.convolution_backward (transposed) -> `conv_backward_flop`: dL/dx as conv_flop_count(grad_out, w, grad_in,
    transposed=False), over the input's positions: 2·B·MACs; dL/dW as conv_flop_count(t(grad_out), t(x), t(grad_w)):
    batch F, weight (C, B, *P_in), output the kernel's k: k·P_in·F·C·B·2 = 2·B·MACs too (groups would multiply it,
    as for Conv, but the export's are 1). The crop's and the activation's backward and the bias gradient: no formula."""
    macs = conv_transpose_call(row).macs
    return train.Backward(grad_input=2 * batch * macs, grad_weight=2 * batch * macs)


trains_as("Conv1DTranspose", "Conv2DTranspose", rule=train_conv_transpose, torch=torch_train_conv_transpose)


# -- saved for the backward (docs/conventions.md#training, Memory) --

def saves_conv_transpose(ctx: saved.SaveContext) -> saved.Saves:
    """The export's nn.ConvTransposeNd (torch_modules.conv_transpose) keeps the input it convolved whenever the
    layer has a backward, as a convolution does: x.movedim(-1, 1).contiguous(), x itself when it is channels-first in
    memory already, else a copy. Keras' crop is a narrow, a view of the full output, B·F·P_full (P_full the full
    positions, conv_transpose_call): what an activation that keeps its input keeps, the whole storage; one that
    keeps its output keeps a new, dense, channels-first tensor of the cropped size. Without an activation the
    output is the narrowed view itself: channels-first, the cropped axes partial, its storage the full output."""
    x, spec = ctx.inputs[0], ctx.spec
    crops = conv_transpose_crops([int(k) for k in spec.kernel_size], [int(s) for s in spec.strides], spec.padding,
                                 [int(p) for p in spec.output_padding] if spec.output_padding is not None else None,
                                 [int(d) for d in spec.dilation_rate])
    full = ctx.batch * spec.filters * conv_transpose_call(ctx.row).full_positions
    kept = ctx.kept_input(0, saved.channels_first(x.rank).order, "channels-first copy")
    z = saved.Saved.new("transposed convolution output", full)
    layout = saved.channels_first(x.rank)
    if spec.activation in (None, "linear"):
        cropped = frozenset(axis for axis, (before, after) in enumerate(crops, start=1) if before > 0 or after > 0)
        return saved.Saves((kept,), saved.Layout(layout.order, cropped), storage=full)
    return saved.Saves((kept, *activation_saves(spec.activation, z, ctx.outputs)), layout)


saves_as("Conv1DTranspose", "Conv2DTranspose", rule=saves_conv_transpose)
