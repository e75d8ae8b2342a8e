"""Activation functions: their per-element cost, and the Activation layer.

Counting rule (docs/conventions.md, "Activations"): one FLOP per elementary
operation (add, multiply, divide, compare, exp).
"""

from __future__ import annotations

from typing import Literal

import sympy

from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.registry import register
from analyzer.symbolic import product

# FLOPs per element. softmax is per row instead: see activation_flops.
PER_ELEMENT_FLOPS: dict[str, int] = {
    "linear": 0,
    "relu": 1,  # max(x, 0): one compare
    "sigmoid": 4,  # 1 / (1 + exp(-x)): negate, exp, add, divide
    "tanh": 5,  # (exp(2x) - 1) / (exp(2x) + 1): multiply, exp, subtract, add, divide
}
ActivationName = Literal["linear", "relu", "sigmoid", "tanh", "softmax"]


def activation_flops(name: str, shape: Shape) -> sympy.Expr:
    """FLOPs of applying activation `name` to a tensor of `shape`."""
    if name == "softmax":
        # Over the last axis of n: n exps, n - 1 adds, n divides per row.
        n = shape[-1] if shape else sympy.Integer(1)
        return product(shape[:-1]) * (3 * n - 1)
    return PER_ELEMENT_FLOPS[name] * product(shape)


class Activation(LayerSpec):
    type: Literal["Activation"]
    activation: ActivationName


@register(Activation)
def activation_layer(layer: Activation, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    return LayerResult(shape, activation=activation_flops(layer.activation, shape))
