"""The table of layer types: Keras class name -> (spec model, handler, convention rules).

Each family module of analyzer/layers/ registers, next to the layer itself, its
handler with `@register(SpecModel)` (shape, params and forward cost) and what each
counting tool counts for it with `counted_as(type, torch=..., thop=..., ...)`; its
torch and Keras builders go in analyzer/layers/builders.py's tables the same way. A
second registration of the same type is a programming error and raises at import.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any, TypeVar, get_args

from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape

Handler = Callable[[Any, list[Shape], LayerContext], LayerResult]
H = TypeVar("H", bound=Handler)
Rule = Callable[[Any], Any]  # LayerRow -> sympy.Expr | Skipped (analyzer/layers/tool_rules.py)

INPUT_LAYER = "InputLayer"  # not a spec layer type, but a row of every report that the conventions count


@dataclass
class LayerKind:
    type_name: str
    spec_model: type[LayerSpec]
    handler: Handler


def _spec_types(module: Path) -> list[str]:
    return re.findall(r'^\s+type: Literal\["(\w+)"\]', module.read_text(encoding="utf-8"), re.MULTILINE)


# Which module of analyzer/layers/ defines each type, read off the modules' `type: Literal["..."]` lines, so a new
# type is declared by its family module alone. A module is imported the first time one of its types is looked up:
# building the pydantic models of every type costs ~0.1 s at start-up, and a spec uses a few families.
# tests/layers/test_registry.py checks this table against the registrations.
COMPANIONS = ("_training", "_saved")
TYPE_MODULES: dict[str, str] = {
    type_name: module.stem
    for module in sorted(Path(__file__).parent.glob("*.py"))
    for type_name in _spec_types(module)
}


class LayerTable(Mapping[str, LayerKind]):
    """Type name -> LayerKind for every type of TYPE_MODULES; looking a type up imports its module."""

    def __init__(self) -> None:
        self.registered: dict[str, LayerKind] = {}
        self.families: set[str] = set()  # the family modules imported with their companions
        # classes a user declared (custom_layers:, --custom-layers; analyzer/spec/custom_layers.py): found by a
        # lookup, never among the table's types (its keys, length and iteration are the families' types only)
        self.declared: dict[str, LayerKind] = {}

    def __getitem__(self, type_name: str) -> LayerKind:
        if type_name in TYPE_MODULES:
            self.load_family(TYPE_MODULES[type_name])
            return self.registered[type_name]
        return self.declared[type_name]

    def declare(self, kind: LayerKind) -> None:
        """A user-declared class; a later declaration of the name replaces it (each spec declares its own)."""
        if kind.type_name in TYPE_MODULES:
            raise RuntimeError(f"{kind.type_name!r} is a layer type of nnspec's own; it cannot be declared")
        self.declared[kind.type_name] = kind

    def load_family(self, module: str) -> None:
        """The family module, and its companions: a family may keep its training or saved-activation rules in
        <family>_training.py or <family>_saved.py for their length; they import the family, never the reverse."""
        if module in self.families:
            return
        import_module(f"analyzer.layers.{module}")
        for suffix in COMPANIONS:
            if (Path(__file__).parent / f"{module}{suffix}.py").exists():
                import_module(f"analyzer.layers.{module}{suffix}")
        self.families.add(module)

    def __contains__(self, type_name: object) -> bool:
        return type_name in TYPE_MODULES

    def __iter__(self) -> Iterator[str]:
        return iter(TYPE_MODULES)

    def __len__(self) -> int:
        return len(TYPE_MODULES)

    def load_all(self) -> None:
        for module in sorted(set(TYPE_MODULES.values())):
            self.load_family(module)


LAYERS = LayerTable()


def register(spec_model: type[LayerSpec]) -> Callable[[H], H]:
    (type_name,) = get_args(spec_model.model_fields["type"].annotation)

    def decorator(handler: H) -> H:
        if type_name in LAYERS.registered:
            raise RuntimeError(f"duplicate registration for layer type {type_name!r}")
        if type_name not in TYPE_MODULES:
            raise RuntimeError(f"layer type {type_name!r} is not declared as `type: Literal[{type_name!r}]` in a module "
                               "of analyzer/layers/")
        LAYERS.registered[type_name] = LayerKind(type_name, spec_model, handler)
        return handler

    return decorator


@dataclass
class ConventionTable:
    """Layer type -> profile name -> rule, as the families declare them with `counted_as`."""

    rules: dict[str, dict[str, Rule]] = field(default_factory=dict)
    # Rules that replace `rules` when the export writes GRUs that nn.GRU cannot compute as loops
    # (to_torch(native_gru=False), its default); `rules` count the straightforward port (native_gru=True).
    loop_gru: dict[str, dict[str, Rule]] = field(default_factory=dict)

    def rule(self, profile: str, type_name: str, native_gru: bool = True) -> Rule | None:
        if type_name in LAYERS:
            LAYERS[type_name]
        if not native_gru and profile in self.loop_gru.get(type_name, {}):
            return self.loop_gru[type_name][profile]
        return self.rules.get(type_name, {}).get(profile)

    def for_profile(self, profile: str, native_gru: bool = True) -> dict[str, Rule]:
        """Every layer type's rule for `profile` (all families imported first)."""
        LAYERS.load_all()
        out = {t: rules[profile] for t, rules in self.rules.items() if profile in rules}
        if not native_gru:
            out.update({t: rules[profile] for t, rules in self.loop_gru.items() if profile in rules})
        return out


CONVENTIONS = ConventionTable()


def counted_as(*type_names: str, loop_gru: Mapping[str, Rule] | None = None, **rules: Rule) -> None:
    """Declare what each counting tool (a profile name: torch, thop, ptflops, fvcore) counts for these layer types;
    `loop_gru`: the rules that differ when the export writes a GRU as a loop (to_torch's default)."""
    for type_name in type_names:
        if type_name not in TYPE_MODULES and type_name != INPUT_LAYER:
            raise RuntimeError(f"convention rules for unknown layer type {type_name!r}")
        if type_name in CONVENTIONS.rules:
            raise RuntimeError(f"duplicate convention rules for layer type {type_name!r}")
        CONVENTIONS.rules[type_name] = dict(rules)
        if loop_gru:
            CONVENTIONS.loop_gru[type_name] = dict(loop_gru)


# Layer type -> its training rule (analyzer/layers/backward.py): one optimizer step through the layer, B samples;
# TORCH_TRAINING: the backward as torch's FlopCounterMode counts it (--training --convention torch).
TRAINING: dict[str, Rule] = {}
TORCH_TRAINING: dict[str, Rule] = {}


def trains_as(*type_names: str, rule: Rule, torch: Rule | None = None) -> None:
    """Declare the training rule of these layer types (forward in training mode, backward, for a batch) and the
    backward FlopCounterMode counts; without `torch`, backward.torch_backward_without_formula (no mm or convolution
    in the layer's backward: 0)."""
    from analyzer.layers.backward import torch_backward_without_formula

    for type_name in type_names:
        _declare(TRAINING, "training rule", type_name, rule)
        TORCH_TRAINING[type_name] = torch or torch_backward_without_formula


def _declare(table: dict[str, Rule], what: str, type_name: str, rule: Rule) -> None:
    """One rule per known layer type: a typo or a second declaration fails at import."""
    if type_name not in TYPE_MODULES:
        raise RuntimeError(f"a {what} for unknown layer type {type_name!r}")
    if type_name in table:
        raise RuntimeError(f"duplicate {what} for layer type {type_name!r}")
    table[type_name] = rule


# Layer type -> what autograd saves of it for the backward (analyzer/layers/saved.py): the saved activations of the
# training step's memory (analyzer/training_memory.py). A type without one is "not counted" there, never guessed.
SAVES: dict[str, Rule] = {}


def saves_as(*type_names: str, rule: Rule) -> None:
    """Declare what these layer types save for the backward pass on the torch export (a saved.SaveRule)."""
    for type_name in type_names:
        _declare(SAVES, "saved-activation rule", type_name, rule)


# Layer type -> its key/value cache (analyzer/phases.py): per sample, the elements it writes for the T new tokens
# and reads for the P cached ones (--phase decode). A layer whose cost depends on the past tokens and has none is
# refused by --phase decode.
KV_CACHES: dict[str, Rule] = {}


def caches_as(*type_names: str, rule: Rule) -> None:
    """Declare the key/value cache of these layer types (a rule: row -> (written, read) elements per sample)."""
    for type_name in type_names:
        _declare(KV_CACHES, "key/value cache rule", type_name, rule)
