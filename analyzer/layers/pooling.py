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

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import sympy
from pydantic import StrictBool, model_validator

from analyzer.layers import backward as train
from analyzer.layers import saved
from analyzer.layers import tool_rules as tools
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, Construct, one_or_tuple
from analyzer.layers.convolutional import AXIS_NAMES, note_unread_tail
from analyzer.layers.registry import counted_as, register, saves_as, trains_as
from analyzer.layers.sizes import OptionalSizes
from analyzer.spec.fields import Sizes
from analyzer.symbolic import ZERO, floor_div, product, render

if TYPE_CHECKING:
    from analyzer.export.plan import LayerPlan
    from analyzer.report import LayerRow


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

# -- what each counting tool counts on the torch export (torch_modules.pooling: Pool, GlobalPool) --

POOLS = ("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D")
GLOBAL_POOLS = ("GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D")


@dataclass(frozen=True)
class PoolCall:
    """One nn.MaxPoolNd / nn.AvgPoolNd module as the export calls it (torch_modules.pooling.Pool)."""

    kind: str  # "max" or "average"
    input_elements: sympy.Expr  # what the pool module sees (padded for 'same')
    output_elements: sympy.Expr
    padded_spatial: sympy.Expr  # cells of one padded channel
    output_spatial: sympy.Expr
    same: bool


def pool_call(row: LayerRow) -> PoolCall:
    """'same' pads each spatial axis of n to (out - 1)·s + k (at least n) before pooling; average 'same' pools
    the padded input and a one-channel map of ones, then divides."""
    spec = row.spec
    (shape,) = row.input_shapes
    strides = spec.strides or spec.pool_size
    spatial = shape[:-1]
    channels = shape[-1]
    same = spec.padding == "same"
    if same:
        padded = [sympy.Max(floor_div(n - 1, s) * s + k, n) for n, k, s in zip(spatial, spec.pool_size, strides, strict=True)]
    else:
        padded = list(spatial)
    padded_spatial = product(padded)
    output_spatial = product(row.output_shape[:-1])
    return PoolCall("max" if row.type.startswith("Max") else "average", padded_spatial * channels,
                    output_spatial * channels, padded_spatial, output_spatial, same)


def thop_pooling(row: LayerRow) -> sympy.Expr:
    """nn.MaxPoolNd -> `zero_ops`; nn.AvgPoolNd -> `count_avgpool` -> `calculate_avgpool`: y.numel() per call. An
    average 'same' pool is called twice: on the padded input and on a one-channel map of ones."""
    pool = pool_call(row)
    if pool.kind == "max":
        return ZERO
    return pool.output_elements + (pool.output_spatial if pool.same else ZERO)


def ptflops_pooling(row: LayerRow) -> sympy.Expr:
    """nn.MaxPoolNd / nn.AvgPoolNd -> `pool_flops_counter_hook`: input.numel(); their forward calls the patched
    F.max_poolNd / F.avg_poolNd, which adds input.numel() again. 'same' pools the padded input; average 'same'
    also pools a one-channel map of ones."""
    pool = pool_call(row)
    count = 2 * pool.input_elements
    if pool.kind == "average" and pool.same:
        count += 2 * pool.padded_spatial
    return count


def fvcore_pooling(row: LayerRow) -> tools.Outcome:
    """aten::max_poolNd / aten::avg_poolNd are unsupported (only adaptive_avg_pool2d has a handle); average 'same'
    also divides (aten::div)."""
    pool = pool_call(row)
    rank = len(row.output_shape) - 1
    ops = [f"aten::{'max' if pool.kind == 'max' else 'avg'}_pool{rank}d"]
    if pool.kind == "average" and pool.same:
        ops.append("aten::div")
    return tools.Skipped(tools.fvcore_unsupported(ops))


def fvcore_global_pooling(row: LayerRow) -> tools.Outcome:
    """The export reduces with torch.amax / torch.mean: aten::amax / aten::mean are unsupported."""
    return tools.Skipped(tools.fvcore_unsupported(["aten::amax" if "Max" in row.type else "aten::mean"]))


counted_as(*POOLS, torch=tools.torch_no_formula, thop=thop_pooling, ptflops=ptflops_pooling, fvcore=fvcore_pooling)
counted_as(*GLOBAL_POOLS, torch=tools.torch_no_formula, thop=tools.thop_not_a_module,
           ptflops=tools.ptflops_not_patched, fvcore=fvcore_global_pooling)


# -- export --

@TORCH_BUILDERS.register(*POOLS)
def torch_pooling(layer: PoolingSpec, plan: LayerPlan) -> Construct:
    pool_size = plan.ints(layer.pool_size)
    strides = plan.ints(layer.strides) if layer.strides is not None else pool_size
    return Construct.of("Pool", kind="max" if layer.type.startswith("Max") else "average", pool_size=pool_size,
                        strides=strides, padding=layer.padding)


@KERAS_BUILDERS.register(*POOLS)
def keras_pooling(layer: PoolingSpec, plan: LayerPlan) -> Construct:
    strides = plan.ints(layer.strides) if layer.strides is not None else None
    return Construct.of(layer.type, pool_size=one_or_tuple(plan.ints(layer.pool_size)),
                        strides=one_or_tuple(strides) if strides else None, padding=layer.padding)


@TORCH_BUILDERS.register(*GLOBAL_POOLS)
def torch_global_pooling(layer: GlobalPoolingSpec, plan: LayerPlan) -> Construct:
    return Construct.of("GlobalPool", kind="max" if "Max" in layer.type else "average", rank=len(plan.input_shape) - 1,
                        keepdims=layer.keepdims)


@KERAS_BUILDERS.register(*GLOBAL_POOLS)
def keras_global_pooling(layer: GlobalPoolingSpec, plan: LayerPlan) -> Construct:
    return Construct.of(layer.type, keepdims=layer.keepdims)


# -- training (one optimizer step, whole batch; docs/conventions.md#training) --

def train_pooling(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """dL/dx into the zeroed dx, per output element (B·outputs): max, the gradient added at the window's maximum: 1;
    average, divided by the window's k cells and added to each: k + 1 (the full window, as the forward counts it);
    global max 1, global average n + 1 over the n positions."""
    outputs = batch * product(row.output_shape)
    if "Max" in row.type:
        return train.Backward(grad_input=outputs)
    window = product(row.spec.pool_size) if row.type in POOLS else product(row.input_shapes[0][:-1])
    return train.Backward(grad_input=outputs * (window + 1))


trains_as(*POOLS, *GLOBAL_POOLS, rule=train_pooling)


# -- saved for the backward (docs/conventions.md#training, Memory) --

def saves_pooling(ctx: saved.SaveContext) -> saved.Saves:
    """max_poolNd_with_indices keeps its input and the argmax indices (int64, one per output); avg_poolNd its input.
    'same': the input is the padded copy, and average 'same' divides by the pooled map of ones, which the divide keeps
    (out spatial cells, one channel, no batch). 1-D pools run as 2-D ones on x.unsqueeze(-2): their output comes out
    channels-last in memory when the input is; 2-D ones too, unless the padded copy (rank 3: contiguous) is pooled."""
    x = ctx.inputs[0]
    pool = pool_call(ctx.row)
    kept = [saved.Saved.new("padded", ctx.batch * pool.input_elements) if pool.same else saved.Saved.input(0)]
    if pool.kind == "max":
        kept.append(saved.Saved.new("argmax indices", ctx.outputs, "int64"))
    elif pool.same:
        kept.append(saved.Saved.new("window cells", pool.output_spatial))
    same_1d = pool.same and x.rank == 3  # F.pad of a rank-3 tensor writes it contiguous, channels first
    return saved.Saves(tuple(kept), saved.channels_first(3) if same_1d else saved.moved_output(x, x.rank - 1, via_2d=True))


def saves_global_pooling(ctx: saved.SaveContext) -> saved.Saves:
    """torch.amax keeps its input and its result (the gradient goes to the maxima); torch.mean keeps nothing."""
    return saved.Saves((saved.Saved.input(0), saved.OUTPUT) if "Max" in ctx.row.type else ())


saves_as(*POOLS, rule=saves_pooling)
saves_as(*GLOBAL_POOLS, rule=saves_global_pooling)
