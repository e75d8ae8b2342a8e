"""The one error hierarchy of nnspec.

Every problem caused by the user's input is an `NNSpecError`: the CLI prints its
message (no traceback) and exits 2. Anything else that escapes is a bug in nnspec
(exit 1). Messages follow compiler style: `file:line:col: layer 'x' (Type): rule`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    file: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class NNSpecError(Exception):
    """An error in a spec or in how the tool was called (exit status 2)."""

    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        location: Location | None = None,
        layer: str | None = None,
        layer_type: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.layer = layer
        self.layer_type = layer_type
        self.hint = hint
        self.related: list[NNSpecError] = []  # further errors found in the same pass

    def __str__(self) -> str:
        return "\n".join([self.diagnostic(), *(e.diagnostic() for e in self.related)])

    def diagnostic(self) -> str:
        parts = []
        if self.location is not None:
            parts.append(f"{self.location}: ")
        if self.layer is not None:
            kind = f" ({self.layer_type})" if self.layer_type else ""
            parts.append(f"layer '{self.layer}'{kind}: ")
        parts.append(self.message)
        if self.hint:
            parts.append(f"\n  hint: {self.hint}")
        return "".join(parts)


class SpecSyntaxError(NNSpecError):
    """The file is not acceptable YAML (syntax, tabs, duplicate keys, size caps)."""


class SpecValidationError(NNSpecError):
    """The YAML is well formed but does not follow the spec schema."""


class ExpressionError(SpecValidationError):
    """A size expression could not be parsed or is not allowed (code, unknown names, huge numbers)."""


class GraphError(NNSpecError):
    """Layers do not form a valid graph (cycles, missing or unused layers)."""


class ShapeError(NNSpecError):
    """A layer cannot accept the shape of its input."""


class DomainError(NNSpecError):
    """Symbol values outside the domain in which the spec is valid."""


class UsageError(NNSpecError):
    """The command line asks for something impossible (e.g. an unknown symbol)."""


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean ...?' hint, or None when nothing is close."""
    pool = list(candidates)
    close = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in pool}
        if word.lower() in lowered:
            close = [lowered[word.lower()]]
    return f"did you mean '{close[0]}'?" if close else None
