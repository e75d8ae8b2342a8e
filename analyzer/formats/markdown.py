"""--format markdown: a GitHub-flavoured table; each count as value and formula."""

from __future__ import annotations

from typing import TYPE_CHECKING

from analyzer.formats.common import COLUMNS, ConventionCells, cell, outputs_formula, outputs_value, symbols_line
from analyzer.report import Report

if TYPE_CHECKING:
    from analyzer.conventions.base import Recount


def _md(c_value: str, formula: str, constant: bool) -> str:
    return c_value if constant else f"{c_value} (`{formula}`)"


def render(report: Report, convention: Recount | None = None) -> str:
    profile = ConventionCells(report, convention) if convention else None
    extra = (f" {profile.name} |", "---:|") if profile else ("", "")
    out = [f"### {report.name}", "", symbols_line(report), "",
           "| Layer | Type | Output shape | Params | MACs | FLOPs |" + extra[0], "|---|---|---|---:|---:|---:|" + extra[1]]
    for row in report.layers.values():
        cells = [cell(report, row.counts.quantity(q)) for q in COLUMNS]
        shape_f, shape_v = outputs_formula(row.output_shapes), outputs_value(report, row.output_shapes)
        shape = f"`{shape_f}`" + (f" = {shape_v}" if shape_f != shape_v else "")
        counts = " | ".join(_md(c.value_text, c.formula, c.constant) for c in cells)
        line = f"| {row.name} | {row.type} | {shape} | {counts} |"
        if profile:
            c, note = profile.cell(row.name), profile.note(row.name)
            shown = f"skipped {note}" if c is None else _md(c.value_text, c.formula, c.constant) + (f" {note}" if note else "")
            line += f" {shown} |"
        out.append(line)
    total = report.total
    cells = [cell(report, total.quantity(q)) for q in COLUMNS]
    line = "| **Total** | | | " + " | ".join(_md(c.value_text, c.formula, c.constant) for c in cells) + " |"
    if profile:
        c = profile.total()
        line += f" {_md(c.value_text, c.formula, c.constant)} |"
    out.append(line)
    trainable, frozen = cell(report, total.trainable_params), cell(report, total.non_trainable_params)
    out += ["", f"Trainable params: {_md(trainable.value_text, trainable.formula, trainable.constant)}; "
            f"non-trainable params: {_md(frozen.value_text, frozen.formula, frozen.constant)}"]
    if profile:
        out += ["", f"Convention {profile.title()}", *(f"- {note}" for note in profile.footnotes())]
    return "\n".join(out) + "\n"
