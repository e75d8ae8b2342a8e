"""Reshape, Flatten, Permute, RepeatVector: no params, no cost (they move or
repeat data); Reshape checks element counts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import sympy
from pydantic import StrictInt

from analyzer.layers import backward as train
from analyzer.layers import saved
from analyzer.layers import tool_rules as tools
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape, shape_str
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, Construct
from analyzer.layers.registry import counted_as, register, saves_as, trains_as
from analyzer.spec.fields import ReshapeDims, Size
from analyzer.symbolic import product, render

if TYPE_CHECKING:
    from analyzer.export.plan import LayerPlan
    from analyzer.report import LayerRow


class Reshape(LayerSpec):
    type: Literal["Reshape"]
    target_shape: ReshapeDims


@register(Reshape)
def reshape(layer: Reshape, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    total = product(shape)
    known = product(d for d in layer.target_shape if d != -1)
    if -1 in layer.target_shape:
        inferred = sympy.cancel(total / known)  # exact division of polynomials, not simplify
        ctx.require(
            "int", inferred, sympy.Integer(0),
            f"the -1 in target_shape becomes {render(total)} / {render(known)}, which must be an integer",
            "target_shape",
            violation=f"the -1 in target_shape would be {render(total)} / {render(known)}, which is not an integer",
        )
        out = tuple(inferred if d == -1 else d for d in layer.target_shape)
    else:
        out = tuple(layer.target_shape)
    ctx.require_equal(
        product(out), total,
        f"target_shape {shape_str(out)} must hold the {render(total)} elements of the input {shape_str(shape)}",
        "target_shape",
        violation=f"target_shape {shape_str(out)} holds {render(product(out))} elements, "
        f"but the input {shape_str(shape)} has {render(total)}",
    )
    return LayerResult(out)


class Flatten(LayerSpec):
    type: Literal["Flatten"]
    data_format: Literal["channels_last"] = "channels_last"


@register(Flatten)
def flatten(layer: Flatten, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    return LayerResult((product(shape),))


class Permute(LayerSpec):
    """dims: a permutation of 1..rank (axis 0 is the batch, as in Keras)."""

    type: Literal["Permute"]
    dims: list[StrictInt]


@register(Permute)
def permute(layer: Permute, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    if sorted(layer.dims) != list(range(1, len(shape) + 1)):
        ctx.fail(f"dims {layer.dims} must be a permutation of 1..{len(shape)} for an input of rank {len(shape)} "
                 "(axis 0 is the batch)", "dims")
    return LayerResult(tuple(shape[d - 1] for d in layer.dims))


class RepeatVector(LayerSpec):
    type: Literal["RepeatVector"]
    n: Size


@register(RepeatVector)
def repeat_vector(layer: RepeatVector, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    if len(shape) != 1:
        ctx.fail(f"expects an input of rank 1 (features), got rank {len(shape)}")
    return LayerResult((layer.n, shape[0]))

# Data movement: no tool counts anything (tool_rules.COST_FREE says why, per tool).
counted_as("Reshape", "Flatten", "Permute", "RepeatVector", **tools.COST_FREE)


# -- export --

# keras.layers.X or torch_modules' X, with the same arguments, for all but Flatten.
@TORCH_BUILDERS.register("Reshape")
@KERAS_BUILDERS.register("Reshape")
def reshape_builder(layer: Reshape, plan: LayerPlan) -> Construct:
    return Construct.of("Reshape", target_shape=plan.output_shape)  # any -1 already resolved


@TORCH_BUILDERS.register("Flatten")
def torch_flatten(layer: Flatten, plan: LayerPlan) -> Construct:
    return Construct.of("nn.Flatten")  # the data is channels-last already, so this is Keras' order


@KERAS_BUILDERS.register("Flatten")
def keras_flatten(layer: Flatten, plan: LayerPlan) -> Construct:
    return Construct.of("Flatten")


@TORCH_BUILDERS.register("Permute")
@KERAS_BUILDERS.register("Permute")
def permute_builder(layer: Permute, plan: LayerPlan) -> Construct:
    return Construct.of("Permute", dims=tuple(layer.dims))


@TORCH_BUILDERS.register("RepeatVector")
@KERAS_BUILDERS.register("RepeatVector")
def repeat_vector_builder(layer: RepeatVector, plan: LayerPlan) -> Construct:
    return Construct.of("RepeatVector", n=plan.int(layer.n))


# -- training (one optimizer step, whole batch; docs/conventions.md#training) --

def train_repeat_vector(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """dL/dx sums the n copies' gradients: (n - 1) adds per input element."""
    return train.Backward(grad_input=batch * product(row.input_shapes[0]) * (row.spec.n - 1))


trains_as("Reshape", "Flatten", "Permute", rule=train.gradient_free)
trains_as("RepeatVector", rule=train_repeat_vector)


# -- saved for the backward (docs/conventions.md#training, Memory) --

def saves_reshaping(ctx: saved.SaveContext) -> saved.Saves:
    """Nothing is kept (the backward reshapes, permutes or sums the gradient). The output is a view of the input
    when torch can make one: x.reshape / flatten of a contiguous input (flatten: of axes that merge), x.permute
    always, RepeatVector's x.unsqueeze(1).expand(n) with a stride-0 axis; else a contiguous copy."""
    x, kind = ctx.inputs[0], ctx.row.type
    if kind == "Permute":
        return saved.Saves(layout=x.layout.permuted((0, *ctx.spec.dims)), alias=0)
    if kind == "RepeatVector":
        return saved.Saves(layout=saved.Layout((0, 1, 2), broadcast=frozenset({1})), alias=0)
    if kind == "Flatten" and x.rank == 2:
        return saved.Saves(layout=x.layout, alias=0)
    if kind == "Flatten":
        return saved.Saves(alias=0 if x.mergeable(range(1, x.rank)) else None)
    if x.is_contiguous():
        return saved.Saves(alias=0)
    squeezed = squeeze_layout(x, ctx.output_shape)
    return saved.Saves(layout=squeezed, alias=0) if squeezed is not None else saved.Saves()


def squeeze_layout(x: saved.Tensor, shape: tuple[sympy.Expr, ...]) -> saved.Layout | None:
    """The layout of x.reshape(shape) when it only drops or inserts axes of size 1: a view whatever x's strides
    (torch's computeStride keeps each axis of size > 1 with its own stride), the axes of size > 1 in their order in
    memory, the new size-1 axes innermost. None for another reshape (a contiguous copy here)."""
    kept_old = [a for a in range(1, x.rank) if x.shape[a] != 1]
    kept_new = [a for a in range(1, len(shape)) if shape[a] != 1]
    if [x.shape[a] for a in kept_old] != [shape[a] for a in kept_new]:
        return None
    new_axis = {0: 0, **dict(zip(kept_old, kept_new, strict=True))}
    order = tuple(new_axis[a] for a in x.layout.order if a in new_axis)
    return saved.Layout((*order, *(a for a in range(1, len(shape)) if a not in kept_new)),
                        frozenset(new_axis[a] for a in x.layout.partial if a in new_axis),
                        frozenset(new_axis[a] for a in x.layout.broadcast if a in new_axis))


saves_as("Reshape", "Flatten", "Permute", "RepeatVector", rule=saves_reshaping)
