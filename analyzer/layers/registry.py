"""The table of layer types: Keras class name -> (spec model, handler).

Each layer module registers its handlers with `@register(SpecModel)`; a second
registration of the same type is a programming error and raises at import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, get_args

from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape

Handler = Callable[[Any, list[Shape], LayerContext], LayerResult]
H = TypeVar("H", bound=Handler)


@dataclass(frozen=True)
class LayerKind:
    type_name: str
    spec_model: type[LayerSpec]
    handler: Handler


LAYERS: dict[str, LayerKind] = {}


def register(spec_model: type[LayerSpec]) -> Callable[[H], H]:
    (type_name,) = get_args(spec_model.model_fields["type"].annotation)

    def decorator(handler: H) -> H:
        if type_name in LAYERS:
            raise RuntimeError(f"duplicate registration for layer type {type_name!r}")
        LAYERS[type_name] = LayerKind(type_name, spec_model, handler)
        return handler

    return decorator
