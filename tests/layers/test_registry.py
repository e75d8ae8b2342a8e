"""The layer table: every type in registry.TYPE_MODULES (read off the family modules' `type: Literal[...]`
lines) is registered by the module the table names, and a type is registered once (the lazy table imports a
module on the first lookup of its types)."""

from __future__ import annotations

import pytest

from analyzer.layers import LAYERS, register
from analyzer.layers.registry import TYPE_MODULES


def test_every_module_registers_exactly_the_types_the_table_gives_it():
    LAYERS.load_all()
    assert set(LAYERS.registered) == set(TYPE_MODULES)
    for type_name, kind in LAYERS.registered.items():
        assert kind.handler.__module__ == f"analyzer.layers.{TYPE_MODULES[type_name]}", type_name
    assert len(LAYERS) == 62 and "Conv2D" in LAYERS and "Conv4D" not in LAYERS
    assert TYPE_MODULES["RMSNormalization"] == "normalization" and TYPE_MODULES["GRU"] == "recurrent"


def test_a_second_registration_is_refused():
    with pytest.raises(RuntimeError, match="duplicate registration for layer type 'Dense'"):
        register(LAYERS["Dense"].spec_model)(lambda layer, inputs, ctx: None)


def test_unknown_type_lookup_is_a_key_error():
    with pytest.raises(KeyError):
        LAYERS["Conv4D"]
    assert LAYERS.get("Conv4D") is None
