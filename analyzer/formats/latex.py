"""--format latex: a booktabs table a paper can \\input (values; formulas in math mode)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy

from analyzer.formats.common import COLUMNS, ConventionCells, outputs_value
from analyzer.report import Report

if TYPE_CHECKING:
    from analyzer.conventions.base import Recount


def _escape(text: str) -> str:
    return text.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("&", r"\&").replace("%", r"\%").replace("#", r"\#")


def _cell(report: Report, expr: sympy.Expr) -> str:
    value = f"{report.value(expr):,}".replace(",", "{,}")
    if not expr.free_symbols:
        return f"${value}$"
    return f"${value}$ \\newline ${sympy.latex(sympy.expand(expr))}$"


def render(report: Report, convention: Recount | None = None) -> str:
    symbols = ", ".join(f"{k}={v}" for k, v in report.symbol_values().items())
    profile = ConventionCells(report, convention) if convention is not None else None
    out = [
        r"\begin{table}[t]",
        r"\centering",
        f"\\caption{{{_escape(report.name)}: parameters, MACs and FLOPs ({_escape(symbols)})}}",
        r"\begin{tabular}{llllll" + ("l" if profile else "") + "}",
        r"\toprule",
        r"Layer & Type & Output shape & Params & MACs & FLOPs" + (f" & {_escape(profile.name)}" if profile else "") + r" \\",
        r"\midrule",
    ]
    for row in report.layers.values():
        cells = " & ".join(_cell(report, row.counts.quantity(q)) for q in COLUMNS)
        if profile and convention is not None:
            count, note = convention.layers[row.name], profile.note(row.name)
            shown = "skipped" if profile.cell(row.name) is None else _cell(report, count.expr)
            cells += f" & {shown}" + (f" {note}" if note else "")
        out.append(f"{_escape(row.name)} & {_escape(row.type)} & {outputs_value(report, row.output_shapes)} & {cells} \\\\")
    out.append(r"\midrule")
    total = " & ".join(_cell(report, report.total.quantity(q)) for q in COLUMNS)
    if profile and convention is not None:
        total += " & " + _cell(report, convention.total)
    out.append(f"Total & & & {total} \\\\")
    out += [r"\bottomrule", r"\end{tabular}"]
    if profile:
        notes = "".join(" " + _escape(n) for n in profile.footnotes())
        out += [r"\par\smallskip", _escape(f"Convention {profile.title()}.") + notes]
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"
