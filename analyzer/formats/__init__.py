"""Output formats of a Report. Each module renders one format from the same
Report; `FORMATS` maps the --format name to its renderer."""

from __future__ import annotations

from collections.abc import Callable

from analyzer.formats import csv_format, json_format, latex, markdown, table
from analyzer.report import Report

FORMATS: dict[str, Callable[[Report], str]] = {
    "table": table.render,
    "json": json_format.render,
    "markdown": markdown.render,
    "csv": csv_format.render,
    "latex": latex.render,
}


def render_report(report: Report, fmt: str = "table") -> str:
    return FORMATS[fmt](report)
