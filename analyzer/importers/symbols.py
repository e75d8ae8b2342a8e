"""Which model dimensions become spec symbols.

`--symbol L=input1:1` names axis 1 (counted without the batch axis, from 0) of the model
input `input1` as the symbol L; one symbol may name several dimensions that are the same
size: `--symbol L=input1:1,input2:0,input3:0`. A dimension the model leaves open (Keras
`None`, ONNX `dim_param`) is a symbol anyway: named by a `--symbol` that lists it, else
after the ONNX dim_param or `INPUT_AXIS`; its default value is `--set NAME=VALUE`, or
DEFAULT_DYNAMIC_SIZE.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from analyzer.errors import UsageError
from analyzer.importers.document import ModelImportError, SpecDocument, SymbolDoc, symbol_name

DEFAULT_DYNAMIC_SIZE = 128
"""Default of a symbol for a dimension the model leaves open, when no --set gives one."""

_BINDING = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*=\s*(.+)$")
_DIM = re.compile(r"^\s*(.+?)\s*:\s*(-?\d+)\s*$")


@dataclass(frozen=True)
class SymbolBinding:
    """A symbol and the model input dimensions it stands for: (input name, axis without the batch)."""

    name: str
    dims: tuple[tuple[str, int], ...]

    def __str__(self) -> str:
        return f"{self.name}=" + ",".join(f"{i}:{a}" for i, a in self.dims)


def parse_symbol_option(text: str) -> SymbolBinding:
    """`L=input1:1` or `L=input1:1,input2:0` -> SymbolBinding."""
    usage = "expected NAME=INPUT:AXIS[,INPUT:AXIS...], e.g. --symbol L=input1:1 (axis counted without the batch axis)"
    match = _BINDING.match(text)
    if not match:
        raise UsageError(f"--symbol {text!r}: {usage}")
    name, rest = match.group(1), match.group(2)
    if name in ("floor", "ceil", "min", "max") or len(name) > 64:
        raise UsageError(f"--symbol {text!r}: '{name}' cannot be a symbol name")
    dims = []
    for part in rest.split(","):
        dim = _DIM.match(part)
        if not dim:
            raise UsageError(f"--symbol {text!r}: {part.strip()!r} is not INPUT:AXIS; {usage}")
        dims.append((dim.group(1), int(dim.group(2))))
    return SymbolBinding(name, tuple(dims))


@dataclass
class ImportOptions:
    bindings: list[SymbolBinding] = field(default_factory=list)
    values: dict[str, int] = field(default_factory=dict)  # --set: defaults for open dimensions

    def __post_init__(self) -> None:
        seen: dict[tuple[str, int], str] = {}
        names = set()
        for b in self.bindings:
            if b.name in names:
                raise UsageError(f"--symbol {b.name} given twice: list all its dimensions in one --symbol, "
                                 f"e.g. --symbol {b.name}=input1:1,input2:0")
            names.add(b.name)
            for dim in b.dims:
                if dim in seen:
                    raise UsageError(f"--symbol: {dim[0]}:{dim[1]} is named twice ({seen[dim]} and {b.name})")
                seen[dim] = b.name

    def binding_for(self, input_name: str, axis: int, rank: int) -> str | None:
        for b in self.bindings:
            for name, a in b.dims:
                if name == input_name and (a == axis or a + rank == axis):
                    return b.name
        return None


class OpenDims:
    """Hands out symbols for a model's open dimensions, declaring each in the document once."""

    def __init__(self, doc: SpecDocument, options: ImportOptions, notes: list[str]) -> None:
        self.doc = doc
        self.options = options
        self.notes = notes

    def symbol(self, input_name: str, axis: int, rank: int, suggested: str | None = None) -> str:
        name = self.options.binding_for(input_name, axis, rank) or symbol_name(suggested or f"{input_name}_{axis}")
        for s in self.doc.symbols:
            if s.name == name:
                return name
        default = self.options.values.get(name)
        if default is None:
            default = DEFAULT_DYNAMIC_SIZE
            self.notes.append(f"input '{input_name}' axis {axis} is open in the model: symbol {name}, default "
                              f"{default} (choose it with --set {name}=VALUE, rename it with --symbol NAME={input_name}:{axis})")
        if default < 1:
            raise ModelImportError(f"--set {name}={default}: sizes are positive integers")
        self.doc.symbols.append(SymbolDoc(name, default, f"open dimension {axis} of input '{input_name}'"))
        return name
