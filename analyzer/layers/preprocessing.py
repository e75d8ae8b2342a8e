"""Preprocessing layers: Keras' Normalization (keras/src/layers/preprocessing/normalization.py).

Normalization keeps a mean and a variance per position of its `axis` (K values each, K the product of those axes'
sizes; one value with axis None) and computes, at every call,
    y = (x - mean) / max(sqrt(variance), epsilon)          (invert: y = mean + x · max(sqrt(variance), epsilon))
so per call: K square roots and K maximums on the variance (Keras does not keep the square root), then a subtract
and a divide (a multiply and an add) per element: 2·elements + 2·K FLOPs, under 'other'.
Params, as Keras counts them: with `mean` and `variance` given they are constants, not weights: 0; without them
the layer adds the weights mean (K), variance (K) and count (a scalar), all non-trainable: 2·K + 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import sympy
from pydantic import StrictBool, StrictInt, model_validator

from analyzer.layers import backward as train
from analyzer.layers import saved
from analyzer.layers import tool_rules as tools
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape, normalize_axis
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, Construct, Ref
from analyzer.layers.registry import counted_as, register, saves_as, trains_as
from analyzer.symbolic import ZERO, product

if TYPE_CHECKING:
    from analyzer.export.plan import LayerPlan
    from analyzer.report import LayerRow

Numbers = float | list[Any]


class Normalization(LayerSpec):
    """Keras' Normalization: `axis` the kept axes (Keras counts the batch as axis 0; None keeps none), `mean` and
    `variance` numbers or nested lists (both or neither), `invert` for the inverse transform."""

    type: Literal["Normalization"]
    axis: StrictInt | list[StrictInt] | None = -1
    mean: Numbers | None = None
    variance: Numbers | None = None
    invert: StrictBool = False

    @model_validator(mode="after")
    def _both_or_neither(self) -> Normalization:
        if (self.mean is None) != (self.variance is None):
            raise ValueError("give both mean and variance, or neither (Keras' rule)")
        return self


def kept_axes(layer: Normalization, shape: Shape, ctx: LayerContext) -> list[int]:
    """The kept axes as indices of the shape without the batch, sorted (Keras sorts them)."""
    axes = [] if layer.axis is None else layer.axis if isinstance(layer.axis, list) else [layer.axis]
    return sorted({normalize_axis(a, len(shape), ctx) for a in axes})


def nested_shape(value: Numbers, what: str, ctx: LayerContext) -> list[int]:
    """The shape of a number or a (rectangular) nested list."""
    if not isinstance(value, list):
        return []
    if not value:
        ctx.fail(f"its {what} is an empty list", what)
    shapes = [nested_shape(v, what, ctx) for v in value]
    if any(s != shapes[0] for s in shapes):
        ctx.fail(f"its {what} is a ragged nested list", what)
    return [len(value), *shapes[0]]


def check_given_statistics(layer: Normalization, kept_sizes: list[sympy.Expr], ctx: LayerContext) -> None:
    """Keras' rules for a given mean and variance (Normalization.__init__ and build): one shape for both, of rank
    at most the number of kept axes, its axis -i on kept axis -i, broadcast there (its size 1 or that axis')."""
    mean, variance = nested_shape(layer.mean, "mean", ctx), nested_shape(layer.variance, "variance", ctx)
    if mean != variance:
        ctx.fail(f"its mean (shape {mean}) and variance (shape {variance}) need one shape (Keras' rule)", "mean")
    if len(mean) > len(kept_sizes):
        ctx.fail(f"its mean has rank {len(mean)}, more than the {len(kept_sizes)} kept axes (Keras' rule)", "mean")
    for i, size in enumerate(reversed(mean), 1):
        if size != 1:
            ctx.require_equal(kept_sizes[-i], sympy.Integer(size), f"its mean's axis {-i} ({size} values) lies on "
                              f"the kept axis of size {kept_sizes[-i]}, which it must equal (or be 1) to broadcast",
                              "mean")


@register(Normalization)
def normalization(layer: Normalization, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    axes = kept_axes(layer, shape, ctx)
    if layer.mean is not None:
        check_given_statistics(layer, [shape[a] for a in axes], ctx)
    kept = product(shape[a] for a in axes)
    weights = ZERO if layer.mean is not None else 2 * kept + 1
    return LayerResult(shape, non_trainable_params=weights, other=2 * product(shape) + 2 * kept)


# -- what each counting tool counts on the torch export (torch_modules.preprocessing.Normalization) --

def thop_normalization(row: LayerRow) -> sympy.Expr:
    """torch_modules.preprocessing.Normalization is not in thop's `register_hooks` ("Cannot find rule for ...
    Treat it as zero Macs"): 0."""
    return ZERO


def ptflops_normalization(row: LayerRow) -> sympy.Expr:
    """Not in ptflops' `MODULES_MAPPING`; torch.sqrt and torch.clamp are not in `TENSOR_OPS_MAPPING` and the - /
    operators are not patched: 0."""
    return ZERO


def fvcore_normalization(row: LayerRow) -> tools.Outcome:
    """aten::sqrt, aten::clamp_min, aten::sub and aten::div (aten::mul, aten::add when inverted) are unsupported."""
    ops = ["aten::sqrt", "aten::clamp_min"] + (["aten::mul", "aten::add"] if row.spec.invert else ["aten::sub",
                                                                                                  "aten::div"])
    return tools.fvcore_outcome(ZERO, tools.fvcore_unsupported(ops))


counted_as("Normalization", torch=tools.torch_no_formula, thop=thop_normalization, ptflops=ptflops_normalization,
           fvcore=fvcore_normalization)


# -- export --

@TORCH_BUILDERS.register("Normalization")
def torch_normalization(layer: Normalization, plan: LayerPlan) -> Construct:
    """The kept axes (without the batch) and their sizes at the plan's sizes, for the mean and variance."""
    shape = list(plan.input_shape)
    axes = [] if layer.axis is None else layer.axis if isinstance(layer.axis, list) else [layer.axis]
    rank = len(shape) + 1
    kept = sorted({(a + rank if a < 0 else a) - 1 for a in axes})
    broadcast = [shape[i] if i in kept else 1 for i in range(len(shape))]
    return Construct.of("Normalization", broadcast_shape=broadcast, kept_axes=kept, mean=layer.mean,
                        variance=layer.variance, invert=layer.invert)


@KERAS_BUILDERS.register("Normalization")
def keras_normalization(layer: Normalization, plan: LayerPlan) -> Construct:
    """axis None (keep no axis) is not Keras' default (-1): passed as an explicit None."""
    axis = Ref("None") if layer.axis is None else layer.axis
    return Construct.of("Normalization", axis=axis, mean=layer.mean, variance=layer.variance, invert=layer.invert)


# -- training (one optimizer step, whole batch; docs/conventions.md#training) --

def train_normalization(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """dL/dx = g / s (g · s inverted), s = max(sqrt(variance), epsilon): one divide per element; the mean and
    variance are not trained."""
    return train.Backward(grad_input=batch * product(row.output_shape))


trains_as("Normalization", rule=train_normalization)


def saves_normalization(ctx: saved.SaveContext) -> saved.Saves:
    """The divide (the multiply, inverted) keeps s, the K-element tensor max(sqrt(variance), epsilon) the call made;
    the subtract keeps nothing."""
    shape = ctx.row.output_shape
    axes = [] if ctx.spec.axis is None else ctx.spec.axis if isinstance(ctx.spec.axis, list) else [ctx.spec.axis]
    rank = len(shape) + 1
    kept = product(shape[(a + rank if a < 0 else a) - 1] for a in sorted(set(axes)))
    return saved.Saves((saved.Saved.new("normalization scale", kept),), ctx.inputs[0].layout.dense())


saves_as("Normalization", rule=saves_normalization)
