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


# libyaml (C) scans and parses when PyYAML has it; the pure-Python loader reads again whatever it
# refuses. Both must give the same values and positions, and the same errors.
from pathlib import Path  # noqa: E402

from analyzer.spec import yaml_loader  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
YAML_FILES = sorted([*ROOT.glob("specs/**/*.yaml"), *ROOT.glob("tests/bad_specs/*.yaml"), *ROOT.glob("tests/specs/**/*.yaml")])
SNIPPETS = [
    "a: 1\nb:\n  - x: L - 1\n", "a: 'é ü 😀'\nb: \"\\u00e9\\t\\x41\"\n", "a: |\n  line 1\n  line 2\nb: >\n  folded\n  text\n",
    "a: [1, {b: c}, [d, e]]\n", "? complex\n: key\n", "a: 010\n", "a: 1:30\n", "a: 2024-01-01\n", "a: .inf\nb: ~\nc: yes\n",
    "a: 1\n---\nb: 2\n", "%YAML 1.1\n---\na: 1\n", "%YAML 1.2\n---\na: 1\n", "a: 1\n\tb: 2\n", "\ufeffa: 1\n", "a: \x85b\n",
    "a: &x 1\nb: *x\nc: *y\n", "a: !custom 1\n", "- 1\n- 2\n", "a: 1 # comment\n# end\n", "{a: 1, b: [2, 3]}",
    "a:\n  - b: 1\n    c: 2\n  - d\n", "a: 'unterminated\n", "a: \"\\q\"\n", "[" * 70 + "]" * 70, "a: " + "x" * 5000 + "\n",
    "a: 1\nb: 2\na: 3\n", "a: 0x1F\nb: 0o17\nc: 1_000\nd: -0\ne: +1\n",
    # found by a differential fuzz: libyaml accepts or places these differently, so they are not its to read
    "a: {b: , c: 1}\n", "- {name: , shape: [16]}\n", "# c\n|# x\n", "a: >-#\n  b\n",
    "a: b\tc\n", "input\ts: 1\n", "{unit?: 8}\n", "a: x\ufeffy\n",
]


def _outcome(text: str, fast: bool) -> tuple:
    try:
        data, source = yaml_loader.load_yaml(text, "f.yaml", fast=fast)
    except SpecSyntaxError as error:
        return ("error", str(error), str(error.location), error.hint)
    return ("ok", data, source.values, source.keys)


@pytest.mark.skipif(not yaml_loader.yaml.__with_libyaml__, reason="PyYAML without libyaml")
@pytest.mark.parametrize("text", [p.read_text(encoding="utf-8", errors="surrogateescape") for p in YAML_FILES] + SNIPPETS)
def test_libyaml_and_pure_python_give_the_same_values_positions_and_errors(text):
    assert _outcome(text, fast=True) == _outcome(text, fast=False)


@pytest.mark.skipif(not yaml_loader.yaml.__with_libyaml__, reason="PyYAML without libyaml")
def test_libyaml_reads_specs_without_the_pure_python_loader(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the pure-Python loader was used")

    expected = {p: _outcome(p.read_text(), fast=False) for p in ROOT.glob("specs/**/*.yaml")
                if not yaml_loader._NOT_FOR_LIBYAML.search(p.read_text())}
    assert len(expected) >= 20  # all specs but one, whose comments hold "x[:, -1, :]"
    monkeypatch.setattr(yaml_loader, "_CappedLoader", refuse)
    for path, outcome in expected.items():
        assert _outcome(path.read_text(), fast=True) == outcome
    data, source = yaml_loader.load_yaml("a: 2024-01-01\nb:\n  - c: 1\n", "f.yaml")
    assert data == {"a": "2024-01-01", "b": [{"c": 1}]} and str(source.key(("b", 0, "c"))) == "f.yaml:3:5"


def test_without_libyaml_the_pure_python_loader_reads_everything(monkeypatch):
    monkeypatch.setattr(yaml_loader, "_FastLoader", None)
    text = (ROOT / "specs/scnn.yaml").read_text()
    assert _outcome(text, fast=True) == _outcome(text, fast=False)
    assert _outcome("a: 1\nb: 2\na: 3\n", fast=True)[2] == "f.yaml:3:1"


def test_a_tag_on_nothing_is_an_error_not_a_crash():
    with pytest.raises(SpecSyntaxError, match="cannot read '' as an integer"):
        load_yaml("# nothing but a tag\n!!int \n", "f.yaml")
