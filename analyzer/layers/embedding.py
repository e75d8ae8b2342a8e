"""Embedding: a lookup table of input_dim vectors of output_dim.

The input holds integer token ids, e.g. shape (S,); each id becomes a vector, so
the output is (*input, output_dim). Params: input_dim * output_dim. A lookup is
a copy: no MACs, no FLOPs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import sympy
from pydantic import StrictBool

from analyzer.layers import backward as train
from analyzer.layers import saved
from analyzer.layers import tool_rules as tools
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, Construct
from analyzer.layers.registry import counted_as, register, saves_as, trains_as
from analyzer.spec.fields import Size
from analyzer.symbolic import ZERO, product

if TYPE_CHECKING:
    from analyzer.export.plan import LayerPlan
    from analyzer.report import LayerRow


class Embedding(LayerSpec):
    type: Literal["Embedding"]
    input_dim: Size  # vocabulary size
    output_dim: Size
    mask_zero: StrictBool = False  # no effect on the counts


@register(Embedding)
def embedding(layer: Embedding, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    return LayerResult((*shape, layer.output_dim), trainable_params=layer.input_dim * layer.output_dim)

# -- what each counting tool counts on the torch export (torch_modules.embedding.Embedding: nn.Embedding) --

def fvcore_embedding(row: LayerRow) -> sympy.Expr:
    """aten::embedding is a lookup, no arithmetic (fvcore lists it as unsupported; nothing is missed): 0."""
    return ZERO


counted_as("Embedding", torch=tools.torch_no_formula, thop=tools.thop_not_a_module, ptflops=tools.ptflops_not_patched,
           fvcore=fvcore_embedding)


# -- export --

@TORCH_BUILDERS.register("Embedding")
def torch_builder(layer: Embedding, plan: LayerPlan) -> Construct:
    if layer.mask_zero:
        raise plan.error("mask_zero: the masks Keras passes on to later layers are not exported to torch")
    return Construct.of("Embedding", input_dim=plan.int(layer.input_dim), output_dim=plan.int(layer.output_dim))


@KERAS_BUILDERS.register("Embedding")
def keras_builder(layer: Embedding, plan: LayerPlan) -> Construct:
    return Construct.of("Embedding", input_dim=plan.int(layer.input_dim), output_dim=plan.int(layer.output_dim),
                        mask_zero=layer.mask_zero)


# -- training (one optimizer step, whole batch; docs/conventions.md#training) --

def train_embedding(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """No gradient for the integer ids. dL/dW is a scatter: each of the B·S looked-up rows adds its gradient of
    output_dim into the zeroed table: B·S·output_dim adds (not a matmul)."""
    return train.Backward(grad_weight=batch * product(row.output_shape),
                          no_gradient="no gradient for the integer ids")


trains_as("Embedding", rule=train_embedding)


# -- saved for the backward (docs/conventions.md#training, Memory) --

def saves_embedding(ctx: saved.SaveContext) -> saved.Saves:
    """embedding_backward scatters by the ids: nn.Embedding keeps them when the table trains, as the int64 copy the
    export makes of the (float) ids, x.long(): 8 bytes per id whatever the compute dtype."""
    ids = saved.Saved.new("ids (int64)", ctx.inputs[0].elements, "int64")
    return saved.Saves((ids,) if ctx.trains else ())


saves_as("Embedding", rule=saves_embedding)
