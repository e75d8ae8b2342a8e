"""Safe YAML: positions kept, duplicates refused, bombs capped, no Python tags."""

import time
import tracemalloc

import pytest

from analyzer.errors import SpecSyntaxError
from analyzer.spec.yaml_loader import load_yaml


def test_positions_of_keys_and_values():
    data, source = load_yaml("a: 1\nb:\n  - x: L - 1\n", "f.yaml")
    assert data == {"a": 1, "b": [{"x": "L - 1"}]}
    assert str(source.value(("b", 0, "x"))) == "f.yaml:3:8"
    assert str(source.key(("b", 0, "x"))) == "f.yaml:3:5"


@pytest.mark.parametrize(("text", "fragment", "where"), [
    ("a: 1\nb: 2\na: 3\n", "duplicate key 'a' (first at line 1)", "f.yaml:3:1"),
    ("a:\n\t- 1\n", "found character '\\t'", "f.yaml:2:1"),
    ("", "the file is empty", "f.yaml:1:1"),
    ("a: [1, 2\n", "invalid YAML", "f.yaml:2:1"),
    ("a: !!python/object/apply:os.system ['touch PWNED']\n", "is not allowed", "f.yaml:1:4"),
    ("a: !!python/name:os.system\n", "tag !!python/name:os.system is not allowed", "f.yaml:1:4"),
])
def test_rejects_with_location(text, fragment, where):
    with pytest.raises(SpecSyntaxError) as info:
        load_yaml(text, "f.yaml")
    assert fragment in str(info.value)
    assert str(info.value.location) == where


def test_merge_keys_work():
    data, _ = load_yaml("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n", "f.yaml")
    assert data["d"] == {"x": 1, "y": 3}


BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")
)


BOMBS = [
    (BILLION_LAUGHS, "aliases expand to more than 10000 values"),
    ("a: " + "[" * 10_000 + "]" * 10_000 + "\n", "nesting deeper than 64"),
    ("".join(" " * i + f"k{i}:\n" for i in range(1_000)), "nesting deeper than 64"),
]


@pytest.mark.parametrize(("text", "fragment"), BOMBS)
def test_bombs_are_rejected_in_under_a_second(text, fragment):
    start = time.perf_counter()
    with pytest.raises(SpecSyntaxError, match=fragment):
        load_yaml(text, "bomb.yaml")
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize(("text", "fragment"), BOMBS)
def test_bombs_are_rejected_with_bounded_memory(text, fragment):
    tracemalloc.start()
    with pytest.raises(SpecSyntaxError, match=fragment):
        load_yaml(text, "bomb.yaml")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 100 * 2**20
