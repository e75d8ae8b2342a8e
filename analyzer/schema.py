"""`analyze schema`: a JSON Schema (draft 2020-12) of the spec format, for editors.

Generated from the pydantic models the loader validates with: the top level, symbol
and input declarations, block definitions and uses, and a discriminated union (on
`type`) over every layer type in analyzer.layers.registry.LAYERS. The schema catches
what a schema can (unknown fields and layer types, wrong value types, missing required
fields, enumerations, simple bounds); the analyzer still checks shapes, expressions and
the graph. With the VS Code YAML extension, a spec's first line

    # yaml-language-server: $schema=nnspec.schema.json

turns on validation and completion (docs: README "Editor support").
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Annotated, Any, Union

import sympy
from pydantic import Field, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema

from analyzer.layers import LAYERS
from analyzer.spec.blocks import DEFINITION_KEYS, USE_KEYS
from analyzer.spec.loader import InputDecl, SymbolDecl

DIALECT = "https://json-schema.org/draft/2020-12/schema"
_NAME = "^[A-Za-z][A-Za-z0-9_]{0,63}$"  # symbols, block names and block args (analyzer/spec/loader.py, blocks.py)


def _plain(value: Any) -> Any:
    """Defaults as JSON: sympy integers as ints, other expressions as text, tuples as lists."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, sympy.Integer):
        return int(value)
    if isinstance(value, sympy.Basic):
        return str(value)
    return value


class _Generator(GenerateJsonSchema):
    def encode_default(self, dft: Any) -> Any:
        return super().encode_default(_plain(dft))


def _definitions(model: Any, name: str, defs: dict[str, Any]) -> dict[str, Any]:
    """`model`'s schema with its $defs moved into `defs`; returns a $ref to it."""
    schema = TypeAdapter(model).json_schema(ref_template="#/$defs/{model}", schema_generator=_Generator)
    defs.update(schema.pop("$defs", {}))
    if "$ref" not in schema:
        defs[name] = schema
        return {"$ref": f"#/$defs/{name}"}
    return schema


def build_schema() -> dict[str, Any]:
    """The JSON Schema of a spec file, as a dict."""
    defs: dict[str, Any] = {}
    models = tuple(kind.spec_model for kind in LAYERS.values())
    union = Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007 (a runtime tuple of classes)
    _definitions(union, "Layer", defs)
    mapping: dict[str, str] = defs["Layer"]["discriminator"]["mapping"]
    # pydantic writes the union as oneOf + OpenAPI's "discriminator", which JSON Schema validators
    # ignore: a bad layer then only reports "not valid under any of the given schemas". Written as
    # if type == T then T's schema, errors name the unknown type or field.
    defs["Layer"] = {
        "type": "object",
        "description": "A layer: 'type' is a Keras layer class name; the other fields are its arguments.",
        "required": ["type"],
        "properties": {"type": {"enum": sorted(mapping)}},
        "allOf": [{"if": {"type": "object", "properties": {"type": {"const": name}}, "required": ["type"]}, "then": {"$ref": ref}}
                  for name, ref in sorted(mapping.items())],
    }
    # a wrapper's `layer` (TimeDistributed, Bidirectional) refers to the base LayerSpec: any layer, without inputs
    defs["LayerSpec"] = {"allOf": [{"$ref": "#/$defs/Layer"}], "not": {"required": ["inputs"]}}
    layer = {"$ref": "#/$defs/Layer"}
    symbol = _definitions(SymbolDecl, "SymbolDecl", defs)
    spec_input = _definitions(InputDecl, "InputDecl", defs)
    names = {"type": "array", "items": {"type": "string"}}
    block_use = {
        "type": "object",
        "description": "A use of a block: its name, and values for its args (any other key is an arg).",
        "required": ["block"],
        "properties": {
            "block": {"type": "string", "pattern": _NAME},
            "name": {"type": "string", "pattern": "^[A-Za-z0-9_.\\-/]+$"},
            "inputs": {"anyOf": [{"type": "string"}, names]},
            "repeat": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]},
            "description": {"type": "string"},
        },
        "propertyNames": {"pattern": _NAME},
        "additionalProperties": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        "not": {"required": ["type"]},
    }
    assert set(block_use["properties"]) == set(USE_KEYS)  # type: ignore[arg-type]
    defs["BlockUse"] = block_use
    item = {"if": {"type": "object", "required": ["block"]}, "then": {"$ref": "#/$defs/BlockUse"}, "else": layer}
    layers = {"type": "array", "minItems": 1, "items": item}
    defs["BlockDefinition"] = {
        "type": "object",
        "required": ["layers"],
        "additionalProperties": False,
        "properties": {
            "args": {"type": "object", "propertyNames": {"pattern": _NAME},
                     "additionalProperties": {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]},
                     "description": "arg names to defaults (null: required)"},
            "inputs": {**names, "minItems": 1},
            "layers": layers,
            "outputs": names,
            "description": {"type": "string"},
        },
    }
    assert set(defs["BlockDefinition"]["properties"]) == set(DEFINITION_KEYS)
    return {
        "$schema": DIALECT,
        "title": "nnspec spec",
        "description": "A neural network written once, with its sizes as symbols (docs/spec-format.md).",
        "type": "object",
        "required": ["inputs", "layers"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "symbols": {"type": "object", "propertyNames": {"pattern": _NAME},
                        "additionalProperties": {"anyOf": [{"type": "integer"}, symbol]}},
            "blocks": {"type": "object", "propertyNames": {"pattern": _NAME},
                       "additionalProperties": {"$ref": "#/$defs/BlockDefinition"}},
            "inputs": {"type": "array", "minItems": 1, "items": spec_input},
            "layers": layers,
            "outputs": {"anyOf": [{"type": "string"}, names]},
            # user-declared classes (docs/spec-format.md#custom-layers); a layer of such a class is checked by nnspec
            # itself, not by this schema, whose layer types are nnspec's own
            "custom_layers": {"type": "object", "propertyNames": {"pattern": _NAME},
                              "additionalProperties": {"type": "object"}},
        },
        "$defs": dict(sorted(defs.items())),
    }


def main(argv: Sequence[str]) -> int:
    """`analyze schema`: print the schema (redirect it to nnspec.schema.json)."""
    if argv:
        print("usage: analyze schema > nnspec.schema.json", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(build_schema(), indent=2) + "\n")
    return 0
