"""Read spec YAML safely and keep every node's position.

PyYAML's `safe_load` forgets line numbers, silently keeps the last of two
duplicate keys, and expands aliases without limit. This loader composes the node
tree itself (SafeLoader: no Python tags) and builds plain Python values while
recording, for every path, where its key and value stand in the file.

Caps (documented in docs/errors.md): MAX_DEPTH nesting levels, MAX_ALIASES alias
uses, MAX_ALIAS_VALUES values reached again through aliases (a billion-laughs
bomb), MAX_NODES values in all, MAX_BYTES of text, MAX_INT_DIGITS digits in one
integer.

Scalars are plain strings, integers, floats, booleans and nulls only: explicit
tags such as !!binary or !!python/... are refused, dates stay strings, and the
YAML 1.1 surprises `010` (octal 8) and `1:30` (base 60: 90) are refused.

Where PyYAML has libyaml, libyaml scans and parses (several times faster) under the
same composer, caps and builder; every error, and any text libyaml might read
differently, goes through the pure-Python loader, so messages and positions are the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import Reader
from yaml.resolver import Resolver

from analyzer.errors import Location, SpecSyntaxError

MAX_DEPTH = 64
MAX_ALIASES = 100
MAX_ALIAS_VALUES = 10_000
MAX_NODES = 200_000
MAX_BYTES = 1_000_000
MAX_INT_DIGITS = 1000

_PLAIN_SCALAR_TAGS = {f"tag:yaml.org,2002:{t}": t for t in ("str", "int", "float", "bool", "null")}
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_OCTAL = re.compile(r"^[-+]?0[0-7_]+$")
# Text libyaml does not read exactly as PyYAML's pure-Python loader goes to the latter: characters
# PyYAML's reader refuses (libyaml's set differs), and what a differential fuzz of the specs found
# libyaml to accept or place differently: tabs ('a\tb' is a plain scalar for libyaml, an error for
# PyYAML), '?' in flow collections, a byte order mark after the start (columns), and an empty
# value in a flow collection ('{a: , b: 1}': its column), a block scalar header followed by '#'.
_NON_PRINTABLE = Reader.NON_PRINTABLE
_NOT_FOR_LIBYAML = re.compile(r"[\t?\ufeff]|:\s*[,}\]]|[|>][-+0-9]*#")

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


class _ComposeCaps:
    """Composer.compose_node that refuses deep nesting and alias bombs while composing."""

    _depth = 0
    _aliases = 0

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
            return super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            self._depth -= 1


class _CappedLoader(_ComposeCaps, yaml.SafeLoader):
    """SafeLoader (pure Python) that refuses deep nesting and alias bombs while composing: the
    reference, whose messages and positions every error of load_yaml comes from."""

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:  # (PyYAML's argument name)
        # PyYAML's scanner does work per open bracket for every later token: cap '[' and '{' depth
        # while scanning, before a deep flow collection makes it quadratic.
        if self.flow_level >= MAX_DEPTH:
            raise _CapExceeded(f"nesting deeper than {MAX_DEPTH} levels", self.get_mark())
        super().fetch_flow_collection_start(TokenClass)  # type: ignore[misc]


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _FastLoader(_ComposeCaps, Composer, CParser, SafeConstructor, Resolver):  # type: ignore[misc]
        """libyaml's scanner and parser (C) under PyYAML's own composer, with the same caps and the
        same node marks. PyYAML's pure-Python scanner was ~18% of a 1,000-layer spec's time (issue 9)."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
else:  # PyYAML built without libyaml: the pure-Python loader does everything
    _FastLoader = None  # type: ignore[assignment,misc]


class _CapExceeded(Exception):
    def __init__(self, message: str, mark: yaml.Mark | None, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark
        self.location = location


def _short_tag(tag: str) -> str:
    shown = "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag
    return shown if len(shown) <= 60 else shown[:57] + "..."


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
                # The aliased node stands where its anchor is; the key being expanded says more.
                outer = next((self.source.keys[path[:i]] for i in range(1, len(path) + 1) if path[:i] in self.source.keys),
                             None)
                raise _CapExceeded(
                    f"aliases expand to more than {MAX_ALIAS_VALUES} values (an alias bomb?)", node.start_mark, outer
                )
        self.built.add(id(node))
        if self.count > MAX_NODES:
            raise _CapExceeded(f"more than {MAX_NODES} values in one file", node.start_mark)
        if depth > MAX_DEPTH:
            raise _CapExceeded(f"nesting deeper than {MAX_DEPTH} levels", node.start_mark)
        if path not in self.source.values:
            self.source.values[path] = _location(self.source.file, node.start_mark)  # type: ignore[assignment]
        expected = _STANDARD_TAGS.get(type(node))
        if expected is not None and node.tag != expected:
            raise SpecSyntaxError(
                f"tag {_short_tag(node.tag)} is not allowed",
                location=_location(self.source.file, node.start_mark),
                hint="a spec holds plain mappings, lists and values only; tags such as !!python/... would run code",
            )
        if isinstance(node, MappingNode):
            return self.mapping(node, path, depth)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self.scalar(node)

    def scalar(self, node: ScalarNode) -> Any:
        """A plain value; refuses tags that build objects and YAML 1.1's octal and base-60 integers."""
        plain = not node.style  # None from PyYAML's composer, '' from libyaml's parser
        if node.tag == _TIMESTAMP_TAG and plain:
            return node.value  # a date means nothing in a spec: keep the text
        where = _location(self.source.file, node.start_mark)
        kind = _PLAIN_SCALAR_TAGS.get(node.tag)
        if kind is None:
            raise SpecSyntaxError(
                f"tag {_short_tag(node.tag)} is not allowed", location=where,
                hint="a spec holds plain strings, numbers, booleans and nulls only; tags such as !!python/... would run code",
            )
        text = node.value.strip()
        if kind == "int" and plain and _OCTAL.match(text):
            raise SpecSyntaxError(f"{text} is an octal number in YAML 1.1 ({text} = {int(text.replace('_', ''), 8)})",
                                  location=where, hint=f"write it without the leading 0, or quote it: '{text}'")
        if kind == "int" and plain and ":" in text:
            raise SpecSyntaxError(f"{text} is a base-60 number in YAML 1.1", location=where,
                                  hint=f"quote it if you mean text: '{text}'")
        if kind == "int" and sum(c.isalnum() for c in text) > MAX_INT_DIGITS:
            raise SpecSyntaxError(f"integer with more than {MAX_INT_DIGITS} digits", location=where)
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, IndexError):  # IndexError: '!!int' alone
            shown = text if len(text) <= 40 else text[:37] + "..."
            what = {"int": "an integer", "float": "a number", "bool": "true or false", "null": "null"}.get(kind, kind)
            raise SpecSyntaxError(f"cannot read {shown!r} as {what}", location=where) from None

    def mapping(self, node: MappingNode, path: Path, depth: int) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.scalar(key_node)
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
            key = self.scalar(key_node)
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


def _compose_and_build(loader: Any, file: str) -> tuple[Any, SourceMap]:
    source = SourceMap(file)
    node = loader.get_single_node()
    if node is None or (isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null" and not node.value):
        raise SpecSyntaxError("the file is empty; a spec needs at least 'inputs' and 'layers'", location=Location(file, 1, 1))
    return _Builder(loader, source).build(node, ()), source


def load_yaml(text: str, file: str, *, fast: bool = True) -> tuple[Any, SourceMap]:
    """Parse one YAML document into plain values and its SourceMap.

    With libyaml (and `fast`), libyaml scans and parses; anything it or a check refuses is read
    again by the pure-Python loader, which gives the error, so messages and positions do not
    depend on libyaml (tests/test_yaml_loader.py compares the two)."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise SpecSyntaxError(f"file larger than {MAX_BYTES} bytes", location=Location(file, 1, 1))
    if fast and _FastLoader is not None and not _NON_PRINTABLE.search(text) and not _NOT_FOR_LIBYAML.search(text):
        loader = _FastLoader(text)
        try:
            return _compose_and_build(loader, file)
        except Exception:  # the pure-Python loader below reports it, in its own words
            pass
        finally:
            loader.dispose()
    loader = None
    try:
        loader = _CappedLoader(text)  # its reader already refuses control characters
        return _compose_and_build(loader, file)
    except _CapExceeded as cap:
        raise SpecSyntaxError(cap.message, location=cap.location or _location(file, cap.mark)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        hint = None
        if "\\t" in problem or "tab" in problem.lower():
            hint = "YAML does not allow tabs for indentation; indent with spaces"
        elif "constructor" in problem or "tag" in problem:
            hint = "tags such as !!python/... are not allowed: a spec holds plain values only"
        elif "mapping values are not allowed" in problem:
            hint = "a second ':' on one line; quote the value if it holds a colon"
        context = exc.context_mark
        if exc.problem and exc.context and context is not None and mark is not None and context.line != mark.line:
            problem += f" ({exc.context} that starts at line {context.line + 1})"
        raise SpecSyntaxError(f"invalid YAML: {problem}", location=_location(file, mark), hint=hint) from None
    except yaml.reader.ReaderError as exc:  # a control character: it has a position, not a mark
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        raise SpecSyntaxError(f"invalid YAML: the character {char!r} is not allowed in a YAML file",
                              location=Location(file, line, column)) from None
    except yaml.YAMLError as exc:
        raise SpecSyntaxError(f"invalid YAML: {exc}", location=Location(file, 1, 1)) from None
    except RecursionError:
        raise SpecSyntaxError(f"nesting deeper than {MAX_DEPTH} levels", location=Location(file, 1, 1)) from None
    finally:
        if loader is not None:
            loader.dispose()
