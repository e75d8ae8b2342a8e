"""`--set NAME=INTEGER`: the symbol values that `analyze`, `analyze compare`, `analyze explain` and
`analyze convert` take, read by the same rules (the commands import this, never analyzer.cli)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from analyzer.errors import UsageError

_ASSIGNMENT = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*=\s*(-?[0-9][0-9_]*)\s*$")


def parse_assignments(assignments: Sequence[str]) -> dict[str, int]:
    values: dict[str, int] = {}
    for text in assignments:
        match = _ASSIGNMENT.match(text)
        if not match:
            raise UsageError(f"--set {text!r}: expected NAME=INTEGER, e.g. --set L=1024")
        if len(match.group(2)) > 1000:  # int() refuses over 4300 digits; nnspec caps numbers at 2**10000 anyway
            raise UsageError(f"--set {match.group(1)}: a value of more than 1000 digits is too large")
        name, value = match.group(1), int(match.group(2))
        if name in values:
            raise UsageError(f"--set {name} given twice")
        values[name] = value
    return values
