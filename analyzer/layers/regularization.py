"""Dropout: the identity at inference, so no params and no cost."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.registry import register


class Dropout(LayerSpec):
    type: Literal["Dropout"]
    rate: float = Field(ge=0, lt=1)
    seed: int | None = None


@register(Dropout)
def dropout(layer: Dropout, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    return LayerResult(shape)
