"""Merge layers: Add, Subtract, Multiply, Maximum, Minimum, Average (Keras
broadcasting) and Concatenate.

Elementwise merges of k inputs cost k - 1 operations (adds, multiplies or
compares) per output element, under 'other'; Average costs k (k - 1 adds, one
divide). Keras broadcasts like NumPy over the non-batch axes (it prepends axes of
size 1 to the lower-rank input).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

import sympy
from pydantic import StrictInt

from analyzer.layers import backward as train
from analyzer.layers import saved
from analyzer.layers import tool_rules as tools
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape, normalize_axis, shape_str
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, Construct
from analyzer.layers.registry import counted_as, register, saves_as, trains_as
from analyzer.symbolic import ZERO, product, render

if TYPE_CHECKING:
    from analyzer.export.plan import LayerPlan
    from analyzer.report import LayerRow


def broadcast_shapes(shapes: list[Shape], ctx: LayerContext) -> Shape:
    rank = max(len(s) for s in shapes)
    padded = [(sympy.Integer(1),) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    shown: str | None = None  # the input shapes in words, rendered once and only if needed
    for axis in range(rank):
        dims = [s[axis] for s in padded]
        sized = [d for d in dims if d != 1]
        result = sized[0] if sized else sympy.Integer(1)
        for d in sized[1:]:
            if d == result:
                continue
            shown = shown or ", ".join(shape_str(s) for s in shapes)
            a, b = render(result), render(d)
            ctx.require_equal(
                d, result,
                f"inputs {shown} must match on axis {axis + 1} ({a} vs {b}) or be 1 there",
                violation=f"inputs {shown} differ on axis {axis + 1} ({a} vs {b}) and neither is 1 there (Keras broadcasting)",
            )
        out.append(result)
    return tuple(out)


class ElementwiseMerge(LayerSpec):
    arity: ClassVar[int | None] = None


def elementwise_merge(layer: ElementwiseMerge, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    shape = broadcast_shapes(inputs, ctx)
    per_element = len(inputs) if isinstance(layer, Average) else len(inputs) - 1
    return LayerResult(shape, other=per_element * product(shape))


class Add(ElementwiseMerge):
    type: Literal["Add"]


class Multiply(ElementwiseMerge):
    type: Literal["Multiply"]


class Subtract(ElementwiseMerge):
    type: Literal["Subtract"]
    arity: ClassVar[int | None] = 2


class Maximum(ElementwiseMerge):
    type: Literal["Maximum"]


class Minimum(ElementwiseMerge):
    type: Literal["Minimum"]


class Average(ElementwiseMerge):
    type: Literal["Average"]


for _merge in (Add, Multiply, Subtract, Maximum, Minimum, Average):
    register(_merge)(elementwise_merge)


class Concatenate(LayerSpec):
    type: Literal["Concatenate"]
    axis: StrictInt = -1
    arity: ClassVar[int | None] = None


@register(Concatenate)
def concatenate(layer: Concatenate, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    rank = len(inputs[0])
    if any(len(s) != rank for s in inputs):
        ctx.fail(f"inputs must have the same rank, got {', '.join(shape_str(s) for s in inputs)}")
    axis = normalize_axis(layer.axis, rank, ctx)
    for i in range(rank):
        if i == axis:
            continue
        for s in inputs[1:]:
            if s[i] == inputs[0][i]:
                continue
            shown = ", ".join(shape_str(x) for x in inputs)
            a, b = render(inputs[0][i]), render(s[i])
            ctx.require_equal(
                s[i], inputs[0][i],
                f"inputs {shown} must match on every axis but the concatenation axis {axis + 1} (axis {i + 1}: {a} vs {b})",
                violation=f"inputs {shown} differ on axis {i + 1} ({a} vs {b}); "
                f"only the concatenation axis {axis + 1} may differ",
            )
    out = list(inputs[0])
    out[axis] = sum((s[axis] for s in inputs), sympy.Integer(0))
    return LayerResult(tuple(out))

# -- what each counting tool counts on the torch export (torch_modules.merging: the + - * operators, torch.cat) --

MERGES = ("Add", "Subtract", "Multiply", "Maximum", "Minimum", "Average")
MERGE_OPS = {"Add": ("aten::add",), "Subtract": ("aten::sub",), "Multiply": ("aten::mul",),
             "Maximum": ("aten::maximum",), "Minimum": ("aten::minimum",), "Average": ("aten::add", "aten::div")}


def fvcore_merge(row: LayerRow) -> tools.Outcome:
    """Add / Subtract / Multiply / Maximum / Minimum / Average: aten::add, sub, mul, maximum, minimum, div are
    unsupported."""
    return tools.Skipped(tools.fvcore_unsupported(MERGE_OPS[row.type]))


counted_as(*MERGES, torch=tools.torch_no_formula, thop=tools.thop_not_a_module, ptflops=tools.ptflops_not_patched,
           fvcore=fvcore_merge)
counted_as("Concatenate", **tools.COST_FREE)


# -- export --

@TORCH_BUILDERS.register(*MERGES)
def torch_merge(layer: ElementwiseMerge, plan: LayerPlan) -> Construct:
    return Construct.of("Merge", op=layer.type.lower())


@KERAS_BUILDERS.register(*MERGES)
def keras_merge(layer: ElementwiseMerge, plan: LayerPlan) -> Construct:
    return Construct.of(layer.type)


@TORCH_BUILDERS.register("Concatenate")
@KERAS_BUILDERS.register("Concatenate")
def concatenate_builder(layer: Concatenate, plan: LayerPlan) -> Construct:
    """keras.layers.Concatenate, or torch_modules' Concatenate: the same arguments."""
    return Construct.of("Concatenate", axis=layer.axis)


# -- training (one optimizer step, whole batch; docs/conventions.md#training) --

def train_merge(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """Over N = B·outputs: Add passes g to each input: 0; Subtract, -g to the second: N; Average, g/k once: N;
    Multiply of two, g·b and g·a: 2N. An input smaller than the output (broadcast) sums its gradient over the
    copies: N - B·its elements adds. Concatenate: slices of g: 0."""
    k = len(row.input_shapes)
    if row.type in ("Maximum", "Minimum") or (row.type == "Multiply" and k != 2):
        raise train.NoBackwardRule(f"no backward rule for {row.type} of {k} inputs yet", layer=row.name)
    n = batch * product(row.output_shape)
    elementwise = {"Add": 0, "Subtract": 1, "Average": 1, "Multiply": 2}[row.type] * n
    reductions = sum((n - batch * product(shape) for shape in row.input_shapes
                      if product(shape) != product(row.output_shape)), ZERO)
    return train.Backward(grad_input=elementwise + reductions)


trains_as(*MERGES, rule=train_merge)
trains_as("Concatenate", rule=train.gradient_free)


# -- saved for the backward (docs/conventions.md#training, Memory) --

def saves_merge(ctx: saved.SaveContext) -> saved.Saves:
    """The export merges left to right. + - and the average's /k keep nothing; a * b keeps b for dL/da when a needs a
    gradient and a for dL/db when b does; torch.maximum / minimum keep both. A running result of three or more
    inputs is a tensor of its own (the broadcast of those inputs). torch.cat keeps nothing and writes a contiguous
    tensor; the others' output takes the layout of the first input of the output's shape."""
    if ctx.row.type == "Concatenate":
        return saved.Saves()
    inputs = ctx.inputs
    kept: list[saved.Saved] = []
    if ctx.row.type in ("Multiply", "Maximum", "Minimum"):
        running, shape, needs = saved.Saved.input(0), list(inputs[0].shape[1:]), inputs[0].requires_grad
        for i, x in enumerate(inputs[1:], start=1):
            both = ctx.row.type != "Multiply"
            if needs or both:
                kept.append(saved.Saved.input(i))
            if x.requires_grad or both:
                kept.append(running)
            other = list(x.shape[1:])
            rank = max(len(shape), len(other))
            shape, other = ([sympy.Integer(1)] * (rank - len(s)) + s for s in (shape, other))
            shape = [a if a != 1 else b for a, b in zip(shape, other, strict=True)]
            running = saved.Saved.new(f"result of {i + 1} inputs", ctx.batch * product(shape))
            needs = needs or x.requires_grad
    full = next((x for x in inputs if len(x.shape) == len(ctx.output_shape) and
                 all(d == o for d, o in zip(x.shape, ctx.output_shape, strict=True))), None)
    return saved.Saves(tuple(dict.fromkeys(kept)), full.layout.dense() if full else None)


saves_as(*MERGES, "Concatenate", rule=saves_merge)
