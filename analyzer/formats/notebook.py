"""How Jupyter shows a Report: an HTML table (`_repr_html_`) and a LaTeX array in display
math (`_repr_latex_`, for MathJax and nbconvert). Each count: its value at the report's
symbol values, and its formula when it depends on them."""

from __future__ import annotations

import html

import sympy

from analyzer.formats.common import COLUMNS, outputs_value, symbols_line
from analyzer.report import Report
from analyzer.symbolic import render

HEADERS = ("Layer", "Type", "Output shape", "Params", "MACs", "FLOPs")


def _html_cell(report: Report, expr: sympy.Expr) -> str:
    value = f"{report.value(expr):,}"
    if not sympy.sympify(expr).free_symbols:
        return f"<td style='text-align:right'>{value}</td>"
    return f"<td style='text-align:right'>{value}<br><code>{html.escape(render(expr))}</code></td>"


def to_html(report: Report) -> str:
    head = "".join(f"<th>{h}</th>" for h in HEADERS)
    rows = []
    for row in report.layers.values():
        cells = "".join(_html_cell(report, row.counts.quantity(q)) for q in COLUMNS)
        rows.append(f"<tr><td>{html.escape(row.name)}</td><td>{html.escape(row.type)}</td>"
                    f"<td>{html.escape(outputs_value(report, row.output_shapes))}</td>{cells}</tr>")
    total = "".join(_html_cell(report, report.total.quantity(q)) for q in COLUMNS)
    rows.append(f"<tr><th>Total</th><td></td><td></td>{total}</tr>")
    domain = report.domain()
    caption = html.escape(f"{report.name}: {symbols_line(report)}" + (f"; valid for {'; '.join(domain)}" if domain else ""))
    return (f"<table><caption>{caption}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _text(text: str) -> str:
    escaped = text.replace("\\", r"\backslash ").replace("_", r"\_").replace("{", r"\{").replace("}", r"\}")
    escaped = escaped.replace("&", r"\&").replace("%", r"\%").replace("#", r"\#").replace("$", r"\$")
    return rf"\text{{{escaped}}}"


def _latex_cell(report: Report, expr: sympy.Expr) -> str:
    value = f"{report.value(expr):,}".replace(",", "{,}")
    if not sympy.sympify(expr).free_symbols:
        return value
    return rf"{sympy.latex(sympy.expand(expr))} = {value}"


def to_latex(report: Report) -> str:
    lines = [r"\begin{array}{lllrrr}", " & ".join(_text(h) for h in HEADERS) + r" \\ \hline"]
    for row in report.layers.values():
        cells = " & ".join(_latex_cell(report, row.counts.quantity(q)) for q in COLUMNS)
        shape = _text(outputs_value(report, row.output_shapes))
        lines.append(f"{_text(row.name)} & {_text(row.type)} & {shape} & {cells}" + r" \\")
    total = " & ".join(_latex_cell(report, report.total.quantity(q)) for q in COLUMNS)
    lines += [r"\hline", f"{_text('Total')} & & & {total}" + r" \\", r"\end{array}"]
    return "$$\n" + "\n".join(lines) + "\n$$"
