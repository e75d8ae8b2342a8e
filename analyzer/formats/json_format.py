"""--format json: the contract in docs/spec-format.md (values are exact integers)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from analyzer.report import Report

if TYPE_CHECKING:
    from analyzer.conventions.base import Recount


def render(report: Report, convention: Recount | None = None) -> str:
    data = report.as_dict()
    if convention is not None:
        data["convention"] = convention.as_dict(report)
    return json.dumps(data, indent=2) + "\n"
