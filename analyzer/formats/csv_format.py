"""--format csv: one row per layer plus a total row; each quantity as value and formula."""

from __future__ import annotations

import csv
import io

from analyzer.formats.common import shape_formula, shape_value
from analyzer.report import FLOP_KINDS, QUANTITIES, Counts, Report
from analyzer.symbolic import render as render_expr

COLUMNS = (*QUANTITIES, *FLOP_KINDS)


def _quantities(report: Report, counts: Counts) -> list[str | int]:
    values: list[str | int] = []
    for q in COLUMNS:
        expr = counts.quantity(q)
        values += [report.value(expr), render_expr(expr)]
    return values


def render(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["name", "type", "inputs", "output_shape", "output_shape_value"]
    for q in COLUMNS:
        header += [q, f"{q}_formula"]
    writer.writerow(header)
    for row in report.layers.values():
        writer.writerow([row.name, row.type, " ".join(row.inputs), shape_formula(row.output_shape),
                         shape_value(report, row.output_shape), *_quantities(report, row.counts)])
    writer.writerow(["TOTAL", "", "", "", "", *_quantities(report, report.total)])
    return buffer.getvalue()
