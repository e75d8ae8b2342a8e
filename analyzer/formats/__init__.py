"""Output formats of a Report. Each module renders one format from the same
Report; `FORMATS` maps the --format name to its renderer."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from analyzer.report import Report

if TYPE_CHECKING:
    from analyzer.conventions.base import Recount
    from analyzer.memory import MemorySummary


def _renderer(module: str) -> Callable[..., str]:
    """The `render` of analyzer.formats.MODULE, imported at the first call: a run imports only
    the format it prints (cold start, issue 9)."""

    def render(*args: object, **kwargs: object) -> str:
        return importlib.import_module(f"analyzer.formats.{module}").render(*args, **kwargs)  # type: ignore[no-any-return]

    render.__name__ = render.__qualname__ = f"{module}.render"
    return render


# Each renderer takes the Report and, optionally, a convention profile's Recount
# (`--convention NAME`), shown as one more count per layer and in total.
FORMATS: dict[str, Callable[..., str]] = {
    "table": _renderer("table"),
    "json": _renderer("json_format"),
    "markdown": _renderer("markdown"),
    "csv": _renderer("csv_format"),
    "latex": _renderer("latex"),
}


# The formats that show memory (--dtype): a MemorySummary, or None to compute it at float32.
MEMORY_FORMATS = ("table", "json")


def render_report(report: Report, fmt: str = "table", convention: Recount | None = None,
                  memory: MemorySummary | None = None) -> str:
    """The report in one of FORMATS; `convention` adds a profile's counts, `memory` the figures of
    analyzer.memory.memory_summary (table and json; by default at float32)."""
    kwargs = {"memory": memory} if memory is not None and fmt in MEMORY_FORMATS else {}
    return FORMATS[fmt](report, convention, **kwargs) if convention is not None else FORMATS[fmt](report, **kwargs)
