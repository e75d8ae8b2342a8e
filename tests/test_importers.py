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


# ---- lifting with the model saved at other sizes (--other-size) ---------------------------------


def _tiny(length, units, features=2, after=(), name="wide", rate=None):
    """A Keras 3 Sequential config, written by hand: input (length, features), Flatten, Dense(units), `after`."""
    layers = [{"class_name": "InputLayer", "config": {"name": "signal", "batch_shape": [None, length, features]}},
              {"class_name": "Flatten", "config": {"name": "flat"}},
              {"class_name": "Dense", "config": {"name": name, "units": units}}]
    if rate is not None:
        layers.append({"class_name": "Dropout", "config": {"name": "drop", "rate": rate}})
    layers.extend({"class_name": kind, "config": {"name": kind.lower(), **config}} for kind, config in after)
    return {"class_name": "Sequential", "config": {"name": "tiny", "layers": layers}}


def _decoder(length):
    """DAE's decoder in small: (L, 2) -> Flatten -> Dense(2*L) -> Reshape((L, 2))."""
    return _tiny(length, 2 * length, after=[("Reshape", {"target_shape": [length, 2]})])


def _files(tmp_path, configs):
    paths = []
    for i, config in enumerate(configs):
        paths.append(tmp_path / f"model_{i}.json")
        paths[-1].write_text(json.dumps(config))
    return paths


def test_other_size_lifts_dense_2l_and_its_reshape(tmp_path):
    main_file, other = _files(tmp_path, [_decoder(128), _decoder(200)])
    model = import_model(main_file, ["L=signal:0"], other_sizes=[other])
    layers = {e.name: e.spec for e in model.spec.layers}
    assert sympy.expand(layers["wide"].units - 2 * L) == 0
    assert list(layers["reshape"].target_shape) == [L, 2]
    # Flatten gives 2*L; Dense(2*L): 2*L x 2*L weights + 2*L biases, 2*L x 2*L MACs; Reshape is free
    assert sympy.expand(model.report.total.params - (4 * L**2 + 2 * L)) == 0
    assert sympy.expand(model.report.total.macs - 4 * L**2) == 0
    assert model.report.at(L=1000).value(model.report.total.params) == 4_002_000
    messages = "\n".join(model.messages())
    assert f"lifted: layer 'wide' (Dense): units 256 becomes 2*L (fitted to 400 at L = 200 in {other})" in messages
    assert "layer 'reshape' (Reshape): target_shape [128, 2] becomes [L, 2]" in messages
    assert "units: 2*L}  # the model has units 256 at L = 128" in model.yaml
    assert "might follow" not in messages  # no hints once the sizes are known


def test_single_file_keeps_the_constants_and_hints_at_the_reshape(tmp_path):
    (main_file,) = _files(tmp_path, [_decoder(128)])
    model = import_model(main_file, ["L=signal:0"])
    # Dense(256) on the 2*L flattened values: 2*L x 256 weights + 256 biases
    assert sympy.expand(model.report.total.params - (512 * L + 256)) == 0
    hints = [n for n in model.notes if n.startswith("might follow a symbol")]
    # the Reshape sets axis 0 (before the features axis) to 128 = L; the Dense's 256 is on the last axis: no hint
    assert len(hints) == 1 and "layer 'reshape' (Reshape): target_shape[0] = 128 is L at L = 128" in hints[0]
    assert "--other-size" in hints[0]


def test_hint_for_a_multiple_of_the_symbol(tmp_path):
    (main_file,) = _files(tmp_path, [_tiny(64, 12, after=[("RepeatVector", {"n": 32})])])
    hints = [n for n in import_model(main_file, ["L=signal:0"]).notes if n.startswith("might follow")]
    assert len(hints) == 1 and "layer 'repeatvector' (RepeatVector): n = 32 is L/2 at L = 64" in hints[0]


def test_two_symbols_need_a_file_per_symbol(tmp_path):
    # input (T, F), Dense(3*T + F - 1), RepeatVector(T): files at (T, F) = (4, 3), (10, 3), (4, 7)
    def config(t, f):
        return _tiny(t, 3 * t + f - 1, features=f, after=[("RepeatVector", {"n": t})])

    main_file, by_t, by_f = _files(tmp_path, [config(4, 3), config(10, 3), config(4, 7)])
    model = import_model(main_file, ["T=signal:0", "F=signal:1"], other_sizes=[by_t, by_f])
    T, F = make_symbol("T"), make_symbol("F")
    layers = {e.name: e.spec for e in model.spec.layers}
    assert sympy.expand(layers["wide"].units - (3 * T + F - 1)) == 0
    assert layers["repeatvector"].n == T
    units = 3 * T + F - 1  # Dense on T*F values: T*F x units weights + units biases
    assert sympy.expand(model.report.total.params - (T * F * units + units)) == 0
    assert model.report.at(T=100, F=5).value(model.report.total.params) == 500 * 304 + 304
    with pytest.raises(NNSpecError, match=r"do not tell how sizes depend on T, F") as error:
        import_model(main_file, ["T=signal:0", "F=signal:1"], other_sizes=[by_t])
    assert "2 other files" in str(error.value)


def test_other_size_refuses_a_size_no_affine_function_fits(tmp_path):
    # 256, 512, 1000 at L = 128, 256, 300: 2*L fits the first two, not the third (600)
    files = _files(tmp_path, [_tiny(128, 256), _tiny(256, 512), _tiny(300, 1000)])
    with pytest.raises(NNSpecError) as error:
        import_model(files[0], ["L=signal:0"], other_sizes=files[1:])
    message = str(error.value)
    assert "layer 'wide' (Dense): units is 256 at L = 128" in message
    assert "1000 at L = 300" in message and "not affine" in message


def test_other_size_fraction_is_lifted_and_flagged(tmp_path):
    main_file, other = _files(tmp_path, [_tiny(128, 64), _tiny(200, 100)])
    model = import_model(main_file, ["L=signal:0"], other_sizes=[other])
    # Dense(L/2) on 2*L values: 2*L x L/2 + L/2 = L**2 + L/2 params
    assert sympy.expand(model.report.total.params - (L**2 + L / 2)) == 0
    assert "units 64 becomes L/2" in "\n".join(model.messages())
    assert "fractions: check it" in "\n".join(model.messages())
    assert "L/2 is an integer" in "\n".join(model.report.domain())


def test_other_size_field_left_out_as_default(tmp_path):
    # ZeroPadding1D(padding=L - 127): 1 at L = 128 (the default, so the converter leaves it out), 3 at L = 130
    def config(length):
        return _tiny(length, 4, after=[("Reshape", {"target_shape": [2, 2]}),
                                       ("ZeroPadding1D", {"padding": length - 127})])

    main_file, other = _files(tmp_path, [config(128), config(130)])
    model = import_model(main_file, ["L=signal:0"], other_sizes=[other])
    row = model.report.layers["zeropadding1d"]
    assert sympy.expand(row.output_shape[0] - (2 + 2 * (L - 127))) == 0


def test_other_size_structure_errors(tmp_path):
    main_file, retyped, shorter, wider, renamed = _files(tmp_path, [
        _decoder(128),
        _tiny(200, 400, after=[("RepeatVector", {"n": 2})]),
        _tiny(200, 400),
        _tiny(200, 400, features=3, after=[("Reshape", {"target_shape": [200, 2]})]),
        _tiny(200, 400, name="dense_7", after=[("Reshape", {"target_shape": [200, 2]})]),
    ])
    with pytest.raises(NNSpecError, match=r"layer 3 is 'reshape' \(Reshape\) in .* but 'repeatvector' "
                                          r"\(RepeatVector\) there: not the same architecture"):
        import_model(main_file, ["L=signal:0"], other_sizes=[retyped])
    with pytest.raises(NNSpecError, match=r"model_2.json: 2 layers, where .*model_0.json has 3: not the same"):
        import_model(main_file, ["L=signal:0"], other_sizes=[shorter])
    with pytest.raises(NNSpecError, match=r"input 'signal' axis 1 is 3 there and 2 in .*no --symbol names it"):
        import_model(main_file, ["L=signal:0"], other_sizes=[wider])
    # Keras numbers layer names per session: the same layer under another name is the same architecture
    model = import_model(main_file, ["L=signal:0"], other_sizes=[renamed])
    assert sympy.expand(model.report.total.params - (4 * L**2 + 2 * L)) == 0


def test_other_size_refuses_a_float_that_differs(tmp_path):
    main_file, other = _files(tmp_path, [_tiny(128, 256, rate=0.2), _tiny(200, 400, rate=0.5)])
    with pytest.raises(NNSpecError, match=r"layer 'drop' \(Dropout\): rate is 0.2 in .* 0.5 in .*only integer sizes "
                                          r"may differ"):
        import_model(main_file, ["L=signal:0"], other_sizes=[other])


def test_other_size_needs_a_symbol_and_another_size(tmp_path, capsys):
    main_file, same = _files(tmp_path, [_decoder(128), _decoder(128)])
    with pytest.raises(UsageError, match=r"--other-size needs --symbol"):
        import_model(main_file, other_sizes=[same])
    with pytest.raises(NNSpecError, match=r"do not tell how sizes depend on L .*L = 128; .*L = 128\)"):
        import_model(main_file, ["L=signal:0"], other_sizes=[same])
    assert main(["convert", str(main_file), "--other-size", str(same)]) == 2
    assert "--other-size needs --symbol" in capsys.readouterr().err
    assert main(["specs/scnn.yaml", "--other-size", str(same)]) == 2
    assert "--other-size goes with a model file" in capsys.readouterr().err


def test_check_other_sizes_refuses_a_rewrite_the_other_file_contradicts():
    from analyzer.importers.document import InputDoc, LayerDoc, SpecDocument
    from analyzer.importers.lift import OtherSize, check_other_sizes

    lifted = SpecDocument("m", [InputDoc("x", ["L", 2])], [LayerDoc("Reshape", "r", {"target_shape": [L - 1, 2]})], ["r"],
                          source="a.json")
    saved = SpecDocument("m", [InputDoc("x", [200, 2])], [LayerDoc("Reshape", "r", {"target_shape": [200, 2]})], ["r"])
    check_other_sizes(lifted, [OtherSize("b.json", saved)], [{L: 201}])  # L - 1 = 200 there: fine
    with pytest.raises(NNSpecError, match=r"b.json: layer 'r' \(Reshape\): the lifted target_shape \[L - 1, 2\] is "
                                          r"\[199, 2\] at L = 200, but that file has \[200, 2\]"):
        check_other_sizes(lifted, [OtherSize("b.json", saved)], [{L: 200}])


def test_cli_convert_with_other_size(tmp_path, capsys):
    main_file, other = _files(tmp_path, [_decoder(128), _decoder(200)])
    target = tmp_path / "decoder.yaml"
    assert main(["convert", str(main_file), "--symbol", "L=signal:0", "--other-size", str(other), "-o", str(target)]) == 0
    assert "lifted: layer 'wide' (Dense): units 256 becomes 2*L" in capsys.readouterr().err
    assert analyze(target).at(L=1000).value(analyze(target).total.params) == 4_002_000
    assert main([str(main_file), "--symbol", "L=signal:0", "--other-size", str(other), "--set", "L=1000"]) == 0
    assert "4*L**2 + 2*L = 4,002,000" in capsys.readouterr().out


def _keras2_layer(class_name, name, config, inbound):
    return {"class_name": class_name, "name": name, "config": {"name": name, **config},
            "inbound_nodes": [[[source, 0, index, {}] for source, index in inbound]] if inbound else []}


def test_states_and_initial_state_of_a_keras2_functional_model():
    """An encoder LSTM(4) with return_state starts a decoder LSTM(4) (Keras 2 stores `initial_state` as more
    inbound tensors: output 1 and 2 of the encoder); the encoder's state_c is also a model output. By hand:
    encoder 4·4·(3 + 4 + 1) = 128 params, 5 steps · 16 · (3 + 4) = 560 MACs; decoder 4·4·(2 + 4 + 1) = 112,
    6 · 16 · (2 + 4) = 576; Dense(2) 4·2 + 2 = 10, 6 · 4 · 2 = 48: 250 params, 1,184 MACs."""
    layers = [
        _keras2_layer("InputLayer", "src", {"batch_input_shape": [None, 5, 3]}, []),
        _keras2_layer("InputLayer", "tgt", {"batch_input_shape": [None, 6, 2]}, []),
        _keras2_layer("LSTM", "encoder", {"units": 4, "return_state": True}, [("src", 0)]),
        _keras2_layer("LSTM", "decoder", {"units": 4, "return_sequences": True},
                      [("tgt", 0), ("encoder", 1), ("encoder", 2)]),
        _keras2_layer("Dense", "dense", {"units": 2}, [("decoder", 0)]),
    ]
    config = {"class_name": "Functional", "config": {
        "name": "seq2seq", "layers": layers, "input_layers": [["src", 0, 0], ["tgt", 0, 0]],
        "output_layers": [["dense", 0, 0], ["encoder", 0, 2]]}}
    model = import_model(_write(config, "seq2seq.json"))
    decoder = next(layer for layer in model.document.layers if layer.name == "decoder")
    assert decoder.inputs == ["tgt", "encoder:1", "encoder:2"]
    assert model.document.outputs == ["dense", "encoder:2"]
    report = model.report
    assert report.value(report.total.params) == 250
    assert report.value(report.total.macs) == 1184
    assert report.value(report.layers["decoder"].counts.params) == 112
    assert report.layers["encoder"].more_outputs == ((4,), (4,))


def test_output_of_a_layer_that_is_not_there_is_refused():
    layers = [_keras2_layer("InputLayer", "src", {"batch_input_shape": [None, 5, 3]}, []),
              _keras2_layer("LSTM", "encoder", {"units": 4, "return_state": True}, [("src", 0)])]
    config = {"class_name": "Functional", "config": {
        "name": "m", "layers": layers, "input_layers": [["src", 0, 0]], "output_layers": [["missing", 0, 1]]}}
    with pytest.raises(NNSpecError, match="model output 'missing' is not a layer of the model"):
        import_model(_write(config, "m.json"))
