"""Dropout, GaussianDropout, GaussianNoise: the identity at inference, so no params and no cost."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import sympy

from analyzer.layers import backward as train
from analyzer.layers import saved
from analyzer.layers import tool_rules as tools
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, Construct
from analyzer.layers.registry import counted_as, register, saves_as, trains_as
from analyzer.spec.fields import Rate, Real
from analyzer.symbolic import product

if TYPE_CHECKING:
    from analyzer.export.plan import LayerPlan
    from analyzer.report import LayerRow


class Dropout(LayerSpec):
    type: Literal["Dropout"]
    rate: Rate
    seed: int | None = None


@register(Dropout)
def dropout(layer: Dropout, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    return LayerResult(shape)


class GaussianDropout(LayerSpec):
    type: Literal["GaussianDropout"]
    rate: Rate
    seed: int | None = None


class GaussianNoise(LayerSpec):
    type: Literal["GaussianNoise"]
    stddev: Real
    seed: int | None = None


register(GaussianDropout)(dropout)
register(GaussianNoise)(dropout)

# The identity at inference: no tool counts anything (tool_rules.COST_FREE says why, per tool).
counted_as("Dropout", "GaussianDropout", "GaussianNoise", **tools.COST_FREE)


# -- export --

@TORCH_BUILDERS.register("Dropout")
def torch_dropout(layer: Dropout, plan: LayerPlan) -> Construct:
    return Construct.of("nn.Dropout", p=layer.rate)


@TORCH_BUILDERS.register("GaussianNoise")
def torch_gaussian_noise(layer: GaussianNoise, plan: LayerPlan) -> Construct:
    return Construct.of("GaussianNoise", stddev=layer.stddev)  # the identity at inference, as in Keras


@TORCH_BUILDERS.register("GaussianDropout")
def torch_gaussian_dropout(layer: GaussianDropout, plan: LayerPlan) -> Construct:
    return Construct.of("GaussianDropout", rate=layer.rate)


@KERAS_BUILDERS.register("Dropout")
def keras_dropout(layer: Dropout, plan: LayerPlan) -> Construct:
    return Construct.of("Dropout", rate=layer.rate, seed=layer.seed)


@KERAS_BUILDERS.register("GaussianNoise")
def keras_gaussian_noise(layer: GaussianNoise, plan: LayerPlan) -> Construct:
    return Construct.of("GaussianNoise", stddev=layer.stddev, seed=layer.seed)


@KERAS_BUILDERS.register("GaussianDropout")
def keras_gaussian_dropout(layer: GaussianDropout, plan: LayerPlan) -> Construct:
    return Construct.of("GaussianDropout", rate=layer.rate, seed=layer.seed)


# -- training (one optimizer step, whole batch; docs/conventions.md#training): the noise is on now --

def train_noise(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """Over N = B·elements. Dropout: the mask scaled by 1/(1 - rate), then x·mask: 2N; back, g·mask: N.
    GaussianNoise: stddev·noise, then x + it: 2N; back, g passes unchanged: 0. GaussianDropout: 1 + stddev·noise,
    then x·it: 3N; back, g·it: N. Drawing the random numbers is not arithmetic on the data: not counted."""
    n = batch * product(row.output_shape)
    forward, grad = {"Dropout": (2, 1), "GaussianNoise": (2, 0), "GaussianDropout": (3, 1)}[row.type]
    return train.Backward(grad_input=grad * n, forward=forward * n)


trains_as("Dropout", "GaussianNoise", "GaussianDropout", rule=train_noise)


# -- saved for the backward (docs/conventions.md#training, Memory) --

def saves_noise(ctx: saved.SaveContext) -> saved.Saves:
    """Dropout on the CPU is torch's x·mask with mask = bernoulli(1 - rate)/(1 - rate), a float tensor of x's size
    that the multiply keeps (CUDA's fused native_dropout keeps a bool mask instead, 1 byte per element); rate 0 is
    the identity. GaussianDropout, x·(1 + stddev·noise), keeps its multiplier (rate 0: the identity); GaussianNoise,
    x + noise, nothing. The export's Gaussian modules compute that training form in train mode."""
    x, kind = ctx.inputs[0], ctx.row.type
    if kind in ("Dropout", "GaussianDropout") and ctx.spec.rate == 0:
        return saved.Saves(layout=x.layout, alias=0)
    kept = () if kind == "GaussianNoise" else (saved.Saved.new("mask" if kind == "Dropout" else "noise", x.elements),)
    return saved.Saves(kept, x.layout.dense())


saves_as("Dropout", "GaussianDropout", "GaussianNoise", rule=saves_noise)
