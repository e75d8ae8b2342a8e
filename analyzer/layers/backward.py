"""What the layer families' training rules share (issue 16): the cost of one optimizer step's forward and
backward pass through a layer, for a batch of B samples, as nnspec counts it (docs/conventions.md,
"Training").

A family declares, next to the layer, `trains_as(type, rule)`; a rule takes the analyzed `LayerRow`, the
batch symbol and what the step needs from the layer (`Needs`: the gradient with respect to its input, to
its weights, or both) and returns a `Backward`. Counts are whole-batch FLOPs, in the same units as the
forward counts (2n - 1 per n-term dot product output, 1 per add, multiply, compare, divide, sqrt).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sympy

from analyzer.errors import UsageError
from analyzer.symbolic import ZERO, product

if TYPE_CHECKING:
    from analyzer.report import LayerRow


@dataclass(frozen=True)
class Needs:
    """What the step needs of one layer: dL/d(input) (some layer before it trains, or --input-grad) and
    dL/d(weights) (the layer itself trains)."""

    input: bool
    weights: bool
    # per input, in the row's order: does it need a gradient (a layer reading a model input and a trained tensor
    # computes only the second's); empty: every input as `input`
    inputs: tuple[bool, ...] = ()
    # per output (a layer with several: return_state): does a gradient arrive at it (read by a later layer, or a
    # model output); empty: every output
    outputs: tuple[bool, ...] = ()
    # a layer reading another layer's weights (a tied LM head, `tied_to`): do those train (not frozen)
    tied_weights: bool = True

    def input_needs(self, index: int) -> bool:
        return self.inputs[index] if self.inputs else self.input

    def output_needs(self, index: int) -> bool:
        return self.outputs[index] if self.outputs else True


@dataclass(frozen=True)
class Backward:
    """One layer in one training step, whole batch.

    forward: the training-mode forward pass (batch statistics, dropout masks); None: B times the inference
    forward. grad_input: dL/dx. grad_weight: dL/dW and dL/db. grad_other: the elementwise backward both
    need (through a fused activation, inside a normalization). no_gradient: why there is none at all
    (an integer input), shown in the table.
    """

    grad_input: sympy.Expr = ZERO
    grad_weight: sympy.Expr = ZERO
    grad_other: sympy.Expr = ZERO
    forward: sympy.Expr | None = None
    no_gradient: str | None = None


TrainingRule = Callable[["LayerRow", sympy.Symbol, Needs], Backward]


class NoBackwardRule(UsageError):
    """A layer type, or an option of it, that nnspec has no exact backward rule for yet: a refusal, not a guess."""


# The backward of each activation per element, the multiply by the incoming gradient included; g is the
# gradient arriving at the activation's output y (softmax: per row, see activation_backward).
ACTIVATION_BACKWARD = {
    "linear": 0,  # dz = g: nothing to compute
    "relu": 2,  # g * (x > 0): a compare, a multiply
    "relu6": 3,  # g * (0 < x < 6): two compares, a multiply
    "leaky_relu": 2,  # g * (x > 0 ? 1 : alpha): a compare, a multiply
    "elu": 3,  # x > 0 ? g : g * (y + alpha): a compare, an add, a multiply
    "selu": 3,  # g * (x > 0 ? scale : y + scale*alpha): a compare, an add, a multiply
    "sigmoid": 3,  # g * y * (1 - y): a subtract, two multiplies
    "tanh": 3,  # g * (1 - y*y): a multiply (y*y), a subtract, a multiply
    # torch's gelu_backward: cdf = 0.5*(1 + erf(x/sqrt 2)) 4; pdf = exp(-0.5*x*x)/sqrt(2 pi) 4; g*(cdf + x*pdf) 3
    "gelu": 11,
    # torch's tanh gelu_backward: x², x³, κx³, x + it, β·it, tanh (5), 0.5x, 1 + t, 0.5(1 + t), t², 1 - t², 3κx²,
    # 1 + it, β·it, 0.5x·(1 - t²), ·(β(1 + 3κx²)), + 0.5(1 + t), g· = 17 + 5
    "gelu_tanh": 22,
    # torch's silu_backward: s = 1/(1 + exp(-x)) 4; g * s * (1 + x*(1 - s)) 5
    "silu": 9,
    "swish": 9,
    "hard_sigmoid": 3,  # g / 6 inside (-3, 3): two compares, a multiply
    "softplus": 5,  # g * sigmoid(x): the sigmoid 4, a multiply
    "softsign": 4,  # g / (1 + |x|)**2: abs, add, square, divide
    "exponential": 1,  # g * y
    # keras.activations' others, as torch's *_backward kernels compute them for the export's call:
    "hard_silu": 5,  # hardswish_backward: x < -3 ? 0 : x <= 3 ? g*(x/3 + 0.5) : g: two compares, divide, add, mul
    "hard_swish": 5,
    "celu": 4,  # x > 0 ? g : g*(y/alpha + 1): compare, divide, add, multiply
    "hard_tanh": 3,  # g * (-1 < x < 1): two compares, a multiply
    "hard_shrink": 3,  # g * (|x| > 0.5): abs, compare, multiply
    "soft_shrink": 3,  # g * (|x| > 0.5): abs, compare, multiply
    "tanh_shrink": 7,  # g * tanh(x)**2: tanh 5, square, multiply
    "log_sigmoid": 6,  # g * (1 - sigmoid(x)): sigmoid 4, subtract, multiply
    # mish_backward: s = sigmoid(x) 4, t = tanh(softplus(x)) 8; g*(t + x*s*(1 - t*t)): t*t, 1 -, x*s, *, +, g* = 6
    "mish": 18,
    "sparse_plus": 5,  # g * (x <= -1 ? 0 : x < 1 ? (x + 1)/2 : 1): two compares, add, multiply, multiply
    "sparse_sigmoid": 3,  # g * (-1 < x < 1 ? 0.5 : 0): two compares, a multiply
    "squareplus": 7,  # g * (1 + x/sqrt(x**2 + 4))/2: square, add, sqrt, divide, add, multiply, multiply
}


def activation_backward(name: str | None, shape: tuple[sympy.Expr, ...], batch: sympy.Expr,
                        layer: str = "") -> sympy.Expr:
    """The backward through activation `name` over `batch` outputs of `shape`. softmax over the last axis, per row
    of n: dx = y * (g - sum(g * y)): n multiplies, n - 1 adds, n subtracts, n multiplies = 4n - 1."""
    name = name or "linear"
    if name == "softmax":
        n = shape[-1]
        return batch * product(shape[:-1]) * (4 * n - 1)
    if name not in ACTIVATION_BACKWARD:
        raise NoBackwardRule(f"no backward rule for activation {name!r} yet (nnspec has one for "
                             f"{', '.join([*ACTIVATION_BACKWARD, 'softmax'])}): the training cost is not counted",
                             layer=layer or None)
    return batch * product(shape) * ACTIVATION_BACKWARD[name]


def torch_backward_without_formula(row: LayerRow, batch: sympy.Symbol, needs: Needs) -> Backward:
    """FlopCounterMode has a formula for no aten op of this layer's backward (native_batch_norm_backward,
    threshold_backward, max_pool2d_with_indices_backward, embedding_dense_backward, mul, sum, ...): 0."""
    return Backward()


def gradient_free(row: LayerRow, batch: sympy.Symbol, needs: Needs) -> Backward:
    """Data movement (reshape, flatten, permute, the inputs): the gradient moves back unchanged, no arithmetic."""
    return Backward()


def dot_product_gradients(outputs: sympy.Expr, terms: sympy.Expr) -> sympy.Expr:
    """`outputs` gradients, each a dot product of `terms` terms: 2·terms - 1 FLOPs each."""
    return outputs * (2 * terms - 1)


def bias_gradient(units: sympy.Expr, rows: sympy.Expr, use_bias: Any) -> sympy.Expr:
    """dL/db: each of `units` biases sums its gradient over `rows` rows: rows - 1 adds."""
    return units * (rows - 1) if use_bias else ZERO
