"""Embedding: a lookup table of input_dim vectors of output_dim.

The input holds integer token ids, e.g. shape (S,); each id becomes a vector, so
the output is (*input, output_dim). Params: input_dim * output_dim. A lookup is
a copy: no MACs, no FLOPs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import StrictBool

from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.registry import register
from analyzer.spec.fields import Size


class Embedding(LayerSpec):
    type: Literal["Embedding"]
    input_dim: Size  # vocabulary size
    output_dim: Size
    mask_zero: StrictBool = False  # no effect on the counts


@register(Embedding)
def embedding(layer: Embedding, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    return LayerResult((*shape, layer.output_dim), trainable_params=layer.input_dim * layer.output_dim)
