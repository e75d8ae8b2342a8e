"""What every importer produces: a spec as plain data (`SpecDocument`), written out as
readable YAML in the style of specs/*.yaml (one flow-style line per layer) and read
back through nnspec's own loader, so an imported model is validated exactly like a
hand-written spec.

Sizes are Python ints or sympy expressions (after lifting); they are written with
`size_text`, which checks that nnspec's expression parser reads the text back as the
same expression.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import sympy

from analyzer.errors import NNSpecError
from analyzer.spec.expressions import parse_expression
from analyzer.symbolic import make_symbol


class ModelImportError(NNSpecError):
    """A model file that cannot be imported (unsupported layer or op, unreadable file, ...)."""

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$")
_EXPRESSION = re.compile(r"^[A-Za-z0-9_ +\-*/(),]+$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}
_SYMBOL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


@dataclass
class LayerDoc:
    type: str
    name: str
    fields: dict[str, Any] = field(default_factory=dict)  # Keras argument names -> values (sizes may be sympy)
    inputs: list[str] | None = None  # None: the previous layer
    comment: str | None = None  # written after the layer, e.g. what a lifted size was in the model


@dataclass
class InputDoc:
    name: str
    shape: list[Any]  # ints or sympy expressions
    model_axes: list[int] | None = None  # the model's axis (without the batch) of each spec axis, if they differ

    def spec_axis(self, model_axis: int) -> int:
        return self.model_axes.index(model_axis) if self.model_axes else model_axis


@dataclass
class SymbolDoc:
    name: str
    default: int
    description: str | None = None
    minimum: int = 1

    @property
    def symbol(self) -> sympy.Symbol:
        return make_symbol(self.name)


@dataclass
class SpecDocument:
    name: str
    inputs: list[InputDoc]
    layers: list[LayerDoc]
    outputs: list[str]
    symbols: list[SymbolDoc] = field(default_factory=list)
    source: str = ""  # the model file, for the header comment
    header: list[str] = field(default_factory=list)  # further comment lines for the top of the file

    def layer(self, name: str) -> LayerDoc:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def symbol_table(self) -> dict[str, sympy.Symbol]:
        return {s.name: s.symbol for s in self.symbols}

    def defaults(self) -> dict[sympy.Symbol, int]:
        return {s.symbol: s.default for s in self.symbols}

    def to_yaml(self) -> str:
        return write_yaml(self)


def size_text(value: Any, symbols: dict[str, sympy.Symbol] | None = None) -> str:
    """A size as spec text: an int as is, an expression in the syntax nnspec's parser reads."""
    if isinstance(value, bool):
        raise TypeError("a size cannot be a boolean")
    if isinstance(value, int):
        return str(value)
    expr = sympy.sympify(value)
    if expr.is_Integer:
        return str(int(expr))
    text = sympy.sstr(sympy.expand(expr) if not expr.has(sympy.floor, sympy.ceiling) else expr)
    text = text.replace("Max(", "max(").replace("Min(", "min(").replace("ceiling(", "ceil(")
    table = symbols or {s.name: s for s in expr.free_symbols}
    back = parse_expression(text, table)
    if sympy.expand(back - expr) != 0:
        raise ValueError(f"internal: the size {expr} is written {text!r}, which reads back as {back}")
    return text


def scalar_text(value: Any) -> str:
    """One YAML scalar that nnspec's loader reads back as `value` (strings quoted when needed)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:  # YAML 1.1 floats need a dot: 1e-05 -> 1.0e-05
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, sympy.Basic):
        if value.is_Integer:
            return str(int(value))
        return _maybe_quoted(size_text(value))
    if isinstance(value, str):
        return _maybe_quoted(value)
    raise TypeError(f"cannot write {type(value).__name__} as a YAML scalar")


def _maybe_quoted(text: str) -> str:
    plain = (_PLAIN.match(text) or (_EXPRESSION.match(text) and not text.strip().lstrip("-").isdigit()))
    if (plain and text.lower() not in _YAML_WORDS and text == text.strip() and not _looks_numeric(text)
            and "," not in text and text[0] not in "-?:[]{}#&*!|>'\"%@`"):
        return text
    return json.dumps(text)


def _looks_numeric(text: str) -> bool:
    try:
        float(text.replace("_", ""))
    except ValueError:
        return False
    return True


def flow(value: Any) -> str:
    """A value in YAML flow style: [a, b], {k: v}, or a scalar."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in value.items()) + "}"
    return scalar_text(value)


def write_yaml(doc: SpecDocument) -> str:
    lines = []
    if doc.source:
        lines.append(f"# Imported by nnspec from {doc.source}.")
    lines.extend(f"# {line}" if line else "#" for line in doc.header)
    lines.append(f"name: {scalar_text(doc.name)}")
    if doc.symbols:
        lines.append("symbols:")
        for s in doc.symbols:
            entry: dict[str, Any] = {"default": s.default}
            if s.minimum != 1:
                entry["min"] = s.minimum
            if s.description:
                entry["description"] = s.description
            lines.append(f"  {s.name}: {flow(entry) if len(entry) > 1 else s.default}")
    lines.append("inputs:")
    for x in doc.inputs:
        lines.append(f"  - {{name: {scalar_text(x.name)}, shape: {flow(list(x.shape))}}}")
    lines.append("layers:")
    previous = doc.inputs[0].name if len(doc.inputs) == 1 else None
    for layer in doc.layers:
        entry = {"type": layer.type, "name": layer.name, **layer.fields}
        if layer.inputs is not None and (previous is None or list(layer.inputs) != [previous]):
            entry["inputs"] = list(layer.inputs)  # only where it is not the previous layer (the default)
        previous = layer.name
        line = f"  - {flow(entry)}"
        if layer.comment:
            line += f"  # {layer.comment}"
        lines.append(line)
    lines.append(f"outputs: {flow(list(doc.outputs))}")
    return "\n".join(lines) + "\n"


def symbol_name(text: str) -> str:
    """A valid spec symbol name made from `text` (an ONNX dim_param, an input name)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", text).strip("_") or "n"
    if not name[0].isalpha():
        name = "n_" + name
    name = name[:64]
    if name in ("floor", "ceil", "min", "max"):
        name += "_"
    return name


def check_symbol_name(name: str, where: str) -> None:
    if not _SYMBOL_NAME.match(name) or name in ("floor", "ceil", "min", "max"):
        raise ModelImportError(f"{where}: invalid symbol name '{name}': use a letter then letters, digits or _")


_LAYER_NAME_BAD = re.compile(r"[^A-Za-z0-9_.\-/]")


def layer_name(text: str, fallback: str) -> str:
    name = _LAYER_NAME_BAD.sub("_", text.strip().lstrip("/"))
    return name or fallback
