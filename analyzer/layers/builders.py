"""The builder tables of the two exports: Keras layer type -> a small function that, given
the layer at concrete sizes (export/plan.py's LayerPlan), *describes* the framework object
it wants (`Construct("Conv1D", filters=128, ...)`). Each family module registers its own
builders next to the layer (`@TORCH_BUILDERS.register("Dense")`), or states why a type
has none (`TORCH_BUILDERS.refuse("X", "reason")`); `to_keras` / `to_torch` instantiate the
description and the source writers print it, so the in-memory model and the written
file come from the same description. Nothing here imports a framework.

A torch Construct names a class of analyzer/layers/torch_modules/ or `nn.X`; a Keras one
a `keras.layers` class, with `Ref("ops.cos")` arguments becoming `keras.ops.cos`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from analyzer.layers.registry import LAYERS, TYPE_MODULES

if TYPE_CHECKING:
    from analyzer.export.plan import LayerPlan


@dataclass(frozen=True)
class Ref:
    """A reference to a framework object by its source text, e.g. `Ref("ops.cos")` for a Keras Lambda;
    `Ref("None")` is an explicit None (a None argument is otherwise left out, for the framework's default)."""

    text: str

    def __repr__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Construct:
    """One framework object to create: a class name and its keyword arguments (plain Python values or Refs).

    `call` says how a layer of several inputs takes them: "list" (Keras merges: layer([a, b])) or
    "args" (layer(a, b): Keras' MultiHeadAttention, and every torch module).
    """

    cls: str
    kwargs: dict[str, Any]
    call: str = "list"

    @classmethod
    def of(cls, name: str, **kwargs: Any) -> Construct:
        return cls(name, kwargs)


Builder = Callable[[Any, "LayerPlan"], Construct]


class BuilderTable:
    """Keras layer type name -> builder, for one framework. A second builder for a type is refused; a type with no
    counterpart in the framework says why (`refuse`)."""

    def __init__(self, framework: str) -> None:
        self.framework = framework
        self.builders: dict[str, Builder] = {}
        self.refused: dict[str, str] = {}

    def register(self, *type_names: str) -> Callable[[Builder], Builder]:
        def decorator(builder: Builder) -> Builder:
            for type_name in type_names:
                if type_name in self.builders or type_name in self.refused:
                    raise RuntimeError(f"duplicate {self.framework} builder for layer type {type_name!r}")
                self.builders[type_name] = builder
            return builder

        return decorator

    def refuse(self, type_name: str, reason: str) -> None:
        """`type_name` has no counterpart in this framework, for `reason` (shown when an export meets it)."""
        if type_name in self.builders or type_name in self.refused:
            raise RuntimeError(f"duplicate {self.framework} builder for layer type {type_name!r}")
        self.refused[type_name] = reason

    def __contains__(self, type_name: object) -> bool:
        if isinstance(type_name, str) and type_name in LAYERS:
            LAYERS[type_name]
        return type_name in self.builders

    def types(self) -> set[str]:
        LAYERS.load_all()
        return set(self.builders)

    def build(self, layer: LayerPlan) -> Construct:
        if layer.type in LAYERS:
            LAYERS[layer.type]
        builder = self.builders.get(layer.type)
        if builder is None:
            reason = self.refused.get(layer.type)
            if reason is not None:
                raise layer.error(f"cannot export to {self.framework}: layer type '{layer.type}' {reason}")
            where = f"analyzer/layers/{TYPE_MODULES.get(layer.type, '<family>')}.py"
            raise layer.error(f"cannot export to {self.framework}: no {self.framework} builder for layer type "
                              f"'{layer.type}'", hint=f"add one to {where} (one small function per layer type)")
        construct = builder(layer.spec, layer)
        # a wrapper's builder builds its inner layer through here too, so this sees every layer's activation
        if self.framework == "keras" and construct.kwargs.get("activation") in NO_KERAS_NAME:
            raise layer.error(f"cannot export to keras: activation '{construct.kwargs['activation']}' "
                              f"{NO_KERAS_NAME[construct.kwargs['activation']]}")
        return construct


# Activations nnspec counts that Keras has no name for (a layer's `activation` is a string in a Keras config).
NO_KERAS_NAME = {"gelu_tanh": "is keras.activations.gelu(x, approximate=True), which has no name of its own"}


TORCH_BUILDERS = BuilderTable("torch")
KERAS_BUILDERS = BuilderTable("keras")


def one_or_tuple(values: tuple[int, ...]) -> int | tuple[int, ...]:
    """Keras' argument form: a bare int for one axis, a tuple for several."""
    return values[0] if len(values) == 1 else values
