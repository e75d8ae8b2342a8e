"""Layers that change spatial sizes without weights: UpSampling1D/2D,
ZeroPadding1D/2D, Cropping1D/2D (Keras semantics, channels-last).

No params. Repeating, padding with zeros and cropping cost nothing; bilinear
UpSampling2D costs 7 per output element (a weighted sum of 4 neighbours:
4 multiplies, 3 adds; the weights depend only on the position and are not
counted, like BatchNormalization's folded constants).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

import sympy
from pydantic import model_validator

from analyzer.layers import backward as train
from analyzer.layers import saved
from analyzer.layers import tool_rules as tools
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, Construct
from analyzer.layers.convolutional import AXIS_NAMES
from analyzer.layers.registry import counted_as, register, saves_as, trains_as
from analyzer.layers.sizes import OneDPairs, TwoDPairs
from analyzer.spec.fields import Size, Sizes
from analyzer.symbolic import product, render

if TYPE_CHECKING:
    from analyzer.export.plan import LayerPlan
    from analyzer.report import LayerRow

ONE, TWO, ZERO = sympy.Integer(1), sympy.Integer(2), sympy.Integer(0)
BILINEAR_FLOPS = 7  # per output element, see the module docstring


def check_rank(rank: int, shape: Shape, ctx: LayerContext) -> None:
    if len(shape) != rank + 1:
        ctx.fail(f"expects an input of rank {rank + 1} (spatial axes and channels), got rank {len(shape)}")


class UpSampling1D(LayerSpec):
    type: Literal["UpSampling1D"]
    size: Size = TWO


@register(UpSampling1D)
def up_sampling_1d(layer: UpSampling1D, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    check_rank(1, shape, ctx)
    return LayerResult((shape[0] * layer.size, shape[1]))


class UpSampling2D(LayerSpec):
    type: Literal["UpSampling2D"]
    size: Sizes = (TWO, TWO)
    interpolation: Literal["nearest", "bilinear"] = "nearest"
    data_format: Literal["channels_last"] = "channels_last"

    @model_validator(mode="after")
    def _pair(self) -> UpSampling2D:
        if len(self.size) == 1:
            object.__setattr__(self, "size", self.size * 2)
        elif len(self.size) != 2:
            raise ValueError(f"size needs 1 or 2 values, got {len(self.size)}")
        return self


@register(UpSampling2D)
def up_sampling_2d(layer: UpSampling2D, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    check_rank(2, shape, ctx)
    out_shape = (shape[0] * layer.size[0], shape[1] * layer.size[1], shape[2])
    return LayerResult(out_shape, other=BILINEAR_FLOPS * product(out_shape) if layer.interpolation == "bilinear" else ZERO)


class PaddingSpec(LayerSpec):
    """ZeroPadding / Cropping: one (before, after) pair per spatial axis."""

    rank: ClassVar[int]


def zero_padding(layer: PaddingSpec, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    check_rank(layer.rank, shape, ctx)
    pads = layer.padding  # type: ignore[attr-defined]
    return LayerResult((*(n + a + b for n, (a, b) in zip(shape[:-1], pads, strict=True)), shape[-1]))


def cropping(layer: PaddingSpec, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    check_rank(layer.rank, shape, ctx)
    out = []
    for axis, n, (a, b) in zip(AXIS_NAMES[layer.rank], shape[:-1], layer.cropping, strict=True):  # type: ignore[attr-defined]
        cut = f"cropping {render(a)} + {render(b)}"
        ctx.require_at_least(n - a - b, 1, f"{cut} must leave at least 1 of the input {axis} {render(n)}", "cropping",
                             violation=f"{cut} removes all of the input {axis} {render(n)}")
        out.append(n - a - b)
    return LayerResult((*out, shape[-1]))


class ZeroPadding1D(PaddingSpec):
    rank = 1
    type: Literal["ZeroPadding1D"]
    padding: OneDPairs = ((ONE, ONE),)
    data_format: Literal["channels_last"] = "channels_last"


class ZeroPadding2D(PaddingSpec):
    rank = 2
    type: Literal["ZeroPadding2D"]
    padding: TwoDPairs = ((ONE, ONE), (ONE, ONE))
    data_format: Literal["channels_last"] = "channels_last"


class Cropping1D(PaddingSpec):
    rank = 1
    type: Literal["Cropping1D"]
    cropping: OneDPairs = ((ONE, ONE),)


class Cropping2D(PaddingSpec):
    rank = 2
    type: Literal["Cropping2D"]
    cropping: TwoDPairs = ((ZERO, ZERO), (ZERO, ZERO))
    data_format: Literal["channels_last"] = "channels_last"


register(ZeroPadding1D)(zero_padding)
register(ZeroPadding2D)(zero_padding)
register(Cropping1D)(cropping)
register(Cropping2D)(cropping)

# Data movement: no tool counts anything (tool_rules.COST_FREE says why, per tool).
counted_as("ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", "UpSampling1D", "UpSampling2D",
           **tools.COST_FREE)


# -- export --

def int_pairs(plan: LayerPlan, pairs: Any) -> tuple[tuple[int, int], ...]:
    return tuple((plan.int(a), plan.int(b)) for a, b in pairs)


PADDING_FIELD = {"ZeroPadding": "padding", "Cropping": "cropping"}


@TORCH_BUILDERS.register("ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D")
def torch_padding(layer: PaddingSpec, plan: LayerPlan) -> Construct:
    module = layer.type[:-2]  # torch_modules' ZeroPadding / Cropping, for 1-D and 2-D alike
    field = PADDING_FIELD[module]
    return Construct.of(module, **{field: int_pairs(plan, getattr(layer, field))})


@KERAS_BUILDERS.register("ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D")
def keras_padding(layer: PaddingSpec, plan: LayerPlan) -> Construct:
    field = PADDING_FIELD[layer.type[:-2]]
    pairs = int_pairs(plan, getattr(layer, field))
    return Construct.of(layer.type, **{field: pairs[0] if len(pairs) == 1 else pairs})


@TORCH_BUILDERS.register("UpSampling1D", "UpSampling2D")
def torch_up_sampling(layer: UpSampling1D | UpSampling2D, plan: LayerPlan) -> Construct:
    if getattr(layer, "interpolation", "nearest") != "nearest":
        raise plan.error(f"interpolation {layer.interpolation!r} is not exported to torch yet (only 'nearest')")
    size = plan.ints(layer.size) if isinstance(layer.size, tuple) else (plan.int(layer.size),)
    return Construct.of("UpSampling", size=size)


@KERAS_BUILDERS.register("UpSampling1D")
def keras_up_sampling_1d(layer: UpSampling1D, plan: LayerPlan) -> Construct:
    return Construct.of("UpSampling1D", size=plan.int(layer.size))


@KERAS_BUILDERS.register("UpSampling2D")
def keras_up_sampling_2d(layer: UpSampling2D, plan: LayerPlan) -> Construct:
    return Construct.of("UpSampling2D", size=plan.ints(layer.size), interpolation=layer.interpolation)


# -- training (one optimizer step, whole batch; docs/conventions.md#training) --

def train_up_sampling(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """Nearest up-sampling copies each input s times: dL/dx sums the copies' gradients, s - 1 adds per input
    element (s = the product of `size`)."""
    if getattr(row.spec, "interpolation", "nearest") != "nearest":
        raise train.NoBackwardRule("no backward rule for bilinear up-sampling yet", layer=row.name)
    copies = product(row.output_shape) / product(row.input_shapes[0])
    return train.Backward(grad_input=batch * product(row.input_shapes[0]) * (copies - 1))


trains_as("ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", rule=train.gradient_free)
trains_as("UpSampling1D", "UpSampling2D", rule=train_up_sampling)


# -- saved for the backward (docs/conventions.md#training, Memory) --

def saves_resizing(ctx: saved.SaveContext) -> saved.Saves:
    """Nothing is kept. F.pad writes a new tensor in its input's suggested memory format (of x.movedim(-1, 1)); a
    crop is x.narrow, a view of the input that covers part of its storage; nearest up-sampling's repeat_interleave
    writes a contiguous copy."""
    x, kind = ctx.inputs[0], ctx.row.type
    if kind.startswith("ZeroPadding"):
        return saved.Saves(layout=saved.moved_output(x, x.rank - 1))
    if kind.startswith("Cropping"):
        cut = {axis for axis, pair in enumerate(ctx.spec.cropping, start=1) if any(c != 0 for c in pair)}
        layout = x.layout
        return saved.Saves(layout=saved.Layout(layout.order, layout.partial | cut, layout.broadcast), alias=0)
    return saved.Saves()


saves_as("ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", "UpSampling1D", "UpSampling2D",
         rule=saves_resizing)
