"""Keras importer and lifting, with no framework installed.

The Keras 3 fixtures are `model.to_json()` of real Keras 3.15.1 models
(tests/fixtures/keras/make_keras3.py); the Keras 2 ones are written from the Keras 2 config
schema (make_keras2.py says how). The expected numbers are the founding specs' formulas
(themselves checked against Keras and PyTorch in test_founding_models.py and the cross-check)
and hand calculations written out below.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import sympy

from analyzer import analyze
from analyzer.cli import main
from analyzer.errors import NNSpecError, UsageError
from analyzer.importers import import_model, is_model_file, parse_symbol_option
from analyzer.importers.document import scalar_text
from analyzer.importers.lift import fit_target
from analyzer.spec.loader import parse_spec
from analyzer.symbolic import floor_div, make_symbol

FIXTURES = Path(__file__).parent / "fixtures" / "keras"
L = make_symbol("L")
CLASSES = make_symbol("classes")
PET_SYMBOL = "L=input1:1,input2:0,input3:0"


def founding(spec: str, classes: int = 11):
    """The founding spec's totals with classes fixed (the Keras files hard-code 11 classes)."""
    total = analyze(spec).total
    return {q: sympy.expand(getattr(total, q).subs(CLASSES, classes))
            for q in ("params", "trainable_params", "non_trainable_params", "macs", "flops")}


def totals(model):
    total = model.report.total
    return {q: sympy.expand(getattr(total, q)) for q in ("params", "trainable_params", "non_trainable_params", "macs", "flops")}


@pytest.mark.parametrize(("file", "symbol", "spec"), [
    ("scnn_keras3.json", "L=input_1:1", "specs/scnn.yaml"),
    ("scnn_keras2_sequential.json", "L=reshape_1_input:1", "specs/scnn.yaml"),
    ("pet_cgdnn_keras3.json", PET_SYMBOL, "specs/pet_cgdnn.yaml"),
    ("pet_cgdnn_keras2.json", PET_SYMBOL, "specs/pet_cgdnn.yaml"),
])
def test_founding_models_lift_to_the_founding_formulas(file, symbol, spec):
    model = import_model(FIXTURES / file, [symbol])
    assert totals(model) == founding(spec)


def test_pet_cgdnn_reshape_becomes_l_minus_11():
    model = import_model(FIXTURES / "pet_cgdnn_keras3.json", [PET_SYMBOL])
    assert list(model.spec.layers[[e.name for e in model.spec.layers].index("reshape4")].spec.target_shape) == [L - 11, 25]
    messages = "\n".join(model.messages())
    assert "layer 'reshape4' (Reshape): target_shape (117, 25) becomes (L - 11, 25)" in messages
    assert "reshape4, target_shape: [L - 11, 25]}  # the model has (117, 25) at L = 128" in model.yaml


def test_per_layer_params_match_the_keras_summary():
    # The founding document's Keras summary at L=128 (also test_founding_models.py).
    model = import_model(FIXTURES / "scnn_keras3.json")
    report = model.report
    expected = {"conv1d_1": 4224, "batch_normalization_1": 512, "separable_conv1d_1": 9280,
                "batch_normalization_2": 256, "dense_1": 90123, "activation_1": 0}
    assert {n: report.value(report.layers[n].counts.params) for n in expected} == expected
    assert report.value(report.total.params) == 104_395


def test_unlifted_model_keeps_its_sizes_and_warns_about_nothing():
    model = import_model(FIXTURES / "pet_cgdnn_keras3.json")
    assert model.document.symbols == []
    assert model.report.value(model.report.total.params) == 71_487  # Keras 3 count_params() at L=128
    assert model.findings == []


def test_symbol_on_one_input_only_points_to_the_others():
    model = import_model(FIXTURES / "pet_cgdnn_keras3.json", ["L=input1:1"])
    notes = "\n".join(model.notes)
    assert "--symbol L=input1:1,input2:0,input3:0" in notes


def test_small_sequential_by_hand():
    # input (100, 3); Conv1D(16, 5, strides 2, same) -> (50, 16); MaxPooling1D(2) -> (25, 16);
    # LSTM(32, return_sequences) -> (25, 32); TimeDistributed(Dense(8)) -> (25, 8); GAP -> (8,); Dense(4).
    model = import_model(FIXTURES / "small_sequential_keras3.json")
    report = model.report
    params = (5 * 3 * 16 + 16) + (4 * 32 * (16 + 32) + 4 * 32) + (32 * 8 + 8) + (8 * 4 + 4)
    macs = 50 * 16 * 5 * 3 + 25 * 4 * 32 * (16 + 32) + 25 * 8 * 32 + 4 * 8
    assert params == 6828  # Keras 3.15.1 count_params() of the same model
    assert (report.value(report.total.params), report.value(report.total.macs)) == (params, macs)
    assert [row.type for row in report.layers.values()][1:] == [
        "Conv1D", "MaxPooling1D", "LSTM", "TimeDistributed", "GlobalAveragePooling1D", "Dense"]


def test_open_dimension_becomes_a_symbol():
    config = json.loads((FIXTURES / "small_sequential_keras3.json").read_text())
    config["config"]["layers"][0]["config"]["batch_shape"] = [None, None, 3]
    path = _write(config, "open.json")
    model = import_model(path, values={"T": 200}, symbols=["T=signal:0"])
    T = make_symbol("T")
    assert model.spec.inputs[0].shape == (T, 3)
    assert model.document.symbols[0].default == 200
    report = model.report
    # conv: ceil(T/2) positions x 16 x 15; pool: floor(ceil(T/2)/2) steps of the LSTM and the Dense(8)
    conv_steps = floor_div(T - 1, 2) + 1
    steps = floor_div(conv_steps - 2, 2) + 1
    expected = conv_steps * 16 * 15 + steps * 4 * 32 * 48 + steps * 8 * 32 + 32
    assert sympy.expand(report.total.macs - expected) == 0
    auto = import_model(path)
    assert [s.name for s in auto.document.symbols] == ["signal_0"]
    assert "open in the model" in auto.notes[0]


def test_keras_file_is_read_from_the_zip(tmp_path):
    path = tmp_path / "pet.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", "{}")
        archive.writestr("config.json", (FIXTURES / "pet_cgdnn_keras3.json").read_text())
    assert totals(import_model(path, [PET_SYMBOL])) == founding("specs/pet_cgdnn.yaml")


def _write(config, name, tmp=None):
    import tempfile

    folder = Path(tmp or tempfile.mkdtemp())
    path = folder / name
    path.write_text(json.dumps(config))
    return path


def _pet_config():
    return json.loads((FIXTURES / "pet_cgdnn_keras3.json").read_text())


def test_unsupported_class_names_the_layer_and_class():
    config = _pet_config()
    layer = next(item for item in config["config"]["layers"] if item["name"] == "conv1_2")
    layer["class_name"] = "CustomAttention"
    with pytest.raises(NNSpecError) as error:
        import_model(_write(config, "bad.json"))
    assert "layer 'conv1_2' (CustomAttention): Keras class 'CustomAttention' is not supported by nnspec" in str(error.value)


def test_lambda_of_code_is_refused():
    config = _pet_config()
    layer = next(item for item in config["config"]["layers"] if item["name"] == "lambda_1")
    layer["config"]["function"] = {"class_name": "__lambda__", "config": {"code": "4wEAAA..."}}
    with pytest.raises(NNSpecError, match="layer 'lambda_1' \\(Lambda\\): a Lambda of Python code"):
        import_model(_write(config, "lambda.json"))


def test_shared_layer_is_refused():
    config = json.loads((FIXTURES / "pet_cgdnn_keras2.json").read_text())
    layer = next(item for item in config["config"]["layers"] if item["name"] == "fc2")
    layer["inbound_nodes"].append(layer["inbound_nodes"][0])
    with pytest.raises(NNSpecError, match="layer 'fc2' \\(Dense\\): is called 2 times"):
        import_model(_write(config, "shared.json"))


def test_channels_first_is_refused():
    config = _pet_config()
    layer = next(item for item in config["config"]["layers"] if item["name"] == "conv1_1")
    layer["config"]["data_format"] = "channels_first"
    with pytest.raises(NNSpecError, match="channels-last"):
        import_model(_write(config, "cf.json"))


def test_symbol_errors():
    with pytest.raises(NNSpecError, match="no input 'input9'"):
        import_model(FIXTURES / "pet_cgdnn_keras3.json", ["L=input9:0"])
    with pytest.raises(NNSpecError, match="no axis 3"):
        import_model(FIXTURES / "pet_cgdnn_keras3.json", ["L=input1:3"])
    with pytest.raises(NNSpecError, match="differ in size"):
        import_model(FIXTURES / "pet_cgdnn_keras3.json", ["L=input1:0,input2:0"])
    with pytest.raises(UsageError):
        parse_symbol_option("L=input1")
    assert parse_symbol_option("L = input1:1, input2:0").dims == (("input1", 1), ("input2", 0))


def test_fit_target_by_hand():
    one, two, eight, twenty_five = (sympy.Integer(n) for n in (1, 2, 8, 25))
    values = {L: 128}
    assert fit_target((L - 11, one, twenty_five), [117, 25], values) == (L - 11, 25)
    assert fit_target((2 * L,), [128, 2], values) == (L, 2)  # a split: 256 = 128 x 2
    assert fit_target((L, two), [2, 128], values) == (2, L)
    assert fit_target((L, sympy.Integer(128)), [128 * 128], values) == (128 * L,)
    strided = floor_div(L - 1, 2) + 1
    assert fit_target((strided, eight), [64, 8], values) == (strided, 8)
    assert fit_target((L, L), [64, 256], values).startswith("ambiguous: (L**2/256, 256) or (64, L**2/64)")


def test_written_spec_reads_back_with_the_same_formulas():
    model = import_model(FIXTURES / "pet_cgdnn_keras3.json", [PET_SYMBOL])
    again = analyze(model.yaml)
    assert sympy.expand(again.total.macs - model.report.total.macs) == 0
    assert sympy.expand(again.total.params - model.report.total.params) == 0


@pytest.mark.parametrize("text", ["relu", "true", "null", "1e-3", "12", "a b", "L - 11", "-L + 3", "x,y", "#a", "on"])
def test_scalars_read_back(text):
    layer = f"{{type: Activation, activation: linear, description: {scalar_text(text)}}}"
    doc = parse_spec(f"inputs: [{{shape: [1]}}]\nlayers: [{layer}]\n")
    assert doc.layers[0].spec.description == text


def test_model_files_by_extension():
    assert all(is_model_file(f"m{ext}") for ext in (".keras", ".json", ".h5", ".onnx", ".KERAS"))
    assert not is_model_file("specs/scnn.yaml")


def test_cli_analyze_model_file(capsys):
    assert main([str(FIXTURES / "pet_cgdnn_keras3.json"), "--symbol", PET_SYMBOL, "--set", "L=1024"]) == 0
    out, err = capsys.readouterr()
    # README: PET-CGDNN at L=1024 with 11 classes: 73,279 params, 70,236,507 MACs
    assert "2*L + 71231 = 73,279" in out
    assert "69329*L - 756389 = 70,236,507" in out
    assert "becomes (L - 11, 25)" in err


def test_cli_convert_writes_a_spec(tmp_path, capsys):
    target = tmp_path / "pet.yaml"
    assert main(["convert", str(FIXTURES / "pet_cgdnn_keras2.json"), "-o", str(target), "--symbol", PET_SYMBOL]) == 0
    assert "wrote" in capsys.readouterr().err
    text = target.read_text()
    assert text.count("\n  - {type: ") == 20  # one line per layer
    report = analyze(target)
    assert report.at(L=1024).value(report.total.params) == 73_279


def test_cli_errors(capsys):
    assert main(["specs/scnn.yaml", "--symbol", "L=input_1:1"]) == 2
    assert "--symbol names dimensions of a model file" in capsys.readouterr().err
    assert main(["convert", str(FIXTURES / "scnn_keras3.json"), "--symbol", "L=nope:1"]) == 2
    assert "no input 'nope'" in capsys.readouterr().err
    assert main(["convert", "specs/scnn.yaml"]) == 2
    assert main([str(FIXTURES / "missing.keras")]) == 2
    assert "no such file" in capsys.readouterr().err
