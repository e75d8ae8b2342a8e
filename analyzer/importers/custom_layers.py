"""A Keras model's own layer classes, as a --custom-layers file declares them (analyzer/spec/custom_layers.py).

A class declared `as:` an nnspec type becomes a layer of that type, its config fields renamed by `args`, `set`
adding constants; any other declared class stays a layer of its own class name with the config fields its
declaration lists, and the converted spec carries the declaration in its own `custom_layers:` section, so the
spec reads back (and is analyzed) without the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from analyzer.importers.document import ModelImportError, SpecDocument
from analyzer.spec.custom_layers import FLAG, CustomLayers


@dataclass
class DeclaredDocument(SpecDocument):
    """A spec document that also writes the declarations its layers use (kinds elementwise and formulas)."""

    custom_layers: dict[str, Any] = field(default_factory=dict)

    def to_yaml(self) -> str:
        text = super().to_yaml()
        if not self.custom_layers:
            return text
        lines = ["custom_layers:"] + [f"  {name}: {json.dumps(decl)}" for name, decl in self.custom_layers.items()]
        return text + "\n".join(lines) + "\n"


def unknown_class_hint(class_name: str) -> str:
    """How to declare a class nnspec does not have (the hint of the importer's refusal)."""
    return (f"if '{class_name}' is your own layer class, declare what it computes in a file and give it with "
            f"{FLAG} FILE.yaml, e.g. `{class_name}: {{as: Dense, args: {{units: width}}}}`, `{class_name}: "
            "{elementwise: true, flops_per_element: 1}` or `" + class_name + ": {fields: [units], params: "
            "\"units * features + units\", ...}` (docs/importers.md#custom-layers)")


def declared_layer(custom: CustomLayers, doc: SpecDocument, class_name: str, config: dict[str, Any], name: str,
                   source: str, as_fields: Any) -> tuple[str, dict[str, Any]]:
    """(spec type, fields) of a layer of a declared class; `as_fields(type, config, name)` is the importer's own
    conversion of a config to a spec type's fields."""
    def error(message: str) -> ModelImportError:
        return ModelImportError(f"{source}: layer '{name}' ({class_name}): {message}",
                                hint=f"the declaration of '{class_name}' is in {custom.file}")

    for config_field in custom.config_fields(class_name):
        if config_field not in config:
            present = ", ".join(k for k in config if k not in ("name", "trainable", "dtype")) or "none"
            raise error(f"its config has no field '{config_field}', which its declaration names (fields: {present})")
    target = custom.target(class_name)
    if target is not None:
        renamed = {spec_field: config[config_field] for spec_field, config_field in target.args.items()}
        renamed.update(target.set)
        if config.get("trainable") is False:
            renamed["trainable"] = False
        return target.as_, as_fields(target.as_, renamed, name)
    fields: dict[str, Any] = {}
    for config_field in custom.config_fields(class_name):
        value = config[config_field]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise error(f"config field '{config_field}' is {value!r}; a declared field is a whole number >= 0")
        fields[config_field] = value
    if config.get("trainable") is False:
        fields["trainable"] = False
    if isinstance(doc, DeclaredDocument):
        doc.custom_layers[class_name] = custom.raw[class_name]
    return class_name, fields
