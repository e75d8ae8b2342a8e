"""The table of layer types: Keras class name -> (spec model, handler).

Each layer module registers its handlers with `@register(SpecModel)`; a second
registration of the same type is a programming error and raises at import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import Any, TypeVar, get_args

from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape

Handler = Callable[[Any, list[Shape], LayerContext], LayerResult]
H = TypeVar("H", bound=Handler)


@dataclass(frozen=True)
class LayerKind:
    type_name: str
    spec_model: type[LayerSpec]
    handler: Handler


# Which module of analyzer/layers/ registers each type. A module is imported the first time one of its
# types is looked up: building the pydantic models of all 51 types costs ~0.1 s at start-up, and a
# spec uses a few families. tests/layers/test_registry.py checks this table against the registrations.
TYPE_MODULES: dict[str, str] = {
    **dict.fromkeys(["Activation", "Softmax"], "activations"),
    "MultiHeadAttention": "attention",
    **dict.fromkeys(["Conv1DTranspose", "Conv2DTranspose"], "conv_transpose"),
    **dict.fromkeys(["Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
                     "SeparableConv2D"], "convolutional"),
    "Dense": "dense",
    "Lambda": "elementwise",
    "Embedding": "embedding",
    **dict.fromkeys(["Add", "Average", "Concatenate", "Maximum", "Minimum", "Multiply", "Subtract"], "merging"),
    **dict.fromkeys(["BatchNormalization", "GroupNormalization", "LayerNormalization"], "normalization"),
    **dict.fromkeys(["AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
                     "GlobalMaxPooling1D", "GlobalMaxPooling2D", "MaxPooling1D", "MaxPooling2D"], "pooling"),
    **dict.fromkeys(["GRU", "LSTM", "SimpleRNN"], "recurrent"),
    **dict.fromkeys(["Dropout", "GaussianDropout", "GaussianNoise"], "regularization"),
    **dict.fromkeys(["Flatten", "Permute", "RepeatVector", "Reshape"], "reshaping"),
    **dict.fromkeys(["Cropping1D", "Cropping2D", "UpSampling1D", "UpSampling2D", "ZeroPadding1D", "ZeroPadding2D"],
                    "resizing"),
    **dict.fromkeys(["Bidirectional", "TimeDistributed"], "wrappers"),
}


class LayerTable(Mapping[str, LayerKind]):
    """Type name -> LayerKind for every type of TYPE_MODULES; looking a type up imports its module."""

    def __init__(self) -> None:
        self.registered: dict[str, LayerKind] = {}

    def __getitem__(self, type_name: str) -> LayerKind:
        if type_name not in self.registered and type_name in TYPE_MODULES:
            import_module(f"analyzer.layers.{TYPE_MODULES[type_name]}")
        return self.registered[type_name]

    def __contains__(self, type_name: object) -> bool:
        return type_name in TYPE_MODULES

    def __iter__(self) -> Iterator[str]:
        return iter(TYPE_MODULES)

    def __len__(self) -> int:
        return len(TYPE_MODULES)

    def load_all(self) -> None:
        for module in sorted(set(TYPE_MODULES.values())):
            import_module(f"analyzer.layers.{module}")


LAYERS = LayerTable()


def register(spec_model: type[LayerSpec]) -> Callable[[H], H]:
    (type_name,) = get_args(spec_model.model_fields["type"].annotation)

    def decorator(handler: H) -> H:
        if type_name in LAYERS.registered:
            raise RuntimeError(f"duplicate registration for layer type {type_name!r}")
        if type_name not in TYPE_MODULES:
            raise RuntimeError(f"layer type {type_name!r} is missing from analyzer/layers/registry.py TYPE_MODULES")
        LAYERS.registered[type_name] = LayerKind(type_name, spec_model, handler)
        return handler

    return decorator
