"""--format markdown: a GitHub-flavoured table; each count as value and formula."""

from __future__ import annotations

from analyzer.formats.common import COLUMNS, cell, shape_formula, shape_value, symbols_line
from analyzer.report import Report


def _md(c_value: str, formula: str, constant: bool) -> str:
    return c_value if constant else f"{c_value} (`{formula}`)"


def render(report: Report) -> str:
    out = [f"### {report.name}", "", symbols_line(report), "",
           "| Layer | Type | Output shape | Params | MACs | FLOPs |", "|---|---|---|---:|---:|---:|"]
    for row in report.layers.values():
        cells = [cell(report, row.counts.quantity(q)) for q in COLUMNS]
        shape_f, shape_v = shape_formula(row.output_shape), shape_value(report, row.output_shape)
        shape = f"`{shape_f}`" + (f" = {shape_v}" if shape_f != shape_v else "")
        out.append(f"| {row.name} | {row.type} | {shape} | " + " | ".join(_md(c.value_text, c.formula, c.constant) for c in cells) + " |")
    total = report.total
    cells = [cell(report, total.quantity(q)) for q in COLUMNS]
    out.append("| **Total** | | | " + " | ".join(_md(c.value_text, c.formula, c.constant) for c in cells) + " |")
    trainable, frozen = cell(report, total.trainable_params), cell(report, total.non_trainable_params)
    out += ["", f"Trainable params: {_md(trainable.value_text, trainable.formula, trainable.constant)}; "
            f"non-trainable params: {_md(frozen.value_text, frozen.formula, frozen.constant)}"]
    return "\n".join(out) + "\n"
