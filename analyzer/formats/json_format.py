"""--format json: the contract in docs/spec-format.md (values are exact integers)."""

from __future__ import annotations

import json

from analyzer.report import Report


def render(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2) + "\n"
