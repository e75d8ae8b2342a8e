"""Helpers shared by the text formats: one display cell per quantity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import sympy

from analyzer.layers.base import Shape
from analyzer.report import Report
from analyzer.symbolic import render

if TYPE_CHECKING:
    from analyzer.conventions.base import Recount

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


def outputs_formula(shapes: tuple[Shape, ...]) -> str:
    """A layer's output shape; a layer with several outputs (return_state) as a list, like Keras' summary."""
    text = ", ".join(shape_formula(s) for s in shapes)
    return text if len(shapes) == 1 else f"[{text}]"


def outputs_value(report: Report, shapes: tuple[Shape, ...]) -> str:
    text = ", ".join(shape_value(report, s) for s in shapes)
    return text if len(shapes) == 1 else f"[{text}]"


def symbols_line(report: Report) -> str:
    values = ", ".join(f"{k}={v}" for k, v in report.symbol_values().items()) or "none"
    bias = {"spec": "as written in the spec", "on": "on for every layer (--bias on)",
            "off": "off for every layer (--bias off)"}[report.bias]
    return f"symbols: {values}; bias: {bias}"


class ConventionCells:
    """Display of a convention profile's count per layer: a Cell, plus a footnote
    number for each distinct reason the tool gave up on (part of) a layer."""

    def __init__(self, report: Report, convention: Recount) -> None:
        self.report = report
        self.convention = convention
        self.reasons: dict[str, int] = {}

    @property
    def name(self) -> str:
        return self.convention.profile.name

    def note(self, layer: str) -> str:
        """'[n]' when the tool skipped (part of) the layer, else ''."""
        reason = self.convention.layers[layer].skipped
        if not reason:
            return ""
        number = self.reasons.setdefault(reason, len(self.reasons) + 1)
        return f"[{number}]"

    def cell(self, layer: str) -> Cell | None:
        """The count, or None when the tool skipped the whole layer (it counts 0)."""
        count = self.convention.layers[layer]
        if count.skipped and count.expr == 0:
            return None
        return cell(self.report, count.expr)

    def total(self) -> Cell:
        return cell(self.report, self.convention.total)

    def title(self) -> str:
        profile = self.convention.profile
        return f"{profile.name}{' (approximation)' if profile.approximate else ''}: {profile.tool}; counts {profile.unit}"

    def footnotes(self) -> list[str]:
        return [f"[{n}] {reason}" for reason, n in self.reasons.items()]
