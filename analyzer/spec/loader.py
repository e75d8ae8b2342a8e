"""Read a spec file into a validated `Spec`: YAML -> symbols -> inputs -> layers.

Validation errors keep the file position of the offending node (SourceMap) and
name the layer, as `file:line:col: layer 'x' (Type): rule`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sympy
from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, ValidationError

from analyzer.errors import ExpressionError, Location, SpecSyntaxError, SpecValidationError, did_you_mean
from analyzer.layers import LAYERS, LayerSpec
from analyzer.spec.blocks import BlockExpander, SymbolicRepeat
from analyzer.spec.custom_layers import CustomLayers, parse_custom_layers
from analyzer.spec.expressions import FUNCTIONS
from analyzer.spec.fields import PendingSize, Size, SizeValueError, SpecContext
from analyzer.spec.yaml_loader import MAX_BYTES, SourceMap, load_yaml
from analyzer.spec.yaml_loader import Path as DataPath
from analyzer.symbolic import ONE, SizeSymbol, make_symbol

TOP_LEVEL_KEYS = ("name", "description", "symbols", "custom_layers", "blocks", "inputs", "layers", "outputs")
_SYMBOL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_LAYER_NAME = re.compile(r"^[A-Za-z0-9_.\-/]+$")


class SymbolDecl(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default: StrictInt
    min: StrictInt = 1
    description: StrictStr | None = None


class InputDecl(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    name: StrictStr | None = None
    shape: list[Size]
    description: StrictStr | None = None


@dataclass
class InputEntry:
    name: str
    shape: tuple[sympy.Expr, ...]
    location: Location | None
    pending: list[PendingSize]


@dataclass
class LayerEntry:
    """One validated layer with its resolved name and where it stands in the file."""

    spec: LayerSpec
    name: str
    index: int
    location: Location | None
    field_locations: dict[str, Location | None]
    pending: list[PendingSize] = field(default_factory=list)
    groups: tuple[tuple[str, str], ...] = ()  # enclosing (block instance, block name), outermost first
    multiplier: sympy.Expr = ONE  # copies it stands for, inside a symbolic repeat

    @property
    def type(self) -> str:
        return self.spec.type


@dataclass
class Spec:
    name: str
    file: str
    symbols: list[SizeSymbol]
    inputs: list[InputEntry]
    layers: list[LayerEntry]
    outputs: list[str]
    output_locations: list[Location | None]
    source: SourceMap
    description: str | None = None
    symbolic_repeats: list[SymbolicRepeat] = field(default_factory=list)

    @property
    def defaults(self) -> dict[sympy.Symbol, int]:
        return {s.symbol: s.default for s in self.symbols}


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec file; raise an NNSpecError subclass on any problem."""
    file = str(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)  # never more: a huge file (or /dev/zero) is refused, not read
        if len(raw) > MAX_BYTES:
            raise SpecSyntaxError(f"file larger than {MAX_BYTES} bytes", location=Location(file, 1, 1))
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise SpecValidationError(f"{file}: no such file") from None
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecSyntaxError("the file is not UTF-8 text", location=Location(file, line, column)) from None
    except OSError as exc:
        raise SpecValidationError(f"{file}: cannot read spec: {exc.strerror or exc}") from None
    return parse_spec(text, file)


def parse_spec(text: str, file: str = "<spec>") -> Spec:
    data, source = load_yaml(text, file)
    return _SpecBuilder(data, source).build()


class _SpecBuilder:
    def __init__(self, data: Any, source: SourceMap) -> None:
        self.data = data
        self.source = source

    def error(self, message: str, path: DataPath, *, key: bool = False, **kwargs: Any) -> SpecValidationError:
        location = self.source.key(path) if key else self.source.value(path)
        return SpecValidationError(message, location=location, **kwargs)

    def build(self) -> Spec:
        if not isinstance(self.data, dict):
            raise self.error(
                f"the top level must be a mapping with keys {', '.join(TOP_LEVEL_KEYS)}; found a {_kind(self.data)}", ()
            )
        for key in self.data:
            if key not in TOP_LEVEL_KEYS:
                raise self.error(f"unknown top-level key '{key}'", (key,), key=True, hint=did_you_mean(key, TOP_LEVEL_KEYS))
        for required in ("inputs", "layers"):
            if required not in self.data:
                raise self.error(f"missing required key '{required}'", ())
        name = self.data.get("name", Path(self.source.file).stem)
        if not isinstance(name, str):
            raise self.error("name must be a string", ("name",))
        symbols = self.symbols()
        self.custom = (parse_custom_layers(self.data["custom_layers"], self.source, ("custom_layers",))
                       if "custom_layers" in self.data else CustomLayers())  # user-declared classes
        context = SpecContext({s.name: s.symbol for s in symbols}, {s.symbol: s.default for s in symbols})
        inputs = self.inputs(context)
        layers = self.layers(context, inputs)
        outputs, output_locations = self.outputs(layers)
        description = self.data.get("description")
        return Spec(name, self.source.file, symbols, inputs, layers, outputs, output_locations, self.source,
                    description if isinstance(description, str) else None, self.blocks.symbolic_repeats)

    def symbols(self) -> list[SizeSymbol]:
        raw = self.data.get("symbols") or {}
        if not isinstance(raw, dict):
            raise self.error(f"'symbols' must be a mapping like {{L: 128}}; found a {_kind(raw)}", ("symbols",))
        result = []
        for name, value in raw.items():
            path = ("symbols", name)
            if not _SYMBOL_NAME.match(name) or name in FUNCTIONS:
                raise self.error(
                    f"invalid symbol name '{name}': use a letter then letters, digits or _ (and not {', '.join(FUNCTIONS)})",
                    path, key=True,
                )
            if isinstance(value, bool) or not isinstance(value, (int, dict)):
                hint = "write a whole number, e.g. L: 128" if isinstance(value, float) else None
                raise self.error(f"symbol '{name}' needs an integer default value, got {value!r}", path, hint=hint)
            try:
                decl = SymbolDecl.model_validate({"default": value} if isinstance(value, int) else value)
            except ValidationError as exc:
                error = self.pydantic_error(exc, path, SymbolDecl)
                error.message = f"symbol '{name}': {error.message}"
                raise error from None
            if decl.min < 1:
                raise self.error(f"symbol '{name}': min must be at least 1 (sizes are positive), got {decl.min}", path)
            if decl.default < decl.min:
                raise self.error(f"symbol '{name}': default {decl.default} is below its min {decl.min}", path)
            result.append(SizeSymbol(make_symbol(name), decl.default, decl.min, decl.description))
        return result

    def inputs(self, context: SpecContext) -> list[InputEntry]:
        raw = self.data["inputs"]
        if not isinstance(raw, list) or not raw:
            found = f"; found a {_kind(raw)}" if not isinstance(raw, list) else "; found an empty list"
            raise self.error(f"'inputs' must be a non-empty list of {{name, shape}}{found}", ("inputs",),
                             hint="e.g. inputs: [{name: x, shape: [L, 2]}]")
        result = []
        for i, item in enumerate(raw):
            path = ("inputs", i)
            if not isinstance(item, dict):
                raise self.error(f"each input must be a mapping with 'name' and 'shape'; found a {_kind(item)}", path,
                                 hint="e.g. - {name: x, shape: [L, 2]}")
            context.pending = []
            label = item.get("name") if isinstance(item.get("name"), str) else f"input_{i + 1}"
            try:
                decl = InputDecl.model_validate(item, context=context)
            except ValidationError as exc:
                raise self.pydantic_error(exc, path, InputDecl, layer=label, layer_type="InputLayer") from None
            name = decl.name or f"input_{i + 1}"
            if not _LAYER_NAME.match(name):
                raise self.error(f"invalid input name {name!r}", (*path, "name"))
            result.append(InputEntry(name, tuple(decl.shape), self.source.value(path), context.pending))
        return result

    def layers(self, context: SpecContext, inputs: list[InputEntry]) -> list[LayerEntry]:
        entries = []
        base_scope = dict(context.symbols)
        self.blocks = BlockExpander(self.data.get("blocks"), self.source, base_scope)
        expanded = self.blocks.expand(self.data["layers"], inputs[0].name if len(inputs) == 1 else None)
        for i, layer in enumerate(expanded):
            item, path = layer.data, layer.path
            if not isinstance(item, dict):
                raise self.error(f"each layer must be a mapping with a 'type'; found a {_kind(item)}", path)
            type_name = item.get("type")
            label = item.get("name") if isinstance(item.get("name"), str) else f"#{i + 1}"
            if type_name is None:
                raise self.error("missing required field 'type'", path, layer=label)
            if isinstance(type_name, str) and type_name in self.custom:  # docs/spec-format.md#custom_layers
                item, model = self.custom_layer(item, path, label)
                type_name = item["type"]
            elif not isinstance(type_name, str) or type_name not in LAYERS:
                hint = did_you_mean(str(type_name), LAYERS) or f"known types: {', '.join(sorted(LAYERS))}"
                hint += "; or declare it in a custom_layers: section (docs/spec-format.md)"
                raise self.error(f"unknown layer type {type_name!r}", (*path, "type"), layer=label, hint=hint)
            else:
                model = LAYERS[type_name].spec_model
            context.pending = []
            context.symbols = {**base_scope, **layer.scope}
            try:
                spec = model.model_validate(item, context=context)
            except ValidationError as exc:
                raise self.pydantic_error(exc, path, model, layer=label, layer_type=type_name) from None
            finally:
                context.symbols = base_scope
            name = spec.name or label
            fields = {f: self.source.value((*path, f)) for f in item}
            entries.append(LayerEntry(spec, name, i, self.source.value(path), fields, context.pending, layer.groups,
                                      layer.multiplier))
        return entries

    def custom_layer(self, item: dict[str, Any], path: DataPath, label: str) -> tuple[dict[str, Any], type[LayerSpec]]:
        """A layer of a declared class: of kind `as:`, its fields renamed to the spec type's; else its own model."""
        type_name = item["type"]
        if self.custom.target(type_name) is None:
            return item, self.custom.model(type_name)
        fields = set(self.custom.config_fields(type_name))
        for key in item:
            if key not in fields and key not in ("type", "name", "inputs", "trainable", "description"):
                raise self.error(f"unknown field '{key}' of the custom layer '{type_name}' (its fields: "
                                 f"{', '.join(sorted(fields)) or 'none'})", (*path, key), key=True, layer=label)
        renamed = self.custom.renamed(type_name, item)
        return renamed, LAYERS[renamed["type"]].spec_model

    def outputs(self, layers: list[LayerEntry]) -> tuple[list[str], list[Location | None]]:
        raw = self.data.get("outputs")
        if raw is None:
            return [layers[-1].name], [layers[-1].location]
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not items or not all(isinstance(o, str) for o in items):
            raise self.error("'outputs' must be a layer name or a list of layer names", ("outputs",))
        items = [self.blocks.resolve_output(o) for o in items]
        locations = [self.source.value(("outputs",) if isinstance(raw, str) else ("outputs", i)) for i in range(len(items))]
        return items, locations

    def pydantic_error(self, exc: ValidationError, base: DataPath, model: type[BaseModel], **layer: Any) -> SpecValidationError:
        # An unknown field first: a misspelt 'unit' also makes 'units' missing, and the typo is the news.
        ordered = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        errors = [self.one_pydantic_error(e, base, model, **layer) for e in ordered]
        first = errors[0]
        first.related = errors[1:]
        return first

    def one_pydantic_error(self, err: Any, base: DataPath, model: type[BaseModel], **layer: Any) -> SpecValidationError:
        loc = tuple(err["loc"])
        path = (*base, *loc)
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "value"
        kind = err["type"]
        hint = None
        got = err.get("input")
        if kind == "extra_forbidden":
            hint = did_you_mean(str(loc[-1]), model.model_fields)
            return self.error(f"unknown field '{loc[-1]}'", path, key=True, hint=hint, **layer)
        if kind == "missing":
            return self.error(f"missing required field '{field}'", base if len(loc) == 1 else path[:-1], **layer)
        original = (err.get("ctx") or {}).get("error")
        if isinstance(original, SizeValueError):
            message = f"{field}: {original.message}"
            if original.text is not None and original.column is not None:  # the expression itself is wrong
                message += f"\n    {original.text}\n    {' ' * original.column}^"
                return ExpressionError(message, location=self.source.value(path), hint=original.hint, **layer)
            return self.error(message, path, hint=original.hint, **layer)
        if kind == "literal_error":
            expected = err.get("ctx", {}).get("expected", "")
            options = re.findall(r"'([^']*)'", expected)
            hint = did_you_mean(str(got), options) if isinstance(got, str) else None
            return self.error(f"{field} must be one of {expected}; got {got!r}", path, hint=hint, **layer)
        if kind == "value_error":
            message = err["msg"].removeprefix("Value error, ")
            named = message.split(" ", 1)[0]
            if not loc and named in model.model_fields:  # a model validator naming the field it checks
                return self.error(message, (*base, named), **layer)
            return self.error(f"{field}: {message}", path, **layer)
        ctx = err.get("ctx") or {}
        expected = {
            "string_type": "a string", "list_type": "a list", "dict_type": "a mapping", "model_type": "a mapping",
            "bool_type": "true or false", "bool_parsing": "true or false",
            "int_type": "a whole number", "int_parsing": "a whole number", "int_from_float": "a whole number",
            "float_type": "a number", "float_parsing": "a number", "finite_number": "a finite number",
            "greater_than_equal": f"at least {ctx.get('ge')}", "greater_than": f"greater than {ctx.get('gt')}",
            "less_than": f"less than {ctx.get('lt')}", "less_than_equal": f"at most {ctx.get('le')}",
            "string_too_long": f"at most {ctx.get('max_length')} characters long",
        }.get(kind)
        if kind == "string_pattern_mismatch" and loc and loc[-1] == "name":
            return self.error(f"name {_short(got)} may use only letters, digits and _ . - /", path, **layer)
        if expected is None:
            message = err["msg"].removeprefix("Value error, ")
            message = "must be " + message.removeprefix("Input should be ") if message.startswith("Input should be ") else message
            return self.error(f"{field} {message} (got {_short(got)})", path, **layer)
        return self.error(f"{field} must be {expected} (got {_short(got)})", path, **layer)


def _kind(value: Any) -> str:
    return {list: "list", dict: "mapping", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


