"""Dropout, GaussianDropout, GaussianNoise: the identity at inference, so no params and no cost."""

from __future__ import annotations

from typing import Literal

from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.registry import register
from analyzer.spec.fields import Rate, Real


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
