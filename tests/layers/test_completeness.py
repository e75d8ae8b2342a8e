"""Issue 15: every registered layer type is complete in one place. For each type the registry must give a
shape / params / forward-cost handler, each counting tool's rule (with the tool's source named in its
docstring), a torch and a Keras builder (or the stated reason there is none), an entry in
docs/conventions.md and a unit test under tests/layers/. A missing piece fails here, naming the type and
the piece."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pytest

from analyzer.layers import LAYERS, LayerContext, LayerResult, LayerSpec
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, BuilderTable
from analyzer.layers.registry import CONVENTIONS, INPUT_LAYER, TRAINING, LayerKind
from analyzer.layers.tool_rules import TOOLS

ROOT = Path(__file__).resolve().parents[2]


def documented_types(conventions_md: str) -> set[str]:
    """Type names in the `###` headings of docs/conventions.md's "Layers" section; `X1D/2D` stands for X1D and X2D."""
    layers = conventions_md.split("\n## Layers", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for heading in re.findall(r"^###+ (.*)$", layers, re.MULTILINE):
        heading = re.sub(r"(\w+?)1D/2D", r"\g<1>1D \g<1>2D", heading)
        names.update(re.findall(r"[A-Z]\w+", heading))
    return names


def unit_test_texts() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests/layers").glob("test_*.py"))
                     if p.name != Path(__file__).name)


def missing_pieces(type_name: str, kind: LayerKind | None, rules: dict[str, object], torch: BuilderTable,
                   keras: BuilderTable, documented: set[str], tests: str) -> list[str]:
    """What `type_name` lacks, one phrase per piece."""
    missing = []
    if kind is None or not callable(kind.handler):
        missing.append("shape, params and forward cost (a handler registered with @register)")
    for tool in TOOLS:
        rule = rules.get(tool)
        if rule is None:
            missing.append(f"the {tool} convention rule (counted_as(..., {tool}=...))")
        elif not (rule.__doc__ and len(rule.__doc__) > 20):
            missing.append(f"the source of its {tool} rule (the rule's docstring)")
    for table in (torch, keras):
        if type_name not in table.builders and type_name not in table.refused:
            missing.append(f"a {table.framework} builder, or {table.framework.upper()}_BUILDERS.refuse(type, reason)")
    if type_name not in documented:
        missing.append("an entry in docs/conventions.md (a ### heading naming it under ## Layers)")
    if not re.search(rf"\b{type_name}\b", tests):
        missing.append("a unit test with hand-worked numbers under tests/layers/")
    return missing


def test_every_registered_layer_type_is_complete():
    LAYERS.load_all()
    documented = documented_types((ROOT / "docs/conventions.md").read_text(encoding="utf-8"))
    tests = unit_test_texts()
    problems = {t: missing_pieces(t, LAYERS.registered.get(t), CONVENTIONS.rules.get(t, {}), TORCH_BUILDERS,
                                  KERAS_BUILDERS, documented, tests) for t in LAYERS}
    assert {t: p for t, p in problems.items() if p} == {}
    assert len(problems) == len(LAYERS.registered) > 50


def test_the_input_rows_have_every_tool_rule():
    assert set(CONVENTIONS.rules[INPUT_LAYER]) == set(TOOLS)


class HalfDoneNorm(LayerSpec):
    type: Literal["HalfDoneNorm"]


def _identity(layer: HalfDoneNorm, inputs: list, ctx: LayerContext) -> LayerResult:
    return LayerResult(inputs[0])


def test_a_deliberately_incomplete_type_is_named_with_each_missing_piece():
    # A type with only its handler and a torch builder: every other piece is reported, by name.
    torch = BuilderTable("torch")
    torch.register("HalfDoneNorm")(lambda layer, plan: None)
    kind = LayerKind("HalfDoneNorm", HalfDoneNorm, _identity)
    missing = missing_pieces("HalfDoneNorm", kind, {"torch": _documented_zero}, torch, BuilderTable("keras"),
                             documented={"Dense"}, tests="Dense")
    assert missing == [
        "the thop convention rule (counted_as(..., thop=...))",
        "the ptflops convention rule (counted_as(..., ptflops=...))",
        "the fvcore convention rule (counted_as(..., fvcore=...))",
        "a keras builder, or KERAS_BUILDERS.refuse(type, reason)",
        "an entry in docs/conventions.md (a ### heading naming it under ## Layers)",
        "a unit test with hand-worked numbers under tests/layers/",
    ]
    assert missing_pieces("HalfDoneNorm", None, {}, torch, torch, set(), "")[0].startswith("shape, params")


def _documented_zero(row):
    """A rule with its source named: FlopCounterMode has no formula for this op."""
    return 0


@pytest.mark.parametrize("piece", ["fvcore", "keras", "docs", "test"])
def test_removing_one_piece_of_a_real_layer_fails(piece):
    LAYERS.load_all()
    rules = dict(CONVENTIONS.rules["LayerNormalization"])
    keras = KERAS_BUILDERS
    documented = documented_types((ROOT / "docs/conventions.md").read_text(encoding="utf-8"))
    tests = unit_test_texts()
    if piece == "fvcore":
        del rules["fvcore"]
    elif piece == "keras":
        keras = BuilderTable("keras")
    elif piece == "docs":
        documented.discard("LayerNormalization")
    else:
        tests = tests.replace("LayerNormalization", "")
    missing = missing_pieces("LayerNormalization", LAYERS["LayerNormalization"], rules, TORCH_BUILDERS, keras,
                             documented, tests)
    assert len(missing) == 1 and {"fvcore": "fvcore", "keras": "keras builder", "docs": "docs/conventions.md",
                                  "test": "unit test"}[piece] in missing[0]


def test_a_stated_reason_counts_as_the_export():
    torch = BuilderTable("torch")
    torch.refuse("Dense", "has no torch counterpart (a test)")
    missing = missing_pieces("Dense", LAYERS["Dense"], CONVENTIONS.rules["Dense"], torch, KERAS_BUILDERS,
                             {"Dense"}, "Dense")
    assert missing == []


# Issue 16 gives every layer type a training rule; these still have none (the training step refuses them, exit 2).
# A type leaves this set when its rule lands; a new type joins it only with the reason.
WITHOUT_TRAINING_RULE: set[str] = set()


def test_every_layer_type_has_a_training_rule_but_the_listed_ones():
    LAYERS.load_all()
    assert set(LAYERS) - set(TRAINING) == WITHOUT_TRAINING_RULE
    for type_name, rule in TRAINING.items():
        assert rule.__doc__ and len(rule.__doc__) > 30, f"{type_name}: its training rule says nothing of its formula"
