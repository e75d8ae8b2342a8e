"""Helpers shared by the text formats: one display cell per quantity."""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from analyzer.layers.base import Shape
from analyzer.report import Report
from analyzer.symbolic import render

COLUMNS = ("params", "macs", "flops")


@dataclass(frozen=True)
class Cell:
    formula: str
    value: int

    @property
    def constant(self) -> bool:
        return self.formula == str(self.value)

    @property
    def value_text(self) -> str:
        return f"{self.value:,}"


def cell(report: Report, expr: sympy.Expr) -> Cell:
    return Cell(render(expr), report.value(expr))


def shape_formula(shape: Shape) -> str:
    return "(" + ", ".join(render(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def shape_value(report: Report, shape: Shape) -> str:
    return "(" + ", ".join(str(report.value(d)) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def symbols_line(report: Report) -> str:
    values = ", ".join(f"{k}={v}" for k, v in report.symbol_values().items()) or "none"
    bias = {"spec": "as written in the spec", "on": "on for every layer (--bias on)", "off": "off for every layer (--bias off)"}[report.bias]
    return f"symbols: {values}; bias: {bias}"
