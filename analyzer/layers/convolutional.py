"""Convolutions (Keras semantics, channels-last): Conv1D/2D/3D (with groups),
DepthwiseConv1D/2D, SeparableConv1D/2D. Transposed ones: conv_transpose.py.

Output length per spatial axis (Keras ops.compute_conv_output_shape):
  valid:        floor((n - d(k-1) - 1) / s) + 1, and needs n >= d(k-1) + 1
  same, causal: floor((n - 1) / s) + 1  (= ceil(n / s))
Costs count the full kernel at every output position (padding zeros included),
as Keras, PyTorch and every counter do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

import sympy
from pydantic import StrictBool, model_validator

from analyzer.layers import backward as train
from analyzer.layers import saved
from analyzer.layers import tool_rules as tools
from analyzer.layers.activations import ActivationName, activation_flops, activation_saves
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, Construct, one_or_tuple
from analyzer.layers.registry import counted_as, register, saves_as, trains_as
from analyzer.layers.torch_ops import Conv, fused_activation, has_bias
from analyzer.spec.fields import Size, Sizes
from analyzer.symbolic import ONE, ZERO, evaluate, floor_div, product, render

if TYPE_CHECKING:
    from analyzer.export.plan import LayerPlan
    from analyzer.report import LayerRow

AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}


class KernelSpec(LayerSpec):
    """Fields of every Keras convolution; `rank` is the number of spatial axes."""

    rank: ClassVar[int]

    kernel_size: Sizes
    strides: Sizes = (sympy.Integer(1),)
    padding: Literal["valid", "same"] = "valid"
    dilation_rate: Sizes = (sympy.Integer(1),)
    activation: ActivationName | None = None
    use_bias: StrictBool = True
    data_format: Literal["channels_last"] = "channels_last"

    tuple_fields: ClassVar[tuple[str, ...]] = ("kernel_size", "strides", "dilation_rate")

    @model_validator(mode="after")
    def _broadcast_tuples(self) -> KernelSpec:
        rank = self.rank
        for field in self.tuple_fields:
            value = getattr(self, field)
            if value is None:
                continue
            if len(value) == 1 and rank > 1:
                object.__setattr__(self, field, value * rank)
            elif len(value) != rank:
                raise ValueError(f"{field} needs 1 or {rank} values for a {rank}-D convolution, got {len(value)}")
        return self


class ConvSpec(KernelSpec):
    filters: Size


def conv_output_length(n: sympy.Expr, kernel: sympy.Expr, stride: sympy.Expr, dilation: sympy.Expr, padding: str) -> sympy.Expr:
    if padding == "valid":
        return floor_div(n - dilation * (kernel - 1) - 1, stride) + 1
    return floor_div(n - 1, stride) + 1  # same, causal


def conv_spatial_output(layer: KernelSpec, spatial: Shape, ctx: LayerContext) -> Shape:
    """Output spatial dims, stating the 'kernel fits' requirement for valid padding."""
    strides_used = any(evaluate(s, ctx.defaults) > 1 for s in layer.strides)
    if strides_used and any(evaluate(d, ctx.defaults) > 1 for d in layer.dilation_rate):
        ctx.fail("strides > 1 cannot be combined with dilation_rate > 1 (Keras refuses this)", "strides")
    out = []
    axes = zip(AXIS_NAMES[layer.rank], spatial, layer.kernel_size, layer.strides, layer.dilation_rate, strict=True)
    for axis, n, k, s, d in axes:
        if layer.padding == "valid":
            effective = d * (k - 1) + 1
            what = f"kernel {axis} {render(effective)}" + (f" ({render(k)} dilated by {render(d)})" if d != 1 else "")
            ctx.require_at_least(n, effective, f"needs input {axis} {render(n)} >= {what}", "kernel_size",
                                 violation=f"{what} exceeds input {axis} {render(n)}")
            note_unread_tail(ctx, axis, n, effective, s, "strides")
        out.append(conv_output_length(n, k, s, d, layer.padding))
    return tuple(out)


def note_unread_tail(ctx: LayerContext, axis: str, n: sympy.Expr, window: sympy.Expr, stride: sympy.Expr, field: str) -> None:
    """With 'valid' padding the last (n - window) mod stride input positions are in no window: the
    output length is floored, as Keras does. Correct, so not an error, but the report says so."""
    if stride == 1:
        return
    span = n - window
    ctx.note(span - stride * floor_div(span, stride),
             f"strides {render(stride)}: the last {{amount}} input position(s) along the {axis} ({render(n)}) "
             f"are never read, since {render(span)} is not a multiple of {render(stride)} "
             "(padding 'valid' floors the output, as Keras does)", field)


def check_conv_input(layer: KernelSpec, shape: Shape, ctx: LayerContext) -> None:
    if len(shape) != layer.rank + 1:
        ctx.fail(f"expects an input of rank {layer.rank + 1} (spatial axes and channels), got rank {len(shape)}")


def check_groups(channels: sympy.Expr, filters: sympy.Expr, groups: sympy.Expr, ctx: LayerContext) -> None:
    if groups != 1:
        ctx.require("int", channels / groups, sympy.Integer(0),
                    f"input channels {render(channels)} divisible by groups {render(groups)}", "groups",
                    violation=f"input channels {render(channels)} are not divisible by groups {render(groups)}")
        ctx.require("int", filters / groups, sympy.Integer(0),
                    f"filters {render(filters)} divisible by groups {render(groups)}", "groups",
                    violation=f"filters {render(filters)} are not divisible by groups {render(groups)}")


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


class Conv3D(GroupedConvSpec):
    rank = 3
    type: Literal["Conv3D"]


for _conv in (Conv1D, Conv2D, Conv3D):
    register(_conv)(convolution)


class DepthwiseSpec(KernelSpec):
    """Each input channel convolved with its own depth_multiplier kernels (no mixing)."""

    depth_multiplier: Size = sympy.Integer(1)


def depthwise_convolution(layer: DepthwiseSpec, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    check_conv_input(layer, shape, ctx)
    channels = shape[-1] * layer.depth_multiplier
    out_shape = (*conv_spatial_output(layer, shape[:-1], ctx), channels)
    kernel = product(layer.kernel_size)  # n of each output's dot product
    outputs = product(out_shape)
    bias = ctx.use_bias(layer.use_bias)
    return LayerResult(
        out_shape,
        trainable_params=kernel * channels + (channels if bias else 0),
        macs=outputs * kernel,
        dot=outputs * (2 * kernel - 1),
        bias=outputs if bias else 0,
        activation=activation_flops(layer.activation or "linear", out_shape),
    )


class DepthwiseConv1D(DepthwiseSpec):
    rank = 1
    type: Literal["DepthwiseConv1D"]


class DepthwiseConv2D(DepthwiseSpec):
    rank = 2
    type: Literal["DepthwiseConv2D"]


for _conv in (DepthwiseConv1D, DepthwiseConv2D):
    register(_conv)(depthwise_convolution)


class SeparableSpec(ConvSpec):
    """Depthwise conv (depth_multiplier per channel, no bias) then a 1x1 conv with bias."""

    depth_multiplier: Size = sympy.Integer(1)


class SeparableConv1D(SeparableSpec):
    rank = 1
    type: Literal["SeparableConv1D"]


class SeparableConv2D(SeparableSpec):
    rank = 2
    type: Literal["SeparableConv2D"]


def separable_convolution(layer: SeparableSpec, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
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


for _conv in (SeparableConv1D, SeparableConv2D):
    register(_conv)(separable_convolution)


# -- what each counting tool counts on the torch export (torch_modules.convolutional: nn.ConvNd calls) --

CONVOLUTIONS = ("Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D", "DepthwiseConv1D", "DepthwiseConv2D")


def string_padding(row: LayerRow) -> bool:
    """The export writes Keras padding='same' at stride 1 as torch's padding='same'; strided 'same' and
    'causal' pad explicitly (F.pad) and convolve with padding=0."""
    return row.spec.padding == "same" and all(s == 1 for s in row.spec.strides)


def conv_calls(row: LayerRow) -> list[Conv]:
    """The nn.ConvNd calls of a Conv, DepthwiseConv or SeparableConv layer."""
    spec, channels = row.spec, row.input_shapes[0][-1]
    positions = product(row.output_shape[:-1])
    kernel = product(spec.kernel_size)
    padded = string_padding(row)
    if row.type.startswith("Depthwise"):
        return [Conv(positions, channels * spec.depth_multiplier, ONE, kernel, channels, has_bias(row), padded)]
    if row.type.startswith("Separable"):
        depthwise = channels * spec.depth_multiplier
        return [Conv(positions, depthwise, ONE, kernel, channels, False, padded),
                Conv(positions, spec.filters, depthwise, ONE, ONE, has_bias(row), False)]
    return [Conv(positions, spec.filters, channels / spec.groups, kernel, spec.groups, has_bias(row), padded)]


def torch_convolution(row: LayerRow) -> sympy.Expr:
    """aten.convolution -> `conv_flop_count`: prod(out spatial) · prod(kernel) · batch · c_out · (c_in/groups) · 2;
    the bias is ignored. SeparableConv: two convolutions."""
    return 2 * sympy.Add(*(c.macs for c in conv_calls(row)))


def thop_convolution(row: LayerRow) -> sympy.Expr:
    """nn.ConvNd -> `count_convNd` -> `calculate_conv2d_flops`: prod(output) · (in_c // groups) · prod(kernel);
    the bias is ignored. SeparableConv is two convs (depthwise with in_c // groups = 1, then 1x1)."""
    return sympy.Add(*(c.outputs * c.in_per_group * c.kernel for c in conv_calls(row)))


def ptflops_convolution(row: LayerRow) -> sympy.Expr:
    """nn.ConvNd -> `conv_flops_counter_hook`: prod(kernel) · in_channels · (out_channels // groups) per output
    position, + output.numel() with a bias; then the fused activation if patched. SeparableConv: two convs."""
    convs = sum((c.macs + (c.outputs if c.bias else ZERO) for c in conv_calls(row)), ZERO)
    return convs + tools.ptflops_activations(fused_activation(row))


STRING_PADDING = "padding='same' traces to aten::_convolution_mode, which fvcore has no handle for"


def fvcore_convolution(row: LayerRow) -> tools.Outcome:
    """aten::_convolution -> `conv_flop_jit` -> `conv_flop_count`: batch · prod(w_shape) · prod(out spatial) =
    out_channels · (in_channels/groups) · prod(kernel) per position; "bias is ignored". A padding='same' conv at
    stride 1 (torch's string padding) traces to aten::_convolution_mode: skipped (for SeparableConv only the
    depthwise part; the 1x1 pointwise conv has padding 0)."""
    counted, reasons = ZERO, []
    for conv in conv_calls(row):
        if conv.string_padding:
            part = "depthwise conv: " if row.type.startswith("Separable") else ""
            reasons.append(part + STRING_PADDING)
        else:
            counted += conv.macs
    return tools.fvcore_outcome(counted, *reasons, tools.fvcore_activation_reason(fused_activation(row)))


counted_as(*CONVOLUTIONS, torch=torch_convolution, thop=thop_convolution, ptflops=ptflops_convolution,
           fvcore=fvcore_convolution)


# -- export --

def torch_kernel_arguments(layer: Any, plan: LayerPlan) -> dict[str, Any]:
    """The arguments every exported torch convolution module takes, after in_channels (and filters)."""
    return dict(kernel_size=plan.ints(layer.kernel_size), strides=plan.ints(layer.strides), padding=layer.padding,
                dilation_rate=plan.ints(layer.dilation_rate))


@TORCH_BUILDERS.register("Conv1D", "Conv2D", "Conv3D")
def torch_conv(layer: GroupedConvSpec, plan: LayerPlan) -> Construct:
    return Construct.of("Conv", in_channels=plan.input_shape[-1], filters=plan.int(layer.filters),
                        **torch_kernel_arguments(layer, plan), groups=plan.int(layer.groups),
                        use_bias=plan.use_bias(layer.use_bias), activation=layer.activation)


@TORCH_BUILDERS.register("SeparableConv1D", "SeparableConv2D")
def torch_separable_conv(layer: SeparableSpec, plan: LayerPlan) -> Construct:
    return Construct.of("SeparableConv", in_channels=plan.input_shape[-1], filters=plan.int(layer.filters),
                        **torch_kernel_arguments(layer, plan), depth_multiplier=plan.int(layer.depth_multiplier),
                        use_bias=plan.use_bias(layer.use_bias), activation=layer.activation)


@TORCH_BUILDERS.register("DepthwiseConv1D", "DepthwiseConv2D")
def torch_depthwise_conv(layer: DepthwiseSpec, plan: LayerPlan) -> Construct:
    return Construct.of("DepthwiseConv", in_channels=plan.input_shape[-1], **torch_kernel_arguments(layer, plan),
                        depth_multiplier=plan.int(layer.depth_multiplier), use_bias=plan.use_bias(layer.use_bias),
                        activation=layer.activation)


def keras_kernel_arguments(layer: Any, plan: LayerPlan) -> dict[str, Any]:
    """The arguments every Keras convolution takes, in Keras' int-or-tuple form."""
    return dict(kernel_size=one_or_tuple(plan.ints(layer.kernel_size)), strides=one_or_tuple(plan.ints(layer.strides)),
                padding=layer.padding, dilation_rate=one_or_tuple(plan.ints(layer.dilation_rate)))


@KERAS_BUILDERS.register("Conv1D", "Conv2D", "Conv3D")
def keras_conv(layer: GroupedConvSpec, plan: LayerPlan) -> Construct:
    return Construct.of(layer.type, filters=plan.int(layer.filters), **keras_kernel_arguments(layer, plan),
                        groups=plan.int(layer.groups), activation=layer.activation,
                        use_bias=plan.use_bias(layer.use_bias))


@KERAS_BUILDERS.register("SeparableConv1D", "SeparableConv2D")
def keras_separable_conv(layer: SeparableSpec, plan: LayerPlan) -> Construct:
    return Construct.of(layer.type, filters=plan.int(layer.filters), **keras_kernel_arguments(layer, plan),
                        depth_multiplier=plan.int(layer.depth_multiplier), activation=layer.activation,
                        use_bias=plan.use_bias(layer.use_bias))


@KERAS_BUILDERS.register("DepthwiseConv1D", "DepthwiseConv2D")
def keras_depthwise_conv(layer: DepthwiseSpec, plan: LayerPlan) -> Construct:
    return Construct.of(layer.type, **keras_kernel_arguments(layer, plan),
                        depth_multiplier=plan.int(layer.depth_multiplier), activation=layer.activation,
                        use_bias=plan.use_bias(layer.use_bias))


# -- training (one optimizer step, whole batch; docs/conventions.md#training) --

def train_convolution(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """Over R = B·P output positions. dL/dx is the transposed convolution of dz: each of the convolution's MACs
    multiplies and adds into the zeroed dx (a scatter, as Conv1DTranspose counts): 2·MACs. dL/dW: one gradient per
    weight, an R-term dot product; dL/db: F sums of R. SeparableConv: the pointwise convolution's, then the
    depthwise one's, with the gradient of the intermediate (2·its MACs) needed for either."""
    rows = batch * product(row.output_shape[:-1])
    activation = train.activation_backward(row.spec.activation, row.output_shape, batch, row.name)
    calls = conv_calls(row)
    bias = train.bias_gradient(calls[-1].out_channels, rows, calls[-1].bias)
    weights = sum((train.dot_product_gradients(c.out_channels * c.in_per_group * c.kernel, rows) for c in calls), ZERO)
    grad_input = 2 * batch * calls[0].macs
    between = sum((2 * batch * c.macs for c in calls[1:]), ZERO)  # the separable intermediate's gradient
    return train.Backward(grad_input=grad_input, grad_weight=weights + bias, grad_other=activation + between)


def torch_train_convolution(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """aten.convolution_backward -> `conv_backward_flop`: dL/dx as conv_flop_count of the transposed convolution,
    2·B·MACs; dL/dW as conv_flop_count(t(x), t(grad_out), t(grad_weight)), which multiplies by the input's *whole*
    channel count C, not C/groups: 2·B·P·K·C·F, groups times the true count (the depthwise weight gradient of SCNN:
    128x). SeparableConv: the pointwise convolution's two, the depthwise one's weight gradient, and its input's."""
    calls = conv_calls(row)
    grad_weight = sum((2 * batch * c.positions * c.kernel * c.in_per_group * c.groups * c.out_channels for c in calls),
                      ZERO)
    between = sum((2 * batch * c.macs for c in calls[1:]), ZERO)
    return train.Backward(grad_input=2 * batch * calls[0].macs, grad_weight=grad_weight, grad_other=between)


trains_as(*CONVOLUTIONS, rule=train_convolution, torch=torch_train_convolution)


# -- saved for the backward (docs/conventions.md#training, Memory) --

def padded_input(row: LayerRow, batch: sympy.Symbol) -> sympy.Expr | None:
    """Elements of the padded copy the export convolves, or None when it convolves its input unpadded: 'causal' and
    strided 'same' pad with F.pad (KerasConvolution.explicit_padding), to (out - 1)·s + d·(k - 1) + 1 per axis (the
    input's length if that is less); torch's padding='same' pads a copy only where d·(k - 1) is odd, by one."""
    spec = row.spec
    axes = list(zip(row.input_shapes[0][:-1], row.output_shape[:-1], spec.kernel_size, spec.strides,
                    spec.dilation_rate, strict=True))
    if spec.padding == "causal":
        lengths = [n + d * (k - 1) for n, _, k, _, d in axes]
    elif spec.padding == "same" and not string_padding(row):
        lengths = [padded_length(n, o, d * (k - 1) + 1, s) for n, o, k, s, d in axes]
    elif spec.padding == "same":
        odd = [sympy.sympify(d * (k - 1)) % 2 for _, _, k, _, d in axes]
        if any(not o.is_Integer for o in odd):
            raise saved.NotCounted("padding='same' with a symbolic kernel: whether torch pads a copy depends on its parity")
        if not any(odd):
            return None
        lengths = [n + o for (n, *_), o in zip(axes, odd, strict=True)]
    else:
        return None
    return batch * row.input_shapes[0][-1] * product(lengths)


def padded_length(n: sympy.Expr, out: sympy.Expr, span: sympy.Expr, stride: sympy.Expr) -> sympy.Expr:
    """max((out - 1)·s + span, n): n - (out - 1)·s = (n - 1) mod s + 1 is at most s, so without the max when span >= s
    (sympy's Max costs milliseconds each on nested floors)."""
    if (span - stride).is_nonnegative:
        return (out - 1) * stride + span
    return sympy.Max((out - 1) * stride + span, n)


def saves_convolution(ctx: saved.SaveContext) -> saved.Saves:
    """convolution_backward keeps the input it convolved whenever the layer has a backward (dL/dW needs it, and the
    node keeps it for dL/dx too): x.movedim(-1, 1).contiguous(), x itself when it is channels-first in memory
    already (a convolution's output), else a copy, or the padded copy. SeparableConv: and the depthwise output, the
    pointwise convolution's input. Then the activation's (on z, the convolution's output)."""
    x = ctx.inputs[0]
    padded = padded_input(ctx.row, ctx.batch)
    kept = [ctx.kept_input(0, saved.channels_first(x.rank).order, "channels-first copy") if padded is None
            else saved.Saved.new("padded", padded)]
    if ctx.row.type.startswith("Separable"):
        kept.append(saved.Saved.new("depthwise output", ctx.batch * conv_calls(ctx.row)[0].outputs))
    z = saved.Saved.new("convolution output", ctx.outputs)
    layout = saved.channels_last(x.rank) if channels_last_by_strides(x) else saved.channels_first(x.rank)
    return saved.Saves((*kept, *activation_saves(ctx.spec.activation, z, ctx.outputs)), layout)


def channels_last_by_strides(x: saved.Tensor) -> bool:
    """Whether torch's 2-D / 3-D convolution answers in channels-last memory: when its input reads as channels-last
    from its strides (ATen's suggest_memory_format), which a Keras-order tensor of one channel does once moved to
    (B, 1, H, W) without a copy (the size-1 channel axis keeps stride 1, innermost). The export's movedim back then
    gives a contiguous Keras-order tensor, not a channels-first one."""
    return (x.rank in (4, 5) and x.shape[-1] == 1 and x.layout.order[-1] == x.rank - 1
            and x.is_contiguous(saved.channels_first(x.rank).order))


saves_as(*CONVOLUTIONS, rule=saves_convolution)
