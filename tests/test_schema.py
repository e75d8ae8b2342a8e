"""`analyze schema`: the JSON Schema accepts every spec and rejects the bad-spec corpus's schema errors."""

import json
from pathlib import Path

import jsonschema
import pytest

from analyzer import cli
from analyzer.errors import NNSpecError
from analyzer.layers import LAYERS
from analyzer.schema import build_schema
from analyzer.spec.loader import load_spec
from analyzer.spec.yaml_loader import load_yaml

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "specs" / "amc").glob("*.yaml"))
BAD = ROOT / "tests" / "bad_specs"

# Chosen by their header comments: an unknown field or layer type or top-level key, a value of the
# wrong type, a missing required field (the errors a schema can see; the rest need the analyzer).
SCHEMA_ERRORS = {
    "unknown_field.yaml": "'kernel_sizes' was unexpected",
    "unknown_layer_type.yaml": "'Conv1d' is not one of",
    "unknown_top_level_key.yaml": "'layer' was unexpected",
    "missing_required_field.yaml": "'units' is a required property",
    "missing_type.yaml": "'type' is a required property",
    "missing_inputs_key.yaml": "'inputs' is a required property",
    "missing_input_shape.yaml": "'shape' is a required property",
    "wrong_type_boolean.yaml": "'yes please' is not of type 'boolean'",
    "wrong_type_rate_string.yaml": "'0.5' is not of type 'number'",
    "wrong_type_size_list.yaml": "[8] is not valid",
    "wrong_type_activation.yaml": "'relux' is not valid",
    "float_size.yaml": "2.5 is not valid",
    "symbol_float_default.yaml": "1.5 is not valid",
    "symbols_is_list.yaml": "is not of type 'object'",
    "layers_is_mapping.yaml": "is not of type 'array'",
    "layer_is_list.yaml": "['Dense', 4] is not of type 'object'",
    "input_is_string.yaml": "'x' is not of type 'object'",
    "top_level_list.yaml": "is not of type 'object'",
    "zero_size.yaml": "0 is not valid",
    "dropout_rate_out_of_range.yaml": "1.5 is greater than or equal to the maximum of 1",
}


@pytest.fixture(scope="module")
def validator():
    schema = build_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def data_of(path: Path):
    data, _ = load_yaml(path.read_text(encoding="utf-8"), str(path))
    return data


def test_cli_prints_the_schema(capsys):
    assert cli.main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == build_schema()
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert cli.main(["schema", "extra"]) == 2


def test_every_registered_layer_type_is_in_the_union():
    layer = build_schema()["$defs"]["Layer"]
    assert layer["properties"]["type"]["enum"] == sorted(LAYERS)
    assert len(layer["allOf"]) == len(LAYERS)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_spec_validates(validator, path):
    assert len(SPECS) >= 15 + 2
    errors = [e.message for e in validator.iter_errors(data_of(path))]
    assert errors == []


@pytest.mark.parametrize(("name", "message"), sorted(SCHEMA_ERRORS.items()))
def test_schema_errors_of_the_corpus_are_rejected(validator, name, message):
    path = BAD / name
    errors = [e.message for e in validator.iter_errors(data_of(path))]
    assert any(message in e for e in errors), errors
    with pytest.raises(NNSpecError):  # the analyzer rejects them too
        load_spec(path)


def test_block_uses_and_definitions(validator):
    spec = {
        "symbols": {"C": 8},
        "blocks": {"cb": {"args": {"f": None}, "layers": [{"type": "Conv1D", "filters": "f", "kernel_size": 3}]}},
        "inputs": [{"name": "x", "shape": ["C", 2]}],
        "layers": [{"block": "cb", "name": "s", "f": 4, "repeat": 2}, {"type": "Flatten"}],
    }
    assert list(validator.iter_errors(spec)) == []
    bad_use = {**spec, "layers": [{"block": "cb", "type": "Dense"}]}
    assert list(validator.iter_errors(bad_use))
    bad_definition = {**spec, "blocks": {"cb": {"layer": []}}}
    assert list(validator.iter_errors(bad_definition))


def test_a_wrapped_layer_is_any_layer_without_inputs(validator):
    """TimeDistributed / Bidirectional take a whole layer: its own fields validate (a typo in it is caught), and it
    takes no inputs of its own (the wrapper has them)."""
    def spec(inner):
        return {"symbols": {"T": 8}, "inputs": [{"name": "x", "shape": ["T", 2]}],
                "layers": [{"type": "TimeDistributed", "layer": inner}]}

    assert list(validator.iter_errors(spec({"type": "Dense", "units": 4}))) == []
    assert list(validator.iter_errors(spec({"type": "LSTM", "units": 4, "return_sequences": True}))) == []
    assert list(validator.iter_errors(spec({"type": "Dense", "unitz": 4})))
    assert list(validator.iter_errors(spec({"type": "Dense", "units": 4, "inputs": "x"})))
