"""BatchNormalization (at inference), LayerNormalization, GroupNormalization, RMSNormalization.

Params (Keras): gamma and beta are trainable (if scale / center), moving mean and
moving variance are not. Cost: with the moving statistics folded into one scale
and one shift per channel, y = x * a + b is 2 FLOPs per element (folding the
constants is done once, not per input, and is not counted).
Layer, group and RMS normalization compute their statistics per sample: see
normalization_flops and rms_normalization_flops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import sympy
from pydantic import BeforeValidator, StrictBool, StrictInt, ValidationInfo

from analyzer.layers import backward as train
from analyzer.layers import saved
from analyzer.layers import tool_rules as tools
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape, normalize_axis
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, Construct
from analyzer.layers.registry import counted_as, register, saves_as, trains_as
from analyzer.layers.torch_ops import input_elements
from analyzer.spec.fields import Real, to_size
from analyzer.symbolic import ZERO, product, render

if TYPE_CHECKING:
    from analyzer.export.plan import LayerPlan
    from analyzer.report import LayerRow


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


class PerSampleNormalization(LayerSpec):
    """Statistics per sample over `axis` (one axis or several); the learned vectors have the shape of those axes."""

    axis: StrictInt | list[StrictInt] = -1
    scale: StrictBool = True

    def rows(self, shape: Shape, ctx: LayerContext) -> tuple[sympy.Expr, sympy.Expr]:
        """(n, N): the values normalized together (the product over `axis`) and the input's elements."""
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        if not axes:
            ctx.fail("axis needs at least one axis", "axis")
        normalized = sorted({normalize_axis(a, len(shape), ctx) for a in axes})
        return product(shape[a] for a in normalized), product(shape)


class LayerNormalization(PerSampleNormalization):
    type: Literal["LayerNormalization"]
    epsilon: Real = 1e-3
    center: StrictBool = True


@register(LayerNormalization)
def layer_normalization(layer: LayerNormalization, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    n, elements = layer.rows(shape, ctx)
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



def rms_normalization_flops(elements: sympy.Expr, rows: sympy.Expr, scale: bool) -> sympy.Expr:
    """y = x / sqrt(mean(x²) + epsilon) · scale over `rows` groups of n = elements/rows values: the mean of the
    squares 2n (n squares, n - 1 adds, 1 divide), + epsilon and sqrt 2, divide by the RMS n: 3n + 2; then one
    multiply per element for the scale."""
    return 3 * elements + 2 * rows + int(scale) * elements


class RMSNormalization(PerSampleNormalization):
    """Keras 3's RMSNormalization: no centering, a learned `scale`. Keras' layer always has the scale;
    `scale: false` is the plain RMS normalization (torch.nn.RMSNorm with elementwise_affine=False)."""

    type: Literal["RMSNormalization"]
    epsilon: Real = 1e-6
    # Gemma's form, y = x / rms · (1 + w) (google-deepmind/gemma's RMSNorm(scale_plus_one=True), HF GemmaRMSNorm):
    # the same params, and the same count: 1 + w is a constant of the weights, folded once as BatchNormalization's
    # statistics are, not per input (torch eager adds it on every call: n adds, a FLOP no tool counts).
    scale_plus_one: StrictBool = False


@register(RMSNormalization)
def rms_normalization(layer: RMSNormalization, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    n, elements = layer.rows(shape, ctx)
    return LayerResult(shape, trainable_params=int(layer.scale) * n,
                       other=rms_normalization_flops(elements, elements / n, layer.scale))

# -- what each counting tool counts on the torch export (BatchNorm, LayerNorm, GroupNorm modules) --

def batch_norm_affine(row: LayerRow) -> bool:
    """torch's BatchNorm affine is all or nothing: the export sets it only with both center and scale;
    with one of them, it multiplies by gamma or adds beta itself (the * or + operator)."""
    return bool(row.spec.center and row.spec.scale)


def thop_batch_normalization(row: LayerRow) -> sympy.Expr:
    """nn.BatchNormNd -> `count_normalization`: `calculate_norm` = 2 · x.numel(), doubled if m.affine (4 per
    element; the export is affine only with center and scale). A lone gamma or beta is a plain * or +."""
    return 2 * input_elements(row) * (2 if batch_norm_affine(row) else 1)


def ptflops_batch_normalization(row: LayerRow) -> sympy.Expr:
    """nn.BatchNormNd -> `bn_flops_counter_hook`: input.numel(), doubled if module.affine (the export: center and
    scale). A lone gamma or beta is a plain * or +, not counted."""
    return input_elements(row) * (2 if batch_norm_affine(row) else 1)


def fvcore_batch_normalization(row: LayerRow) -> tools.Outcome:
    """aten::batch_norm -> `batchnorm_flop_jit`, eval mode: input numel · (2 if affine else 1). A lone gamma or beta
    is a plain * or + (aten::mul / aten::add): unsupported."""
    counted = input_elements(row) * (2 if batch_norm_affine(row) else 1)
    spec = row.spec
    op = "aten::mul" if spec.scale and not spec.center else "aten::add" if spec.center and not spec.scale else None
    return tools.fvcore_outcome(counted, tools.fvcore_unsupported([op]) if op else "")


counted_as("BatchNormalization", torch=tools.torch_no_formula, thop=thop_batch_normalization,
           ptflops=ptflops_batch_normalization, fvcore=fvcore_batch_normalization)


def thop_layer_normalization(row: LayerRow) -> sympy.Expr:
    """nn.LayerNorm -> `count_normalization`: 2 · x.numel(), doubled if elementwise_affine (the export's `scale`)."""
    return 2 * input_elements(row) * (2 if row.spec.scale else 1)


def ptflops_layer_normalization(row: LayerRow) -> sympy.Expr:
    """nn.LayerNorm -> `bn_flops_counter_hook`: input.numel(); nn.LayerNorm has no `affine` attribute, so never doubled."""
    return input_elements(row)


def fvcore_norm(row: LayerRow) -> sympy.Expr:
    """aten::layer_norm / aten::group_norm -> `norm_flop_counter(2)`: input numel · (5 if a weight is given else 4)."""
    return input_elements(row) * (5 if row.spec.scale else 4)


counted_as("LayerNormalization", torch=tools.torch_no_formula, thop=thop_layer_normalization,
           ptflops=ptflops_layer_normalization, fvcore=fvcore_norm)


def thop_group_normalization(row: LayerRow) -> sympy.Expr:
    """nn.GroupNorm is not in `register_hooks`: no rule, 0."""
    return ZERO


def ptflops_group_normalization(row: LayerRow) -> sympy.Expr:
    """nn.GroupNorm -> `bn_flops_counter_hook`: input.numel(), doubled if affine."""
    return input_elements(row) * (2 if row.spec.scale else 1)


counted_as("GroupNormalization", torch=tools.torch_no_formula, thop=thop_group_normalization,
           ptflops=ptflops_group_normalization, fvcore=fvcore_norm)


def fvcore_rms_normalization(row: LayerRow) -> tools.Outcome:
    """nn.RMSNorm traces to aten::rms_norm, which fvcore has no handle for (0, with a warning); scale_plus_one's
    1 + w (torch_modules.transformer.RMSNormPlusOne) is an aten::add, unsupported too."""
    plus_one = ["aten::add"] if row.spec.scale_plus_one and row.spec.scale else []
    return tools.Skipped(tools.fvcore_unsupported([*plus_one, "aten::rms_norm"]))


def thop_rms_normalization(row: LayerRow) -> sympy.Expr:
    """nn.RMSNorm (torch 2.4) is newer than thop's `register_hooks`: no rule, 0."""
    return ZERO


def ptflops_rms_normalization(row: LayerRow) -> sympy.Expr:
    """nn.RMSNorm is not in ptflops' `MODULES_MAPPING`, and F.rms_norm is not patched: 0."""
    return ZERO


counted_as("RMSNormalization", torch=tools.torch_no_formula, thop=thop_rms_normalization,
           ptflops=ptflops_rms_normalization, fvcore=fvcore_rms_normalization)


# -- export --

@TORCH_BUILDERS.register("BatchNormalization")
def torch_batch_normalization(layer: BatchNormalization, plan: LayerPlan) -> Construct:
    rank = len(plan.input_shape) + 1  # with the batch axis, as Keras counts `axis`
    axis = layer.axis + rank if layer.axis < 0 else layer.axis
    if rank > 5:
        raise plan.error(f"BatchNormalization of a rank-{rank} input (with the batch axis) has no torch "
                         "counterpart (nn.BatchNorm1d/2d/3d take rank 2 to 5)")
    return Construct.of(
        "BatchNorm",
        channels=plan.input_shape[axis - 1],
        axis=axis,
        rank=rank,
        epsilon=layer.epsilon,
        momentum=round(1 - layer.momentum, 12),  # torch's momentum weighs the new batch, Keras' the running value
        center=layer.center,
        scale=layer.scale,
    )


@KERAS_BUILDERS.register("BatchNormalization")
def keras_batch_normalization(layer: BatchNormalization, plan: LayerPlan) -> Construct:
    return Construct.of("BatchNormalization", axis=layer.axis, momentum=layer.momentum, epsilon=layer.epsilon,
                        center=layer.center, scale=layer.scale)


@TORCH_BUILDERS.register("LayerNormalization")
def torch_layer_normalization(layer: LayerNormalization, plan: LayerPlan) -> Construct:
    axes = trailing_axes(layer, plan)
    if layer.center and not layer.scale:
        raise plan.error("LayerNormalization with center but no scale has no torch.nn.LayerNorm counterpart")
    return Construct.of("LayerNorm", shape=tuple(plan.input_shape[a - 1] for a in axes), epsilon=layer.epsilon,
                        center=layer.center, scale=layer.scale)


@KERAS_BUILDERS.register("LayerNormalization")
def keras_layer_normalization(layer: LayerNormalization, plan: LayerPlan) -> Construct:
    axis = tuple(layer.axis) if isinstance(layer.axis, list) else layer.axis
    return Construct.of("LayerNormalization", axis=axis, epsilon=layer.epsilon, center=layer.center, scale=layer.scale)


@TORCH_BUILDERS.register("GroupNormalization")
def torch_group_normalization(layer: GroupNormalization, plan: LayerPlan) -> Construct:
    rank = len(plan.input_shape) + 1
    if (layer.axis + rank if layer.axis < 0 else layer.axis) != rank - 1:
        raise plan.error("GroupNormalization is exported to torch only over the last axis")
    if layer.center != layer.scale:
        raise plan.error("GroupNormalization with only one of center / scale has no torch.nn.GroupNorm counterpart")
    channels = plan.input_shape[-1]
    groups = channels if layer.groups == -1 else plan.int(layer.groups)
    return Construct.of("GroupNorm", groups=groups, channels=channels, epsilon=layer.epsilon, affine=layer.scale)


@KERAS_BUILDERS.register("GroupNormalization")
def keras_group_normalization(layer: GroupNormalization, plan: LayerPlan) -> Construct:
    groups = -1 if layer.groups == -1 else plan.int(layer.groups)
    return Construct.of("GroupNormalization", groups=groups, axis=layer.axis, epsilon=layer.epsilon,
                        center=layer.center, scale=layer.scale)


def trailing_axes(layer: PerSampleNormalization, plan: LayerPlan) -> list[int]:
    """The normalized axes (Keras' numbering, with the batch axis), which torch's LayerNorm / RMSNorm need to be the
    last ones."""
    rank = len(plan.input_shape)
    axes = sorted({(a + rank + 1 if a < 0 else a) for a in (layer.axis if isinstance(layer.axis, list) else [layer.axis])})
    if axes != list(range(rank + 1 - len(axes), rank + 1)):
        raise plan.error(f"{layer.type} over axes {layer.axis} is exported to torch only over trailing axes")
    return axes


@TORCH_BUILDERS.register("RMSNormalization")
def torch_rms_normalization(layer: RMSNormalization, plan: LayerPlan) -> Construct:
    axes = trailing_axes(layer, plan)
    shape = tuple(plan.input_shape[a - 1] for a in axes)
    if layer.scale_plus_one and layer.scale:  # torch_modules.transformer: nn.RMSNorm has no (1 + w) form
        return Construct.of("RMSNormPlusOne", shape=shape, epsilon=layer.epsilon)
    return Construct.of("RMSNorm", shape=shape, epsilon=layer.epsilon, scale=layer.scale)


@KERAS_BUILDERS.register("RMSNormalization")
def keras_rms_normalization(layer: RMSNormalization, plan: LayerPlan) -> Construct:
    if not layer.scale:
        raise plan.error("RMSNormalization with scale: false has no Keras counterpart (keras.layers.RMSNormalization "
                         "always learns a scale)")
    if layer.scale_plus_one:
        raise plan.error("RMSNormalization with scale_plus_one: true has no Keras counterpart (keras.layers."
                         "RMSNormalization multiplies by its scale, not 1 + scale)")
    axis = tuple(layer.axis) if isinstance(layer.axis, list) else layer.axis
    return Construct.of("RMSNormalization", axis=axis, epsilon=layer.epsilon)


# -- training (one optimizer step, whole batch; docs/conventions.md#training) --

def normalization_backward(elements: sympy.Expr, vectors: sympy.Expr, center: bool, scale: bool,
                           centered: bool = True) -> train.Backward:
    """Through y = gamma·h + beta, h = (x - mean)/sigma over groups: N elements, `vectors` entries of gamma (and
    beta). dh = g·gamma: N; dx = (dh - mean(dh) - h·mean(dh·h))/sigma: mean(dh) N, dh·h N, its mean N, h·that N,
    two subtracts 2N, /sigma N (1/sigma kept from the forward): 7N; without centering (RMS normalization) no
    mean(dh) and one subtract: 5N. dgamma = sum of g·h: N multiplies, N - vectors adds; dbeta = sum of g:
    N - vectors adds."""
    n = elements
    grad_input = (7 if centered else 5) * n + (n if scale else ZERO)
    grad_weight = (2 * n - vectors if scale else ZERO) + (n - vectors if center else ZERO)
    return train.Backward(grad_input=grad_input, grad_weight=grad_weight)


def train_batch_normalization(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """Training mode: the statistics of the batch, per channel over m = N/C values (N = B·elements): forward 5m + 2
    per channel, gamma and beta 1 each per element, and the moving mean and variance, moving·momentum + batch·(1 -
    momentum): 3 each per channel; then normalization_backward."""
    shape = row.input_shapes[0]
    spec = row.spec
    channels = shape[spec.axis - 1 if spec.axis > 0 else spec.axis]
    n = batch * product(shape)
    step = normalization_backward(n, channels, spec.center, spec.scale)
    forward = normalization_flops(n, channels, spec.center, spec.scale) + 6 * channels
    return train.Backward(step.grad_input, step.grad_weight, forward=forward)


def train_per_sample_normalization(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """LayerNormalization, GroupNormalization, RMSNormalization: the forward is the inference one (statistics per
    sample); normalization_backward with gamma (and beta) of the layer's own size."""
    spec = row.spec
    # gamma (and beta) entries of one copy: row.counts cover every copy of a symbolically repeated block
    vectors = row.counts.params / row.multiplier / ((int(getattr(spec, "center", False)) + int(spec.scale)) or 1)
    return normalization_backward(batch * product(row.input_shapes[0]), vectors, getattr(spec, "center", False),
                                  spec.scale, centered=row.type != "RMSNormalization")


trains_as("BatchNormalization", rule=train_batch_normalization)
trains_as("LayerNormalization", "GroupNormalization", "RMSNormalization", rule=train_per_sample_normalization)


# -- saved for the backward (docs/conventions.md#training, Memory) --

def keras_axes(spec: Any, rank: int) -> list[int]:
    """The spec's axis (or axes), counted with the batch axis as Keras counts them, for a tensor of `rank`."""
    axes = spec.axis if isinstance(spec.axis, list) else [spec.axis]
    return sorted({a + rank if a < 0 else a for a in axes})


def saves_normalization(ctx: saved.SaveContext) -> saved.Saves:
    """torch's fused kernels keep their input and two statistics per normalized group (float32): batch norm the
    batch mean and inverse std per channel, layer norm the mean and 1/std per row, group norm per sample and group.
    BatchNorm with only a scale multiplies by it outside the kernel (torch's affine is all or nothing), and that
    multiply keeps the normalized tensor when the scale trains; with no affine kernel and an input that needs no
    gradient the kernel has no backward node at all. GroupNorm's input is first made contiguous in its suggested
    memory format: a copy, unless it is channels-first (or, at rank 4/5, channels-last) in memory already. RMS
    normalization is torch's composite rms_norm: x (for x² and x·r), r = 1/rms per row, and x·r when the scale
    trains; Gemma's (1 + w) form keeps that sum, a tensor of its own."""
    x, spec, kind = ctx.inputs[0], ctx.spec, ctx.row.type
    stats = "float32"
    if kind == "BatchNormalization":
        (axis,) = keras_axes(spec, x.rank)
        kernel = x.requires_grad or (spec.center and spec.scale and ctx.trains)
        kept = [saved.Saved.input(0), saved.Saved.new("batch mean", x.shape[axis], stats),
                saved.Saved.new("batch 1/std", x.shape[axis], stats)] if kernel else []
        if spec.scale and not spec.center and ctx.trains:
            kept.append(saved.Saved.new("normalized", ctx.outputs))
        return saved.Saves(tuple(kept), saved.moved_output(x, axis))
    if kind == "GroupNormalization":
        groups = x.shape[-1] if spec.groups == -1 else spec.groups
        moved = x.permuted(saved.moved_axes(x.rank, x.rank - 1))
        as_is = moved.is_contiguous() or moved.channels_last_like()
        kept = [saved.Saved.input(0) if as_is else saved.Saved.new("contiguous copy", x.elements),
                saved.Saved.new("mean", ctx.batch * groups, stats), saved.Saved.new("1/std", ctx.batch * groups, stats)]
        return saved.Saves(tuple(kept), saved.moved_output(x, x.rank - 1))
    rows = x.elements / product(x.shape[a] for a in keras_axes(spec, x.rank))
    if kind == "LayerNormalization":
        kept = [saved.Saved.input(0), saved.Saved.new("mean", rows, stats), saved.Saved.new("1/std", rows, stats)]
        return saved.Saves(tuple(kept))
    kept = [saved.Saved.input(0), saved.Saved.new("1/rms", rows, stats)] if x.requires_grad else []
    if spec.scale and ctx.trains:
        kept.append(saved.Saved.new("normalized", x.elements))
    if spec.scale and getattr(spec, "scale_plus_one", False) and x.requires_grad:
        kept.append(saved.Saved.new("1 + w", product(x.shape[a] for a in keras_axes(spec, x.rank))))
    return saved.Saves(tuple(kept), x.layout.dense())


saves_as("BatchNormalization", "LayerNormalization", "GroupNormalization", "RMSNormalization", rule=saves_normalization)
