"""--format csv: one row per layer plus a total row; each quantity as value and formula."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from analyzer.formats.common import outputs_formula, outputs_value
from analyzer.report import FLOP_KINDS, QUANTITIES, Counts, Report
from analyzer.symbolic import render as render_expr

if TYPE_CHECKING:
    from analyzer.conventions.base import Recount

COLUMNS = (*QUANTITIES, *FLOP_KINDS)


def _quantities(report: Report, counts: Counts) -> list[str | int]:
    values: list[str | int] = []
    for q in COLUMNS:
        expr = counts.quantity(q)
        values += [report.value(expr), render_expr(expr)]
    return values


def render(report: Report, convention: Recount | None = None) -> str:
    """With a convention: three more columns, NAME (value), NAME_formula and NAME_skipped (the reason, if any)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["name", "type", "inputs", "output_shape", "output_shape_value"]
    for q in COLUMNS:
        header += [q, f"{q}_formula"]
    if convention is not None:
        name = convention.profile.name
        header += [name, f"{name}_formula", f"{name}_skipped"]
    writer.writerow(header)
    for row in report.layers.values():
        extra = []
        if convention is not None:
            count = convention.layers[row.name]
            extra = [report.value(count.expr), render_expr(count.expr), count.skipped or ""]
        writer.writerow([row.name, row.type, " ".join(row.inputs), outputs_formula(row.output_shapes),
                         outputs_value(report, row.output_shapes), *_quantities(report, row.counts), *extra])
    total_extra = [report.value(convention.total), render_expr(convention.total), ""] if convention is not None else []
    writer.writerow(["TOTAL", "", "", "", "", *_quantities(report, report.total), *total_extra])
    return buffer.getvalue()
