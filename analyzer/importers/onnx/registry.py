"""The table of op handlers (like fvcore's jit_handles): one small function per ONNX op, registered
with `@handles("Conv")`. A handler is passed the import's ImportContext (context.py), reads its current node
(`imp.node`) and sets its outputs; the modules of this package register theirs when imported (see __init__.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from analyzer.importers.onnx.context import ImportContext

Handler = Callable[["ImportContext"], None]
HANDLERS: dict[str, Handler] = {}


def handles(*op_types: str) -> Callable[[Handler], Handler]:
    def register(function: Handler) -> Handler:
        for op_type in op_types:
            if op_type in HANDLERS:
                raise RuntimeError(f"internal: two handlers for the ONNX op {op_type}")
            HANDLERS[op_type] = function
        return function

    return register
