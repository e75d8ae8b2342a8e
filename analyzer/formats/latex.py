"""--format latex: a booktabs table a paper can \\input (values; formulas in math mode)."""

from __future__ import annotations

import sympy

from analyzer.formats.common import COLUMNS, shape_value
from analyzer.report import Report


def _escape(text: str) -> str:
    return text.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("&", r"\&").replace("%", r"\%").replace("#", r"\#")


def _cell(report: Report, expr: sympy.Expr) -> str:
    value = f"{report.value(expr):,}".replace(",", "{,}")
    if not expr.free_symbols:
        return f"${value}$"
    return f"${value}$ \\newline ${sympy.latex(sympy.expand(expr))}$"


def render(report: Report) -> str:
    symbols = ", ".join(f"{k}={v}" for k, v in report.symbol_values().items())
    out = [
        r"\begin{table}[t]",
        r"\centering",
        f"\\caption{{{_escape(report.name)}: parameters, MACs and FLOPs ({_escape(symbols)})}}",
        r"\begin{tabular}{llllll}",
        r"\toprule",
        r"Layer & Type & Output shape & Params & MACs & FLOPs \\",
        r"\midrule",
    ]
    for row in report.layers.values():
        cells = " & ".join(_cell(report, row.counts.quantity(q)) for q in COLUMNS)
        out.append(f"{_escape(row.name)} & {_escape(row.type)} & {shape_value(report, row.output_shape)} & {cells} \\\\")
    out.append(r"\midrule")
    total = " & ".join(_cell(report, report.total.quantity(q)) for q in COLUMNS)
    out.append(f"Total & & & {total} \\\\")
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"
