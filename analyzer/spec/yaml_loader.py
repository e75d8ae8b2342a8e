"""Read spec YAML safely and keep every node's position.

PyYAML's `safe_load` forgets line numbers, silently keeps the last of two
duplicate keys, and expands aliases without limit. This loader composes the node
tree itself (SafeLoader: no Python tags) and builds plain Python values while
recording, for every path, where its key and value stand in the file.

Caps (documented in docs/errors.md): MAX_DEPTH nesting levels, MAX_ALIASES alias
uses, MAX_ALIAS_VALUES values reached again through aliases (a billion-laughs
bomb), MAX_NODES values in all, MAX_BYTES of text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from analyzer.errors import Location, SpecSyntaxError

MAX_DEPTH = 64
MAX_ALIASES = 100
MAX_ALIAS_VALUES = 100_000
MAX_NODES = 2_000_000
MAX_BYTES = 5_000_000

Path = tuple[str | int, ...]


@dataclass
class SourceMap:
    """Where each value (and each mapping key) of a loaded document stands."""

    file: str
    values: dict[Path, Location] = field(default_factory=dict)
    keys: dict[Path, Location] = field(default_factory=dict)

    def value(self, path: Path) -> Location | None:
        """Location of the value at `path`, or of its nearest recorded parent."""
        path = tuple(path)
        while path not in self.values and path:
            path = path[:-1]
        return self.values.get(path)

    def key(self, path: Path) -> Location | None:
        return self.keys.get(tuple(path)) or self.value(path)


def _location(file: str, mark: yaml.Mark | None) -> Location | None:
    if mark is None:
        return None
    return Location(file, mark.line + 1, mark.column + 1)


class _CappedLoader(yaml.SafeLoader):
    """SafeLoader that refuses deep nesting and alias bombs while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                event = self.peek_event()
                raise _CapExceeded(f"more than {MAX_ALIASES} aliases (*name) in one file", event.start_mark)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _CapExceeded(f"nesting deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _CapExceeded(Exception):
    def __init__(self, message: str, mark: yaml.Mark | None) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


_STANDARD_TAGS = {MappingNode: "tag:yaml.org,2002:map", SequenceNode: "tag:yaml.org,2002:seq"}


class _Builder:
    """Turns composed nodes into Python values, recording marks and refusing duplicates."""

    def __init__(self, loader: _CappedLoader, source: SourceMap) -> None:
        self.loader = loader
        self.source = source
        self.count = 0
        self.built: set[int] = set()
        self.through_aliases = 0

    def build(self, node: Node, path: Path, depth: int = 0) -> Any:
        self.count += 1
        if id(node) in self.built:
            self.through_aliases += 1
            if self.through_aliases > MAX_ALIAS_VALUES:
                raise _CapExceeded(
                    f"aliases expand to more than {MAX_ALIAS_VALUES} values (an alias bomb?)", node.start_mark
                )
        self.built.add(id(node))
        if self.count > MAX_NODES:
            raise _CapExceeded(f"more than {MAX_NODES} values in one file", node.start_mark)
        if depth > MAX_DEPTH:
            raise _CapExceeded(f"nesting deeper than {MAX_DEPTH} levels", node.start_mark)
        self.source.values.setdefault(path, _location(self.source.file, node.start_mark))  # type: ignore[arg-type]
        expected = _STANDARD_TAGS.get(type(node))
        if expected is not None and node.tag != expected:
            raise SpecSyntaxError(
                f"tag {node.tag!r} is not allowed",
                location=_location(self.source.file, node.start_mark),
                hint="a spec holds plain values only; tags such as !!python/... would run code",
            )
        if isinstance(node, MappingNode):
            return self.mapping(node, path, depth)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self.loader.construct_object(node, deep=True)

    def mapping(self, node: MappingNode, path: Path, depth: int) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.loader.construct_object(key_node, deep=True)
            if key in seen:
                first = seen[key]
                raise SpecSyntaxError(
                    f"duplicate key {key!r} (first at line {first.line + 1}); YAML would silently keep the last one",
                    location=_location(self.source.file, key_node.start_mark),
                )
            seen[key] = key_node.start_mark
        self.loader.flatten_mapping(node)  # resolves '<<' merge keys
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise SpecSyntaxError(
                    "a mapping key must be a plain word", location=_location(self.source.file, key_node.start_mark)
                )
            key = self.loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise SpecSyntaxError(
                    f"a mapping key must be a word, not {key!r}",
                    location=_location(self.source.file, key_node.start_mark),
                )
            key = str(key)
            self.source.keys[(*path, key)] = _location(self.source.file, key_node.start_mark)  # type: ignore[assignment]
            self.source.values[(*path, key)] = _location(self.source.file, value_node.start_mark)  # type: ignore[assignment]
            result[key] = self.build(value_node, (*path, key), depth + 1)
        return result


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document into plain values and its SourceMap."""
    source = SourceMap(file)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise SpecSyntaxError(f"file larger than {MAX_BYTES} bytes", location=Location(file, 1, 1))
    loader = _CappedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecSyntaxError("the file is empty; a spec needs at least 'inputs' and 'layers'", location=Location(file, 1, 1))
        return _Builder(loader, source).build(node, ()), source
    except _CapExceeded as cap:
        raise SpecSyntaxError(cap.message, location=_location(file, cap.mark)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        hint = None
        if "\\t" in problem or "tab" in problem.lower():
            hint = "YAML does not allow tabs for indentation; indent with spaces"
        elif "constructor" in problem or "tag" in problem:
            hint = "tags such as !!python/... are not allowed: a spec holds plain values only"
        raise SpecSyntaxError(f"invalid YAML: {problem}", location=_location(file, mark), hint=hint) from None
    except yaml.YAMLError as exc:
        raise SpecSyntaxError(f"invalid YAML: {exc}", location=Location(file, 1, 1)) from None
    except RecursionError:
        raise SpecSyntaxError(f"nesting deeper than {MAX_DEPTH} levels", location=Location(file, 1, 1)) from None
    finally:
        loader.dispose()
