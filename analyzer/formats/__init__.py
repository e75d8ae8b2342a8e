"""Output formats of a Report. Each module renders one format from the same
Report; `FORMATS` maps the --format name to its renderer."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from analyzer.formats import csv_format, json_format, latex, markdown, table
from analyzer.report import Report

if TYPE_CHECKING:
    from analyzer.conventions.base import Recount
    from analyzer.memory import MemorySummary

# Each renderer takes the Report and, optionally, a convention profile's Recount
# (`--convention NAME`), shown as one more count per layer and in total.
FORMATS: dict[str, Callable[..., str]] = {
    "table": table.render,
    "json": json_format.render,
    "markdown": markdown.render,
    "csv": csv_format.render,
    "latex": latex.render,
}


# The formats that show memory (--dtype): a MemorySummary, or None to compute it at float32.
MEMORY_FORMATS = ("table", "json")


def render_report(report: Report, fmt: str = "table", convention: Recount | None = None,
                  memory: MemorySummary | None = None) -> str:
    """The report in one of FORMATS; `convention` adds a profile's counts, `memory` the figures of
    analyzer.memory.memory_summary (table and json; by default at float32)."""
    kwargs = {"memory": memory} if memory is not None and fmt in MEMORY_FORMATS else {}
    return FORMATS[fmt](report, convention, **kwargs) if convention is not None else FORMATS[fmt](report, **kwargs)
