"""Reusable blocks: named, parameterized sub-graphs expanded into plain layers.

    blocks:
      conv_bn:                       # a block definition
        args: {filters: null, stride: 1}   # null: required; otherwise a default
        inputs: [x]                  # formal inputs (default [x])
        layers:
          - {type: Conv2D, name: conv, filters: filters, kernel_size: 3, strides: stride, padding: same}
          - {type: BatchNormalization, name: bn}
        outputs: [bn]                # default: the last layer
    layers:
      - {block: conv_bn, name: stem, filters: 32, stride: 2}
      - {block: conv_bn, name: stage1, filters: 64, repeat: 3}   # stage1.block1 .. stage1.block3

Expansion happens on the raw YAML values, before validation: each block layer
becomes an ordinary layer named `<instance>.<name>` whose expressions may use the
block's args. Args are size expressions, evaluated in the caller's scope. A later
layer may name an instance (`stem`) to mean that instance's output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sympy

from analyzer.errors import SpecValidationError, did_you_mean
from analyzer.spec.expressions import FUNCTIONS, ExpressionSyntaxError, parse_expression
from analyzer.spec.yaml_loader import Path as DataPath
from analyzer.spec.yaml_loader import SourceMap
from analyzer.symbolic import ONE

USE_KEYS = ("block", "name", "inputs", "repeat", "description")
DEFINITION_KEYS = ("args", "inputs", "layers", "outputs", "description")
MAX_NESTING = 16
MAX_EXPANDED_LAYERS = 200_000
_ARG_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


@dataclass
class ExpandedLayer:
    data: dict[str, Any]  # the layer mapping; name and inputs resolved inside blocks
    path: DataPath  # where it is written in the file
    scope: dict[str, sympy.Expr]  # block args visible to its expressions
    groups: tuple[tuple[str, str], ...]  # enclosing (instance, block name) pairs, outermost first
    multiplier: sympy.Expr = ONE  # copies it stands for (a symbolic repeat)


@dataclass(frozen=True)
class SymbolicRepeat:
    """A block repeated a symbolic number of times: expanded once, counted `times` times.

    That is exact only if the block keeps its input shape, which the graph checks.
    """

    instance: str
    block: str
    times: sympy.Expr
    input: str
    output: str
    path: DataPath


def _with_port(reference: str, resolve: Any) -> str:
    """`resolve` applied to the layer part of `LAYER` or `LAYER:OUTPUT` (an output of a layer with several)."""
    layer, colon, port = reference.partition(":")
    return f"{resolve(layer)}{colon}{port}"  # a name already standing for one output (`outputs: [enc:1]`) gets two: refused


def default_layer_name(type_name: str) -> str:
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", type_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


class BlockExpander:
    def __init__(self, definitions: Any, source: SourceMap, symbols: dict[str, sympy.Expr]) -> None:
        self.source = source
        self.symbols = symbols
        self.definitions: dict[str, Any] = {}
        self.aliases: dict[str, str] = {}  # instance name -> the layer that is its output
        self.count = 0
        self.instance_counters: dict[str, int] = {}
        self.multiplier: sympy.Expr = ONE
        self.symbolic_repeats: list[SymbolicRepeat] = []
        if definitions is None:
            return
        if not isinstance(definitions, dict):
            raise self.error("'blocks' must be a mapping of block names to definitions", ("blocks",))
        for name, definition in definitions.items():
            self.check_definition(name, definition)
            self.definitions[name] = definition

    def error(self, message: str, path: DataPath, *, key: bool = False, **kwargs: Any) -> SpecValidationError:
        location = self.source.key(path) if key else self.source.value(path)
        return SpecValidationError(message, location=location, **kwargs)

    def check_definition(self, name: str, definition: Any) -> None:
        path = ("blocks", name)
        if not _ARG_NAME.match(name):
            raise self.error(f"invalid block name '{name}'", path, key=True)
        if not isinstance(definition, dict):
            raise self.error(f"block '{name}' must be a mapping with 'layers' (and 'args', 'inputs', 'outputs')", path)
        for key in definition:
            if key not in DEFINITION_KEYS:
                raise self.error(f"unknown field '{key}' in block '{name}'", (*path, key), key=True,
                                 hint=did_you_mean(key, DEFINITION_KEYS))
        layers = definition.get("layers")
        if not isinstance(layers, list) or not layers:
            raise self.error(f"block '{name}' needs a non-empty 'layers' list", path)
        args = definition.get("args") or {}
        if not isinstance(args, dict):
            raise self.error(f"'args' of block '{name}' must be a mapping of names to defaults (null: required)", (*path, "args"))
        for arg in args:
            if not _ARG_NAME.match(arg) or arg in FUNCTIONS or arg in self.symbols:
                raise self.error(f"invalid arg name '{arg}' in block '{name}' (a symbol or function of the same name exists?)",
                                 (*path, "args", arg), key=True)
        inputs = definition.get("inputs", ["x"])
        if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
            raise self.error(f"'inputs' of block '{name}' must be a list of names", (*path, "inputs"))

    def expand(self, items: Any, first_input: str | None) -> list[ExpandedLayer]:
        """Flatten `layers`, naming unnamed top-level layers Keras 2 style (conv1d_1, conv1d_2, ...)."""
        if not isinstance(items, list) or not items:
            raise self.error("'layers' must be a non-empty list of layers", ("layers",))
        out: list[ExpandedLayer] = []
        previous: str | None = first_input
        after_block = False
        counters: dict[str, int] = {}
        for i, item in enumerate(items):
            path: DataPath = ("layers", i)
            if isinstance(item, dict) and "block" in item:
                previous = self.instantiate(item, path, dict(self.symbols), (), None, previous, out, depth=0)
                after_block = True
                continue
            if isinstance(item, dict) and item.get("name") is None and isinstance(item.get("type"), str):
                key = default_layer_name(item["type"])
                counters[key] = counters.get(key, 0) + 1
                item = {**item, "name": f"{key}_{counters[key]}"}
            if after_block and isinstance(item, dict) and "inputs" not in item and previous is not None:
                item = {**item, "inputs": [previous]}
            out.append(ExpandedLayer(item, path, {}, ()))
            after_block = False
            previous = item.get("name") if isinstance(item, dict) and isinstance(item.get("name"), str) else None
        for layer in out:  # names of instances stand for their outputs
            inputs = layer.data.get("inputs") if isinstance(layer.data, dict) else None
            if isinstance(inputs, str):
                inputs = [inputs]
            if isinstance(inputs, list):
                layer.data = {**layer.data, "inputs": [self.resolve_output(s) if isinstance(s, str) else s for s in inputs]}
        return out

    def resolve_output(self, name: str) -> str:
        """An instance name stands for its output layer; `INSTANCE:state_h` for that layer's output state_h."""
        return _with_port(name, lambda layer: self.aliases.get(layer, layer))

    def instantiate(self, use: dict[str, Any], path: DataPath, scope: dict[str, sympy.Expr], groups: tuple[tuple[str, str], ...],
                    prefix: str | None, previous: str | None, out: list[ExpandedLayer], depth: int) -> str:
        if depth > MAX_NESTING:
            raise self.error(f"blocks nested deeper than {MAX_NESTING} levels (a block using itself?)", path)
        block_name = use["block"]
        if not isinstance(block_name, str) or block_name not in self.definitions:
            hint = did_you_mean(str(block_name), self.definitions) or (
                f"defined blocks: {', '.join(self.definitions)}" if self.definitions else "define it under 'blocks:'")
            raise self.error(f"unknown block {block_name!r}", (*path, "block"), hint=hint)
        definition = self.definitions[block_name]
        formal_args = definition.get("args") or {}
        for key in use:
            if key not in USE_KEYS and key not in formal_args:
                hint = did_you_mean(key, [*USE_KEYS, *formal_args]) or (
                    f"block '{block_name}' takes: {', '.join(formal_args) or 'no args'}")
                raise self.error(f"unknown arg '{key}' for block '{block_name}'", (*path, key), key=True, hint=hint)
        name = use.get("name")
        if name is None:
            self.instance_counters[block_name] = self.instance_counters.get(block_name, 0) + 1
            name = f"{block_name}_{self.instance_counters[block_name]}"
        if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_\-/]+$", name):
            raise self.error(f"invalid block instance name {name!r} (letters, digits, _ - /; no dots)", (*path, "name"))
        full = f"{prefix}.{name}" if prefix else name
        args = self.bind_args(block_name, formal_args, use, path, scope)
        actual_inputs = self.actual_inputs(use, definition, path, previous, prefix)
        repeat = self.repeat_count(use.get("repeat", 1), (*path, "repeat"), {**scope, **args})
        if repeat != 1 and len(actual_inputs) > 1:
            raise self.error("repeat needs a block with one input (each copy feeds the next)", (*path, "repeat"))
        if not isinstance(repeat, int):
            return self.instantiate_symbolic(block_name, definition, full, args, actual_inputs, groups, out, depth, repeat, path)
        output = ""
        outer = (*groups, (full, f"{block_name} x{repeat}")) if repeat > 1 else groups
        for copy in range(1, repeat + 1):
            instance = f"{full}.block{copy}" if repeat > 1 else full
            inner = (*outer, (instance, block_name))
            output = self.expand_body(block_name, definition, instance, args, actual_inputs, inner, out, depth)
            self.aliases[instance] = output
            actual_inputs = [output]
        self.aliases[full] = output
        return output

    def repeat_count(self, value: Any, path: DataPath, scope: dict[str, sympy.Expr]) -> int | sympy.Expr:
        """A whole number >= 1, or an expression over the symbols (a symbolic repeat)."""
        count = self.size(value, path, scope) if not isinstance(value, bool) else None
        if count is not None and count.is_Integer and count >= 1:
            return int(count)
        if count is None or count.is_Number or not count.free_symbols <= set(self.symbols.values()):
            raise self.error(f"repeat must be a whole number >= 1 or an expression over the symbols, got {value!r}", path)
        return count

    def instantiate_symbolic(self, block_name: str, definition: dict[str, Any], full: str, args: dict[str, sympy.Expr],
                             actual_inputs: list[str], groups: tuple[tuple[str, str], ...], out: list[ExpandedLayer],
                             depth: int, times: sympy.Expr, path: DataPath) -> str:
        """Expand one copy named INSTANCE.each whose counts are multiplied by `times`."""
        instance = f"{full}.each"
        label = f"{block_name} x{times}"
        outer = self.multiplier
        self.multiplier = outer * times
        try:
            output = self.expand_body(block_name, definition, instance, args, actual_inputs,
                                      (*groups, (full, label), (instance, block_name)), out, depth)
        finally:
            self.multiplier = outer
        self.symbolic_repeats.append(SymbolicRepeat(full, block_name, times, actual_inputs[0], output, path))
        self.aliases[instance] = self.aliases[full] = output
        return output

    def bind_args(self, block_name: str, formal: dict[str, Any], use: dict[str, Any], path: DataPath,
                  scope: dict[str, sympy.Expr]) -> dict[str, sympy.Expr]:
        bound: dict[str, sympy.Expr] = {}
        for arg, default in formal.items():
            given = arg in use
            value = use[arg] if given else default
            where = (*path, arg) if given else ("blocks", block_name, "args", arg)
            if value is None:
                raise self.error(f"block '{block_name}' needs arg '{arg}'", path)
            bound[arg] = self.size(value, where, {**scope, **bound} if not given else scope)
        return bound

    def size(self, value: Any, path: DataPath, scope: dict[str, sympy.Expr]) -> sympy.Expr:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise self.error(f"block args are sizes (integers or expressions), got {value!r}", path)
        if isinstance(value, int):
            return sympy.Integer(value)
        try:
            return parse_expression(value, scope)
        except ExpressionSyntaxError as exc:
            raise self.error(f"{exc.message}\n    {value}\n    {' ' * exc.column}^", path, hint=exc.hint) from None

    def actual_inputs(self, use: dict[str, Any], definition: dict[str, Any], path: DataPath,
                      previous: str | None, prefix: str | None) -> list[str]:
        formal = definition.get("inputs", ["x"])
        given = use.get("inputs")
        if given is None:
            if previous is None or len(formal) > 1:
                raise self.error(f"this block takes inputs {formal}: name them under 'inputs:'", path)
            return [previous]
        given = [given] if isinstance(given, str) else given
        if not isinstance(given, list) or not all(isinstance(g, str) for g in given):
            raise self.error("'inputs' must be a list of layer names", (*path, "inputs"))
        if len(given) != len(formal):
            raise self.error(f"block takes {len(formal)} input(s) {formal}, got {len(given)}", (*path, "inputs"))
        return [self.resolve_output(g) for g in given]  # inside a block, callers pass resolved names

    def expand_body(self, block_name: str, definition: dict[str, Any], instance: str, args: dict[str, sympy.Expr],
                    actual_inputs: list[str], groups: tuple[tuple[str, str], ...], out: list[ExpandedLayer],
                    depth: int) -> str:
        formal = definition.get("inputs", ["x"])
        local: dict[str, str] = dict(zip(formal, actual_inputs))  # local name -> full layer name
        counters: dict[str, int] = {}
        previous = formal[0]  # local name of the tensor an input-less layer takes
        scope = {**self.symbols, **args}
        for j, item in enumerate(definition["layers"]):
            path: DataPath = ("blocks", block_name, "layers", j)
            if not isinstance(item, dict):
                raise self.error("each layer must be a mapping with a 'type' (or a 'block')", path)
            names = item.get("inputs", [previous])
            names = [names] if isinstance(names, str) else names
            if isinstance(names, list):
                for source in names:
                    if isinstance(source, str) and source.partition(":")[0] not in local:
                        hint = did_you_mean(source, local) or f"visible here: {', '.join(local)}"
                        raise self.error(f"input '{source}' is not a layer or input of block '{block_name}'",
                                         (*path, "inputs"), layer=item.get("name"), hint=hint)
                names = [_with_port(n, local.__getitem__) if isinstance(n, str) else n for n in names]
            if "block" in item:
                output = self.instantiate({**item, "inputs": names}, path, scope, groups, instance, None, out, depth + 1)
                inner = item.get("name") if isinstance(item.get("name"), str) else output
                local[inner] = output
                previous = inner
                continue
            layer = dict(item)
            type_name = layer.get("type")
            local_name = layer.get("name")
            if local_name is None and isinstance(type_name, str):
                key = default_layer_name(type_name)
                counters[key] = counters.get(key, 0) + 1
                local_name = f"{key}_{counters[key]}"
            if isinstance(local_name, str):
                layer["name"] = f"{instance}.{local_name}"
            layer["inputs"] = names
            self.count += 1
            if self.count > MAX_EXPANDED_LAYERS:
                raise self.error(f"blocks expand to more than {MAX_EXPANDED_LAYERS} layers", path)
            out.append(ExpandedLayer(layer, path, args, groups, self.multiplier))
            if isinstance(local_name, str):
                local[local_name] = layer["name"]
                previous = local_name
        outputs = definition.get("outputs")
        if outputs is None:
            return local[previous]
        names = [outputs] if isinstance(outputs, str) else outputs
        if not isinstance(names, list) or len(names) != 1 or not isinstance(names[0], str) \
                or names[0].partition(":")[0] not in local:
            raise self.error(f"'outputs' of block '{block_name}' must name one of its layers",
                             ("blocks", block_name, "outputs"), hint=did_you_mean(str(names), local))
        return _with_port(names[0], local.__getitem__)
