"""User-declared layers: a class name nnspec does not have, mapped to what it computes.

A declaration comes from a spec's `custom_layers:` section or from a `--custom-layers FILE.yaml` given with a
model file (docs/importers.md#custom-layers, docs/spec-format.md). Each class name maps to one of

* `{as: Dense, args: {units: width}, set: {activation: relu}}`: an existing spec type; the type's field `units`
  takes the class's config field `width`, `set` gives constant values. The layer becomes that type, so it
  counts, exports and trains as the type does.
* `{elementwise: true, flops_per_element: 3}`: the output has the input's shape, no params, FLOPs = 3 per element.
* `{fields: [units], params: "units * features + units", macs: "...", flops: "...", output_shape: [...]}`: params,
  non-trainable params, MACs and FLOPs as expressions over the class's config fields (those listed in `fields`)
  and the input's shape: `in_1` ... `in_8` (the input's axes, counted as Keras counts them, the batch being axis
  0), `features` (the last axis), `positions` (the product of all axes but the last), `elements` (the product of
  all axes) and, except in `output_shape`, `out_elements` (the product of the output's axes). `output_shape` is
  `same` (the default) or a list of expressions.

Expressions go through nnspec's own parser (analyzer/spec/expressions.py): nothing is evaluated as Python. A
declared layer of the last two kinds is not a registered type: it has no torch or Keras builder and no training
rule, and the export and --training refuse it, naming it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import sympy
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, create_model

from analyzer.errors import ExpressionError, Location, SpecValidationError, UsageError, did_you_mean
from analyzer.layers import LAYERS, LayerContext, LayerKind, LayerResult, LayerSpec, Shape
from analyzer.spec.expressions import FUNCTIONS, ExpressionSyntaxError, parse_expression
from analyzer.spec.fields import NonNegativeSize
from analyzer.spec.yaml_loader import Path as DataPath
from analyzer.spec.yaml_loader import SourceMap
from analyzer.symbolic import ZERO, make_symbol, product

FLAG = "--custom-layers"
MAX_AXES = 8
SHAPE_NAMES = (*(f"in_{i}" for i in range(1, MAX_AXES + 1)), "features", "positions", "elements")
OUTPUT_NAMES = ("out_elements",)
_COMMON = ("type", "name", "inputs", "trainable", "description")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
Constant = StrictBool | StrictInt | float | StrictStr | list[Any] | None
Formula = StrictStr | StrictInt


# defer_build: pydantic builds each validator when a spec first declares a custom layer, not at every start
class AsType(BaseModel):
    """(a) an existing spec type; `args`: spec field <- config field; `set`: spec field <- constant."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)
    as_: StrictStr = Field(alias="as")
    args: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    set: dict[StrictStr, Constant] = Field(default_factory=dict)
    description: StrictStr | None = None


class Elementwise(BaseModel):
    """(b) the input's shape, no params, `flops_per_element` FLOPs per element."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    elementwise: Literal[True]
    flops_per_element: StrictInt = Field(ge=0)
    description: StrictStr | None = None


class Formulas(BaseModel):
    """(c) counts as expressions over `fields` (config fields) and the input's shape."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    fields: list[StrictStr] = Field(default_factory=list)
    params: Formula = 0
    non_trainable_params: Formula = 0
    macs: Formula = 0
    flops: Formula = 0
    output_shape: Literal["same"] | list[Formula] = "same"
    description: StrictStr | None = None


Declaration = AsType | Elementwise | Formulas


class CustomLayerSpec(LayerSpec):
    """The base of the spec model built for each declared class of kind (b) or (c)."""

    declaration: ClassVar[Any] = None
    formulas: ClassVar[dict[str, sympy.Expr]] = {}
    output_formulas: ClassVar[tuple[sympy.Expr, ...] | None] = None


@dataclass
class CustomLayers:
    """The declarations of one spec or one --custom-layers file: class name -> declaration."""

    declarations: dict[str, Declaration] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)  # as written, for a converted spec's own section
    locations: dict[str, Location | None] = field(default_factory=dict)
    models: dict[str, type[CustomLayerSpec]] = field(default_factory=dict)
    file: str = ""

    def __contains__(self, name: object) -> bool:
        return name in self.declarations

    def __bool__(self) -> bool:
        return bool(self.declarations)

    def target(self, name: str) -> AsType | None:
        """The spec type a class of kind (a) becomes, else None."""
        decl = self.declarations[name]
        return decl if isinstance(decl, AsType) else None

    def config_fields(self, name: str) -> list[str]:
        """The config fields a layer of this class must give."""
        decl = self.declarations[name]
        if isinstance(decl, AsType):
            return list(decl.args.values())
        return list(decl.fields) if isinstance(decl, Formulas) else []

    def renamed(self, name: str, item: Mapping[str, Any]) -> dict[str, Any]:
        """A kind (a) layer's fields under the spec type's names: {type: AS, <spec field>: <config value>, ...}."""
        decl = self.declarations[name]
        assert isinstance(decl, AsType)
        out: dict[str, Any] = {"type": decl.as_}
        out.update({k: item[k] for k in _COMMON if k in item and k != "type"})
        out.update({spec_field: item[config_field] for spec_field, config_field in decl.args.items()
                    if config_field in item})
        out.update(decl.set)
        return out

    def model(self, name: str) -> type[CustomLayerSpec]:
        """The spec model of a class of kind (b) or (c); registers its handler (see `_register`)."""
        if name not in self.models:
            self.models[name] = _spec_model(name, self.declarations[name])
        _register(name, self.models[name])
        return self.models[name]


def parse_custom_layers(data: Any, source: SourceMap, base: DataPath = ()) -> CustomLayers:
    """The declarations at `base` of a loaded YAML document (a mapping class name -> declaration)."""
    def error(message: str, path: DataPath, key: bool = False, hint: str | None = None) -> SpecValidationError:
        return SpecValidationError(message, location=source.key(path) if key else source.value(path), hint=hint)

    where = "custom_layers" if base else "a --custom-layers file"
    if not isinstance(data, dict):
        raise error(f"{where} is a mapping of class names to declarations, e.g. MyScale: {{elementwise: true, "
                    f"flops_per_element: 1}}; found {type(data).__name__}", base)
    result = CustomLayers(file=source.file)
    for name, raw in data.items():
        path = (*base, name)
        if not isinstance(name, str) or not _IDENTIFIER.match(name):
            raise error(f"{name!r} is not a class name", path, key=True)
        if name in LAYERS or name in _COMMON:
            raise error(f"'{name}' is a layer type nnspec has: declare only classes it does not have", path, key=True)
        if not isinstance(raw, dict):
            raise error(f"the declaration of '{name}' is a mapping (as:, elementwise: or params: ...)", path)
        kind: type[BaseModel] = AsType if "as" in raw else Elementwise if "elementwise" in raw else Formulas
        try:
            decl = kind.model_validate(raw)
        except ValidationError as exc:
            raise _pydantic_error(exc, path, source, name) from None
        if isinstance(decl, AsType):
            _check_as(decl, name, path, error)
        if isinstance(decl, Formulas):
            _check_formulas(decl, name, path, source)
        result.declarations[name] = decl  # type: ignore[assignment]
        result.raw[name] = raw
        result.locations[name] = source.value(path)
    return result


def _pydantic_error(exc: ValidationError, path: DataPath, source: SourceMap, name: str) -> SpecValidationError:
    err = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]  # a misspelt field first
    loc = tuple(err["loc"])
    where = (*path, *loc)
    field_name = ".".join(str(p) for p in loc) or "declaration"
    if err["type"] == "missing":
        return SpecValidationError(f"custom layer '{name}': missing required field '{field_name}'",
                                   location=source.value(path))
    if err["type"] == "extra_forbidden":
        return SpecValidationError(
            f"custom layer '{name}': unknown field '{loc[-1]}'", location=source.key(where),
            hint="a declaration is {as: TYPE, args: {...}, set: {...}}, {elementwise: true, flops_per_element: N} "
                 "or {fields: [...], params: ..., non_trainable_params: ..., macs: ..., flops: ..., output_shape: ...}")
    message = err["msg"].removeprefix("Input should be ")
    return SpecValidationError(f"custom layer '{name}': {field_name} must be {message} (got {err.get('input')!r})",
                               location=source.value(where))


def _check_as(decl: AsType, name: str, path: DataPath, error: Any) -> None:
    if decl.as_ not in LAYERS:
        raise error(f"custom layer '{name}': unknown spec type {decl.as_!r} in as:", (*path, "as"),
                    hint=did_you_mean(decl.as_, LAYERS) or "docs/spec-format.md lists the types")
    model_fields = LAYERS[decl.as_].spec_model.model_fields
    for group in ("args", "set"):
        for spec_field in getattr(decl, group):
            if spec_field not in model_fields or spec_field in _COMMON:
                raise error(f"custom layer '{name}': {decl.as_} has no field '{spec_field}'",
                            (*path, group, spec_field), key=True, hint=did_you_mean(spec_field, model_fields))
    for spec_field, config_field in decl.args.items():
        if not _IDENTIFIER.match(config_field) or config_field in _COMMON:
            raise error(f"custom layer '{name}': args.{spec_field} names the config field {config_field!r}, which "
                        "is not a field name (a constant goes under set:)", (*path, "args", spec_field))


def _check_formulas(decl: Formulas, name: str, path: DataPath, source: SourceMap) -> None:
    for i, config_field in enumerate(decl.fields):
        reserved = (*_COMMON, *SHAPE_NAMES, *OUTPUT_NAMES, *FUNCTIONS)
        if not _IDENTIFIER.match(config_field) or config_field in reserved or hasattr(CustomLayerSpec, config_field):
            raise SpecValidationError(
                f"custom layer '{name}': {config_field!r} cannot be a field name (it is not a name, or one of "
                f"{', '.join((*_COMMON, 'in_1..in_8', 'features', 'positions', 'elements', 'out_elements'))}, "
                "or a name pydantic keeps, such as copy or json)", location=source.value((*path, "fields", i)))
    _parsed(decl, name, path, source)  # an unknown name is an error at its line


def _parsed(decl: Formulas, name: str, path: DataPath, source: SourceMap | None) -> dict[str, Any]:
    """Each expression of `decl` parsed over its names; an unknown name is an ExpressionError at its line."""
    names = {n: make_symbol(n) for n in (*decl.fields, *SHAPE_NAMES)}
    counted = {**names, **{n: make_symbol(n) for n in OUTPUT_NAMES}}

    def parse(text: Formula, where: DataPath, scope: dict[str, sympy.Symbol]) -> sympy.Expr:
        if isinstance(text, int):
            return sympy.Integer(text)
        try:
            return parse_expression(text, scope)
        except ExpressionSyntaxError as exc:
            location = source.value(where) if source is not None else None
            known = (f"the names are the fields ({', '.join(decl.fields) or 'none declared: list them in fields:'})"
                     ", in_1..in_8, features, positions, elements" + (", out_elements" if scope is counted else
                                                                     " (not out_elements: that is the output's)"))
            hint = f"{exc.hint} {known}" if exc.hint and exc.hint.startswith("did you mean") else exc.hint or known
            label = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where[len(path):]).lstrip(".")
            raise ExpressionError(f"custom layer '{name}': {label}: {exc.message}\n    {text}\n    "
                                  f"{' ' * exc.column}^", location=location, hint=hint) from None

    out: dict[str, Any] = {key: parse(getattr(decl, key), (*path, key), counted)
                           for key in ("params", "non_trainable_params", "macs", "flops")}
    if decl.output_shape != "same":
        out["output_shape"] = tuple(parse(d, (*path, "output_shape", i), names) for i, d in enumerate(decl.output_shape))
    return out


def _spec_model(name: str, decl: Declaration) -> type[CustomLayerSpec]:
    fields = {f: (NonNegativeSize, ...) for f in (decl.fields if isinstance(decl, Formulas) else [])}
    model = create_model(name, __base__=CustomLayerSpec, type=(Literal[name], ...), **fields)  # type: ignore[call-overload]
    model.declaration = decl
    if isinstance(decl, Formulas):
        parsed = _parsed(decl, name, (), None)
        model.output_formulas = parsed.pop("output_shape", None)
        model.formulas = parsed
    return model


def _register(name: str, model: type[CustomLayerSpec]) -> None:
    """Make the graph find the handler of a declared class (it calls LAYERS[type].handler). The handler reads the
    declaration off the layer's own spec model, so the entry serves every declaration of the name."""
    LAYERS.declare(LayerKind(name, model, custom_layer))


def refuse_export(spec: Any, framework: str) -> None:
    """--export of a spec with a declared layer of kind (b) or (c): there is no module to build for it."""
    for entry in spec.layers:
        if isinstance(entry.spec, CustomLayerSpec):
            raise UsageError(f"cannot export to {framework}: '{entry.type}' is a user-declared layer "
                             f"(custom_layers / {FLAG}), and nnspec has no {framework} module for it",
                             location=entry.location, layer=entry.name, layer_type=entry.type,
                             hint="declare it `as:` an nnspec type to export it")


def refuse_training(spec: Any) -> None:
    """--training of a spec with a declared layer of kind (b) or (c): nnspec knows its forward cost only."""
    for entry in spec.layers:
        if isinstance(entry.spec, CustomLayerSpec):
            raise UsageError(f"'{entry.type}' is a user-declared layer (custom_layers / {FLAG}): nnspec has no "
                             "backward rule for it, so the training cost is not counted", location=entry.location,
                             layer=entry.name, layer_type=entry.type,
                             hint="declare it `as:` an nnspec type that has a training rule (docs/conventions.md#training)")


def custom_layer(layer: CustomLayerSpec, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    """A declared layer of kind (b) or (c): its counts from its declaration."""
    decl = type(layer).declaration
    if len(inputs) != 1:
        ctx.fail(f"a declared custom layer takes one input, got {len(inputs)}")
    (shape,) = inputs
    elements = product(shape)
    if isinstance(decl, Elementwise):
        return LayerResult(shape, other=decl.flops_per_element * elements)
    values: dict[sympy.Symbol, sympy.Expr] = {make_symbol(f): getattr(layer, f) for f in decl.fields}
    for axis in range(1, MAX_AXES + 1):
        if axis <= len(shape):
            values[make_symbol(f"in_{axis}")] = shape[axis - 1]
    values[make_symbol("features")] = shape[-1] if shape else sympy.Integer(1)
    values[make_symbol("positions")] = product(shape[:-1])
    values[make_symbol("elements")] = elements

    def value(expr: sympy.Expr, what: str) -> sympy.Expr:
        missing = sorted(s.name for s in expr.free_symbols if s.name.startswith("in_") and s not in values)
        if missing:
            ctx.fail(f"{what} uses {', '.join(missing)}, but the input has {len(shape)} axes")
        return sympy.sympify(expr).xreplace(values)

    formulas = type(layer).output_formulas
    out_shape = shape if formulas is None else tuple(value(d, "output_shape") for d in formulas)
    values[make_symbol("out_elements")] = product(out_shape)
    counts = {key: value(expr, key) for key, expr in type(layer).formulas.items()}
    for key, amount in counts.items():
        ctx.require("int", amount, ZERO, f"{key} of a declared custom layer must be a whole number",
                    violation=f"{key} = {amount} is not a whole number (use // for floor division)")
        ctx.require_at_least(amount, 0, f"{key} of a declared custom layer must be at least 0")
    trainable, frozen = counts["params"], counts["non_trainable_params"]
    if not layer.trainable:
        trainable, frozen = ZERO, trainable + frozen
    return LayerResult(out_shape, trainable_params=trainable, non_trainable_params=frozen, macs=counts["macs"],
                       other=counts["flops"])


def load_custom_layers(path: str) -> CustomLayers:
    """A --custom-layers file: a mapping class name -> declaration, or that mapping under `custom_layers:` (a
    spec's section, copied as is)."""
    from analyzer.spec.yaml_loader import MAX_BYTES, load_yaml

    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise SpecValidationError(f"{FLAG} {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecValidationError(f"{FLAG} {path}: cannot read: {exc}") from None
    if len(raw) > MAX_BYTES:
        raise SpecValidationError(f"{FLAG} {path}: larger than {MAX_BYTES} bytes", location=Location(path, 1, 1))
    if not text.strip():
        raise SpecValidationError(f"{FLAG} {path}: the file is empty; it maps class names to declarations",
                                  location=Location(path, 1, 1))
    data, source = load_yaml(text, path)
    if isinstance(data, dict) and list(data) == ["custom_layers"]:
        return parse_custom_layers(data["custom_layers"], source, ("custom_layers",))
    return parse_custom_layers(data, source)
