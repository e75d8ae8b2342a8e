"""The default terminal table, shaped like Keras' model.summary(): a formula line
per layer and, where it differs, a line of values at the chosen symbol values."""

from __future__ import annotations

from analyzer.formats.common import COLUMNS, cell, shape_formula, shape_value, symbols_line
from analyzer.report import FLOP_KINDS, Report

HEADERS = ("Layer (type)", "Output shape", "Params", "MACs", "FLOPs")


def render(report: Report) -> str:
    lines_per_row: list[list[tuple[str, ...]]] = []
    for row in report.layers.values():
        cells = [cell(report, row.counts.quantity(q)) for q in COLUMNS]
        shape_f = shape_formula(row.output_shape)
        shape_v = shape_value(report, row.output_shape)
        first = (f"{row.name} ({row.type})", shape_f, *(c.value_text if c.constant else c.formula for c in cells))
        rows = [first]
        if shape_f != shape_v or not all(c.constant for c in cells):
            rows.append(("", "= " + shape_v if shape_f != shape_v else "",
                         *("" if c.constant else "= " + c.value_text for c in cells)))
        lines_per_row.append(rows)
    widths = [max(len(h), *(len(line[i]) for rows in lines_per_row for line in rows)) for i, h in enumerate(HEADERS)]

    def fmt(parts: tuple[str, ...]) -> str:
        return "  ".join(p.ljust(w) for p, w in zip(parts, widths)).rstrip()

    rule_width = sum(widths) + 2 * (len(widths) - 1)
    out = [f'Model: "{report.name}"  ({report.file})', symbols_line(report), "=" * rule_width, fmt(HEADERS), "=" * rule_width]
    for rows in lines_per_row:
        out.extend(fmt(line) for line in rows)
    out.append("=" * rule_width)
    total = report.total
    summary = [
        ("Total params", total.params),
        ("Trainable params", total.trainable_params),
        ("Non-trainable params", total.non_trainable_params),
        ("MACs", total.macs),
        ("FLOPs", total.flops),
        *((f"  {kind}", total.flops_by_op[kind]) for kind in FLOP_KINDS),
    ]
    label_width = max(len(label) for label, _ in summary) + 1
    for label, expr in summary:
        c = cell(report, expr)
        text = c.value_text if c.constant else f"{c.formula} = {c.value_text}"
        out.append(f"{label + ':':<{label_width}} {text}")
    constraints = report.describe_constraints()
    out.append("Valid for: " + ("all values" if not constraints else constraints[0]))
    out.extend(" " * len("Valid for: ") + c for c in constraints[1:])
    return "\n".join(out) + "\n"
