"""Activation functions: their per-element cost, the Activation layer and the
Softmax layer.

Counting rule (docs/conventions.md, "Activations"): one FLOP per elementary
operation (add, subtract, multiply, divide, compare, abs, exp, log, erf).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import sympy
from pydantic import StrictInt, field_validator

from analyzer.layers import backward as train
from analyzer.layers import saved, torch_ops
from analyzer.layers import tool_rules as tools
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape, normalize_axis
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, Construct
from analyzer.layers.registry import counted_as, register, saves_as, trains_as
from analyzer.symbolic import ZERO, product

if TYPE_CHECKING:
    from analyzer.export.plan import LayerPlan
    from analyzer.report import LayerRow

# FLOPs per element. softmax is per row instead: see activation_flops.
PER_ELEMENT_FLOPS: dict[str, int] = {
    "linear": 0,
    "relu": 1,  # max(x, 0): one compare
    "relu6": 2,  # min(max(x, 0), 6): two compares
    "leaky_relu": 2,  # max(x, 0.2*x): multiply, compare
    "elu": 4,  # x >= 0 ? x : alpha*(exp(x) - 1): compare, exp, subtract, multiply
    "selu": 5,  # scale * elu(x, alpha): elu's 4, one more multiply
    "gelu": 5,  # Keras' default approximate=False: 0.5*x*(1 + erf(x/sqrt(2))): multiply, erf, add, 2 multiplies
    # the tanh approximation (torch's approximate='tanh', transformers' gelu_new / gelu_pytorch_tanh):
    # 0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x**3))): x**3 2, *0.044715 1, + x 1, *sqrt(2/pi) 1, tanh 5,
    # 1 + 1, x* 1, 0.5* 1
    "gelu_tanh": 13,
    "silu": 5,  # x * sigmoid(x): sigmoid's 4, multiply
    "swish": 5,  # Keras' alias of silu
    "hard_sigmoid": 4,  # clip(x/6 + 0.5, 0, 1): divide, add, two compares
    "softplus": 3,  # log(1 + exp(x)): exp, add, log
    "softsign": 3,  # x / (1 + |x|): abs, add, divide
    "exponential": 1,  # exp(x)
    "sigmoid": 4,  # 1 / (1 + exp(-x)): negate, exp, add, divide
    "tanh": 5,  # (exp(2x) - 1) / (exp(2x) + 1): multiply, exp, subtract, add, divide
    # keras.activations' other elementwise functions, at the defaults a named (string) activation uses, each from
    # its formula in keras/src/activations/activations.py:
    "hard_silu": 5,  # x * hard_sigmoid(x): hard_sigmoid's 4, a multiply
    "hard_swish": 5,  # Keras' alias of hard_silu
    "celu": 5,  # x >= 0 ? x : alpha*(exp(x/alpha) - 1): compare, divide, exp, subtract, multiply
    "hard_tanh": 2,  # clip(x, -1, 1): two compares
    "hard_shrink": 2,  # |x| > 0.5 ? x : 0: abs, compare
    "soft_shrink": 3,  # x > 0.5 ? x - 0.5 : x < -0.5 ? x + 0.5 : 0: two compares, a subtract or add
    "tanh_shrink": 6,  # x - tanh(x): tanh's 5, a subtract
    "log_sigmoid": 5,  # log(sigmoid(x)): sigmoid's 4, log
    "mish": 9,  # x * tanh(softplus(x)): softplus' 3, tanh's 5, a multiply
    "sparse_plus": 5,  # x <= -1 ? 0 : x < 1 ? (x + 1)**2 / 4 : x: two compares, add, square, multiply
    "sparse_sigmoid": 4,  # x <= -1 ? 0 : x >= 1 ? 1 : 0.5*(x + 1): two compares, add, multiply
    "squareplus": 5,  # (x + sqrt(x**2 + 4)) / 2: square, add, sqrt, add, divide
}
ActivationName = Literal[
    "linear", "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "gelu_tanh", "silu", "swish", "hard_sigmoid",
    "softplus", "softsign", "exponential", "sigmoid", "tanh", "softmax",
    "hard_silu", "hard_swish", "celu", "hard_tanh", "hard_shrink", "soft_shrink", "tanh_shrink", "log_sigmoid",
    "mish", "sparse_plus", "sparse_sigmoid", "squareplus",
]
# keras.activations that are no per-element function of one tensor, so no `activation:` of a layer here: glu
# halves its axis, log_softmax and sparsemax are per row (sparsemax sorts), threshold takes two arguments that a
# named activation cannot pass. The Keras importer refuses them with this reason.
NOT_ELEMENTWISE = {
    "glu": "splits its axis in two halves (the output has half the features), so it is no elementwise activation",
    "log_softmax": "is a function of a whole row (like softmax), which nnspec has no rule for yet",
    "sparsemax": "is a function of a whole row that sorts it, which nnspec has no rule for",
    "threshold": "needs its threshold and default_value arguments, which a named activation cannot pass",
}



def softmax_flops(n: sympy.Expr, rows: sympy.Expr) -> sympy.Expr:
    """Softmax over rows of n: n exps, n - 1 adds, n divides per row."""
    return rows * (3 * n - 1)


def activation_flops(name: str, shape: Shape) -> sympy.Expr:
    """FLOPs of applying activation `name` to a tensor of `shape`."""
    if name == "softmax":
        n = shape[-1] if shape else sympy.Integer(1)
        return softmax_flops(n, product(shape[:-1]))
    return PER_ELEMENT_FLOPS[name] * product(shape)


class Activation(LayerSpec):
    type: Literal["Activation"]
    activation: ActivationName


@register(Activation)
def activation_layer(layer: Activation, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    return LayerResult(shape, activation=activation_flops(layer.activation, shape))


class Softmax(LayerSpec):
    """Keras' Softmax layer: softmax over `axis` (one axis or several, jointly)."""

    type: Literal["Softmax"]
    axis: StrictInt | list[StrictInt] = -1

    @field_validator("axis")
    @classmethod
    def _non_empty(cls, value: int | list[int]) -> int | list[int]:
        if isinstance(value, list) and not value:
            raise ValueError("axis needs at least one axis")
        return value


@register(Softmax)
def softmax_layer(layer: Softmax, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    if not shape:
        ctx.fail("needs an input with at least one axis besides the batch")
    axes = {normalize_axis(a, len(shape), ctx) for a in (layer.axis if isinstance(layer.axis, list) else [layer.axis])}
    n = product(shape[a] for a in sorted(axes))
    rows = product(d for i, d in enumerate(shape) if i not in axes)
    return LayerResult(shape, activation=softmax_flops(n, rows))


# -- what each counting tool counts on the torch export (torch_modules.activations: plain calls, no module) --

def ptflops_activation(row: LayerRow) -> sympy.Expr:
    """Activation: the export's call, counted only if it is a patched function (F.relu6, F.elu, F.gelu, F.silu)."""
    name = row.spec.activation
    if name == "linear":
        return ZERO
    return tools.ptflops_activations([torch_ops.Activation(name, torch_ops.input_elements(row))])


def fvcore_activation(row: LayerRow) -> tools.Outcome:
    """relu: aten::relu is in `_IGNORED_OPS` (0 on purpose); linear: no op; every other activation's op (aten::sigmoid,
    aten::tanh, aten::softmax, aten::relu6, aten::gelu, ...) is unsupported."""
    return tools.fvcore_outcome(ZERO, tools.fvcore_unsupported(torch_ops.ACTIVATION_OPS[row.spec.activation]))


def fvcore_softmax(row: LayerRow) -> tools.Outcome:
    """Softmax: aten::softmax is unsupported."""
    return tools.Skipped("aten::softmax is unsupported")


counted_as("Activation", torch=tools.torch_no_formula, thop=tools.thop_not_a_module, ptflops=ptflops_activation,
           fvcore=fvcore_activation)
counted_as("Softmax", torch=tools.torch_no_formula, thop=tools.thop_not_a_module, ptflops=tools.ptflops_not_patched,
           fvcore=fvcore_softmax)


# -- export --

@TORCH_BUILDERS.register("Activation")
@KERAS_BUILDERS.register("Activation")
def activation_builder(layer: Activation, plan: LayerPlan) -> Construct:
    """keras.layers.Activation, or torch_modules' Activation: the same arguments."""
    return Construct.of("Activation", activation=layer.activation)


@TORCH_BUILDERS.register("Softmax")
def torch_softmax(layer: Softmax, plan: LayerPlan) -> Construct:
    if isinstance(layer.axis, list):
        if len(layer.axis) != 1:
            raise plan.error("a Softmax over several axes is not exported to torch yet")
        return Construct.of("Softmax", axis=layer.axis[0])
    return Construct.of("Softmax", axis=layer.axis)


@KERAS_BUILDERS.register("Softmax")
def keras_softmax(layer: Softmax, plan: LayerPlan) -> Construct:
    return Construct.of("Softmax", axis=layer.axis if not isinstance(layer.axis, list) else tuple(layer.axis))


# -- training (one optimizer step, whole batch; docs/conventions.md#training) --

def train_activation(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """dL/dx through the activation (backward.ACTIVATION_BACKWARD); softmax per row of its n values (the product of
    the Softmax layer's axes, of the last axis for an activation): dx = y·(g - Σ g·y), 4n - 1 per row."""
    if row.type == "Softmax":
        shape = row.output_shape
        rank = len(shape)
        axes = {(a + rank + 1 if a < 0 else a) - 1 for a in (row.spec.axis if isinstance(row.spec.axis, list)
                                                             else [row.spec.axis])}
        n = product(shape[a] for a in sorted(axes))
        rows = product(d for i, d in enumerate(shape) if i not in axes)
        return train.Backward(grad_input=batch * rows * (4 * n - 1))
    name = row.spec.activation
    return train.Backward(grad_input=train.activation_backward(name, row.output_shape, batch, row.name))


trains_as("Activation", "Softmax", rule=train_activation)


# -- saved for the backward (docs/conventions.md#training, Memory) --

# What each activation's backward keeps, as torch's derivatives.yaml has it for the export's call (common.activate):
# "x" its input, "y" its output, "t" a tensor of its own of the output's size (hard_sigmoid's x + 3, saved by relu6;
# softsign's 1 + |x|, saved by the divide with x). relu, sigmoid, tanh, exp and softmax are computed from y.
ACTIVATION_SAVES: dict[str, tuple[str, ...]] = {
    "linear": (), "relu": ("y",), "relu6": ("x",), "leaky_relu": ("x",), "elu": ("x",), "selu": ("x",),
    "gelu": ("x",), "gelu_tanh": ("x",), "silu": ("x",), "swish": ("x",), "hard_sigmoid": ("t",), "softplus": ("x",),
    "softsign": ("x", "t"), "exponential": ("y",), "sigmoid": ("y",), "tanh": ("y",), "softmax": ("y",),
    # hardswish, celu, hardtanh, hardshrink, softshrink, mish: their input; log_sigmoid its input (and a buffer of
    # its size); tanhshrink (x - tanh(x)) the tanh's output. The three written as several ops (torch_modules/
    # common.py), measured with saved_tensors_hooks: sparse_plus pow's input x + 1 and where's two bool
    # masks; sparse_sigmoid clamp's input 0.5·(x + 1); squareplus pow's input x and sqrt's output
    "hard_silu": ("x",), "hard_swish": ("x",), "celu": ("x",), "hard_tanh": ("x",), "hard_shrink": ("x",),
    "soft_shrink": ("x",), "tanh_shrink": ("t",), "log_sigmoid": ("x", "t"), "mish": ("x",),
    "sparse_plus": ("t", "mask", "mask2"), "sparse_sigmoid": ("t",), "squareplus": ("x", "t"),
}


def activation_saves(name: str | None, x: saved.Saved, elements: sympy.Expr) -> tuple[saved.Saved, ...]:
    """What activation `name` saves, `x` standing for its input, over `elements` outputs."""
    found = {"x": x, "y": saved.OUTPUT, "t": saved.Saved.new(f"{name} intermediate", elements),
             "mask": saved.Saved.new(f"{name} mask", elements, "bool"),
             "mask2": saved.Saved.new(f"{name} second mask", elements, "bool")}
    return tuple(found[k] for k in ACTIVATION_SAVES[name or "linear"])


def saves_activation(ctx: saved.SaveContext) -> saved.Saves:
    """The activation on the layer's input; softmax's output is contiguous (torch allocates it so), the others' keep
    the input's layout."""
    name = "softmax" if ctx.row.type == "Softmax" else ctx.spec.activation
    layout = None if name == "softmax" else ctx.inputs[0].layout.dense()
    return saved.Saves(activation_saves(name, saved.Saved.input(0), ctx.outputs), layout)


saves_as("Activation", "Softmax", rule=saves_activation)
