"""The vocabulary the layer families use to say what nnspec's PyTorch export runs for
a layer, in the spec's symbols: nn.ConvNd / nn.Linear / nn.GRU calls, activation calls,
pools, attention products. The convention rules of each family (the tools count
these the way each tool does) are written over these; the cross-check suite runs the
tools on the real export to hold both in step.

Shapes exclude the batch axis (batch 1). No framework is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import sympy

from analyzer.symbolic import ONE, product

if TYPE_CHECKING:
    from analyzer.report import LayerRow

# The aten ops each activation traces to, as analyzer/layers/torch_modules/common.py `activate` calls it
# (relu's aten::relu is one fvcore ignores; linear is no op).
ACTIVATION_OPS = {
    "linear": (), "relu": ("aten::relu",), "sigmoid": ("aten::sigmoid",), "tanh": ("aten::tanh",),
    "softmax": ("aten::softmax",), "relu6": ("aten::relu6",), "leaky_relu": ("aten::leaky_relu",),
    "elu": ("aten::elu",), "selu": ("aten::selu",), "gelu": ("aten::gelu",), "gelu_tanh": ("aten::gelu",),
    "silu": ("aten::silu",), "swish": ("aten::silu",), "hard_sigmoid": ("aten::add", "aten::relu6", "aten::div"),
    "softplus": ("aten::softplus",), "softsign": ("aten::abs", "aten::add", "aten::div"), "exponential": ("aten::exp",),
    # keras.activations' others, as torch_modules/common.py computes them (fvcore ignores aten::zeros_like and
    # aten::clamp: not listed):
    "hard_silu": ("aten::hardswish",), "hard_swish": ("aten::hardswish",), "celu": ("aten::celu",),
    "hard_tanh": ("aten::hardtanh",), "hard_shrink": ("aten::hardshrink",), "soft_shrink": ("aten::softshrink",),
    "tanh_shrink": ("aten::tanh", "aten::sub"), "log_sigmoid": ("aten::log_sigmoid",), "mish": ("aten::mish",),
    "sparse_plus": ("aten::le", "aten::lt", "aten::add", "aten::pow", "aten::mul", "aten::where"),
    "sparse_sigmoid": ("aten::add", "aten::mul"),
    "squareplus": ("aten::pow", "aten::add", "aten::sqrt", "aten::div"),
}


@dataclass(frozen=True)
class Conv:
    """One nn.ConvNd call: `positions` output positions of `out_channels`, each a dot product over
    `in_per_group` channels times `kernel` taps. `string_padding`: torch's padding='same' (a string)."""

    positions: sympy.Expr
    out_channels: sympy.Expr
    in_per_group: sympy.Expr
    kernel: sympy.Expr
    groups: sympy.Expr
    bias: bool
    string_padding: bool

    @property
    def macs(self) -> sympy.Expr:
        return self.positions * self.out_channels * self.in_per_group * self.kernel

    @property
    def outputs(self) -> sympy.Expr:
        return self.positions * self.out_channels


@dataclass(frozen=True)
class Linear:
    """`calls` calls of one nn.Linear(in, out) on an input with `positions` rows."""

    calls: sympy.Expr
    positions: sympy.Expr
    in_features: sympy.Expr
    out_features: sympy.Expr
    bias: bool

    @property
    def macs(self) -> sympy.Expr:
        return self.calls * self.positions * self.in_features * self.out_features


@dataclass(frozen=True)
class Activation:
    """`calls` calls of activation `name` on `elements` elements each."""

    name: str
    elements: sympy.Expr
    calls: sympy.Expr = ONE


def fused_activation(row: LayerRow) -> list[Activation]:
    """The activation a Conv / Dense / ConvTranspose module applies to its output (none for linear)."""
    name = getattr(row.spec, "activation", None) or "linear"
    return [] if name == "linear" else [Activation(name, product(row.output_shape))]


def has_bias(row: LayerRow) -> bool:
    """Whether the exported layer has a bias, as counted (so --bias on|off is honoured)."""
    return row.counts.bias != 0


def input_elements(row: LayerRow) -> sympy.Expr:
    """Elements of the (first) input: what a normalization or activation module sees at batch 1."""
    return product(row.input_shapes[0])
