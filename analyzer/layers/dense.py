"""Dense: a matrix product on the last axis of an input of any rank (Keras semantics)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import sympy
from pydantic import StrictBool

from analyzer.layers import backward as train
from analyzer.layers import saved
from analyzer.layers import tool_rules as tools
from analyzer.layers.activations import ActivationName, activation_flops, activation_saves
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, Construct
from analyzer.layers.registry import counted_as, register, saves_as, trains_as
from analyzer.layers.torch_ops import Linear, fused_activation, has_bias
from analyzer.spec.fields import Size
from analyzer.symbolic import ONE, product

if TYPE_CHECKING:
    from analyzer.export.plan import LayerPlan
    from analyzer.report import LayerRow


class Dense(LayerSpec):
    type: Literal["Dense"]
    units: Size
    activation: ActivationName | None = None
    use_bias: StrictBool = True


@register(Dense)
def dense(layer: Dense, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    if not shape:
        ctx.fail("needs an input with at least one axis besides the batch")
    n = shape[-1]
    out_shape = (*shape[:-1], layer.units)
    outputs = product(out_shape)
    bias = ctx.use_bias(layer.use_bias)
    return LayerResult(
        out_shape,
        trainable_params=n * layer.units + (layer.units if bias else 0),
        macs=outputs * n,
        dot=outputs * (2 * n - 1),
        bias=outputs if bias else 0,
        activation=activation_flops(layer.activation or "linear", out_shape),
    )


# -- what each counting tool counts on the torch export (torch_modules.dense.Dense: nn.Linear + activation) --

def linear_call(row: LayerRow) -> Linear:
    return Linear(ONE, product(row.output_shape[:-1]), row.input_shapes[0][-1], row.spec.units, has_bias(row))


def torch_dense(row: LayerRow) -> sympy.Expr:
    """nn.Linear dispatches aten.addmm (or mm + add): `mm_flop` = m · n · 2 · k; the bias add is not counted."""
    return 2 * linear_call(row).macs


def thop_dense(row: LayerRow) -> sympy.Expr:
    """nn.Linear -> `count_linear`: in_features · y.numel() (no bias)."""
    return tools.thop_linear(linear_call(row))


def ptflops_dense(row: LayerRow) -> sympy.Expr:
    """nn.Linear -> `linear_flops_counter_hook`: (in · out + out if bias) · positions; then the fused activation."""
    return tools.ptflops_linear(linear_call(row)) + tools.ptflops_activations(fused_activation(row))


def fvcore_dense(row: LayerRow) -> tools.Outcome:
    """aten::linear -> `linear_flop_jit`: prod(input shape) · out_features (no bias); a fused activation other than
    relu is unsupported."""
    return tools.fvcore_outcome(linear_call(row).macs, tools.fvcore_activation_reason(fused_activation(row)))


counted_as("Dense", torch=torch_dense, thop=thop_dense, ptflops=ptflops_dense, fvcore=fvcore_dense)


# -- export --

@TORCH_BUILDERS.register("Dense")
def torch_builder(layer: Dense, plan: LayerPlan) -> Construct:
    return Construct.of("Dense", in_features=plan.input_shape[-1], units=plan.int(layer.units),
                        use_bias=plan.use_bias(layer.use_bias), activation=layer.activation)


@KERAS_BUILDERS.register("Dense")
def keras_builder(layer: Dense, plan: LayerPlan) -> Construct:
    return Construct.of("Dense", units=plan.int(layer.units), activation=layer.activation, use_bias=plan.use_bias(layer.use_bias))


# -- training (one optimizer step, whole batch; docs/conventions.md#training) --

def train_dense(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """y = act(x·W + b) over R = B·P rows (P positions per sample), n inputs, u units. Through the activation, dz
    per output; dL/dx = dz·Wᵀ: R·n gradients of u terms; dL/dW = xᵀ·dz: n·u gradients of R terms; dL/db: u sums
    of R."""
    n, units = row.input_shapes[0][-1], row.spec.units
    rows = batch * product(row.output_shape[:-1])
    return train.Backward(
        grad_input=train.dot_product_gradients(rows * n, units),
        grad_weight=train.dot_product_gradients(n * units, rows) + train.bias_gradient(units, rows, has_bias(row)),
        grad_other=train.activation_backward(row.spec.activation, row.output_shape, batch, row.name),
    )


def torch_train_dense(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """nn.Linear's backward in FlopCounterMode: the mm of grad · W for dL/dx and the mm of gradᵀ · x for dL/dW,
    `mm_flop` 2·R·n·u each (R = B·positions); the bias gradient is a sum, no formula."""
    linear = linear_call(row)
    return train.Backward(grad_input=2 * batch * linear.macs, grad_weight=2 * batch * linear.macs)


trains_as("Dense", rule=train_dense, torch=torch_train_dense)


# -- saved for the backward (docs/conventions.md#training, Memory) --

def saves_dense(ctx: saved.SaveContext) -> saved.Saves:
    """dL/dW = xᵀ·dz needs x: nn.Linear's addmm keeps it when the weights train (its dL/dx needs only W). Of an
    input of rank > 2, torch folds the rows into a matrix, a view when they merge (contiguous), else a copy, and
    keeps that. Then the activation's (on z, the product, a tensor of the layer's own)."""
    x = ctx.inputs[0]
    kept: tuple[saved.Saved, ...] = ()
    if ctx.trains:
        rows = range(x.rank - 1)
        kept = (saved.Saved.input(0) if x.rank == 2 or x.mergeable(rows) else saved.Saved.new("rows", x.elements),)
    z = saved.Saved.new("x·W + b", ctx.outputs)
    return saved.Saves(kept + activation_saves(ctx.spec.activation, z, ctx.outputs))


saves_as("Dense", rule=saves_dense)
