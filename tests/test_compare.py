"""`analyze compare`: one row per spec, every format, ignored and out-of-domain symbols.

Expected numbers are Keras 3.15.1 count_params() (see tests/test_amc_zoo.py) or worked by hand here.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from analyzer.cli import main
from analyzer.compare import compare, render_rows
from analyzer.errors import UsageError

CNN1, GRU2, PF, MCNET = "specs/amc/cnn1.yaml", "specs/amc/gru2.yaml", "specs/amc/1dcnn_pf.yaml", "specs/amc/mcnet.yaml"
VGG16 = "specs/vgg16.yaml"


def test_rows_at_the_defaults():
    rows = compare([CNN1, GRU2])
    assert [r.name for r in rows] == ["CNN1", "GRU2"]
    assert [r.value("params") for r in rows] == [1_592_383, 151_179]  # Keras 3 count_params()
    assert rows[0].values == {"L": 128, "classes": 11}
    # GRU2: 2 GRUs over L steps, 3*128*(2 + 128) and 3*128*(128 + 128) MACs per step, and Dense(128 -> 11)
    assert rows[1].value("macs") == 128 * (3 * 128 * 130 + 3 * 128 * 256) + 128 * 11
    assert rows[1].order("params") == "O(1)" and rows[1].order("flops") == "O(L)"


def test_largest_layer_by_hand():
    # CNN1 at L=128: conv2 has 50*(L - 7) = 6,050 outputs of a 2*8*50 = 800-term dot product, a bias and a
    # relu: 6,050 * (2*800 - 1 + 1 + 1) = 9,686,050 FLOPs; dense1 has 256 outputs of 6,050 terms (~3.1M).
    largest = compare([CNN1])[0].largest()
    assert (largest.name, largest.type, largest.flops) == ("conv2", "Conv2D", 9_686_050)


def test_set_applies_to_each_spec_that_declares_the_symbol():
    rows = compare([CNN1, VGG16], {"L": 1024, "classes": 24})
    assert rows[0].value("params") == 13_064_524  # Keras 3 at L=1024, classes=24
    assert rows[1].ignored == ("L",) and rows[1].values["classes"] == 24 and rows[1].valid
    assert rows[1].order("params") == "-"  # VGG16 has no L
    text = render_rows(rows, "table")
    assert "VGG16: --set L ignored" in text


def test_a_value_outside_a_domain_marks_the_row_and_keeps_the_table():
    rows = compare([CNN1, PF], {"L": 100})  # 1DCNN-PF needs L >= 102 (tests/test_amc_zoo.py)
    assert rows[0].valid and not rows[1].valid
    assert "L >= 102" in rows[1].invalid
    for fmt in ("table", "markdown", "csv", "latex", "json"):
        assert "not valid at L=100" in render_rows(rows, fmt).replace("$", "").replace(r"\mathit{classes}", "classes")
    # formulas do not depend on the values: still listed
    assert "173504" in render_rows(rows, "table", "formulas") and "173504" in render_rows(rows, "json")


def test_a_symbol_no_spec_declares_is_an_error():
    with pytest.raises(UsageError, match="no spec declares"):
        compare([CNN1], {"Lx": 3})


def test_sort():
    rows = compare([CNN1, GRU2, MCNET], sort="params")
    assert [r.name for r in rows] == ["MCNet", "GRU2", "CNN1"]  # 121,611 < 151,179 < 1,592,383 (Keras)


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv", "latex", "json"])
def test_cli_every_format(fmt, capsys):
    assert main(["compare", CNN1, GRU2, PF, "--set", "L=1024", "--set", "classes=24", "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert "13,064,524" in out or "13064524" in out or "13{,}064{,}524" in out


def test_cli_csv_and_json_parse(capsys):
    main(["compare", CNN1, GRU2, "--format", "csv"])
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["model"], int(r["params"]), r["params_order_in_L"]) for r in table] == [
        ("CNN1", 1_592_383, "O(L)"), ("GRU2", 151_179, "O(1)")]
    main(["compare", CNN1, "--format", "json"])
    model = json.loads(capsys.readouterr().out)["models"][0]
    assert model["params"] == {"expr": "12800*L + 257*classes - 48844", "value": 1_592_383}  # 50*(L-7)*256 + ... by hand


def test_cli_latex_is_a_booktabs_table(capsys):
    main(["compare", CNN1, PF, VGG16, "--set", "L=100", "--format", "latex"])
    out = capsys.readouterr().out
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}", r"\end{tabular}", r"\end{table}"):
        assert rule in out
    assert r"\mathit{classes}" in out and "1{,}233{,}983" in out  # CNN1 at L=100: 12800*100 + 257*11 - 48844
    assert out.count(r"\begin{tabular}") == out.count(r"\end{tabular}")
    assert "-{}-set" in out and ">=" not in out  # note text escaped: no en-dash, no OT1 '>' glyph swap


def test_cli_errors_exit_2(capsys):
    assert main(["compare", CNN1, "--set", "Lx=3"]) == 2
    assert "no spec declares" in capsys.readouterr().err
    assert main(["compare", "specs/amc/missing.yaml"]) == 2


def test_cli_analyze_spec_still_works(capsys):
    assert main([CNN1]) == 0
    assert "1,592,383" in capsys.readouterr().out


# -- compare --training (analyzer/compare_training.py) ----------------------------------------------------------

def _two_specs(tmp_path):
    """x (5,) -> Dense(4, relu) -> Dense(3), and x (5,) -> Dense(3); SGD, B = 8, by hand (tests/test_training_cli.py):
    the first: forward 544, backward 753, optimizer 78, step 1,375; the second (no input gradient): forward
    8·(3·9 + 3) = 240, grad weight 5·3·15 + 3·7 = 246, SGD 2·18 = 36, step 522. And a Conv1D(k 4) over L = 2
    samples: out of its domain."""
    from tests.conftest import spec_text

    paths = []
    for name, inputs, layers, symbols in (
            ("two", [5], [{"type": "Dense", "name": "d1", "units": 4, "activation": "relu"},
                          {"type": "Dense", "name": "d2", "units": 3}], None),
            ("one", [5], [{"type": "Dense", "name": "d", "units": 3}], None),
            ("conv", [["L", 2]], [{"type": "Conv1D", "name": "c", "filters": 2, "kernel_size": 4}],
             {"L": {"default": 8}})):
        path = tmp_path / f"{name}.yaml"
        path.write_text(spec_text(inputs, layers, symbols))
        paths.append(str(path))
    return paths


def test_training_rows_by_hand(tmp_path):
    from analyzer.compare_training import compare_training

    two, one, conv = _two_specs(tmp_path)
    rows = compare_training([two, one, conv], {"B": 8, "N": 20, "L": 2}, optimizer="sgd")
    keys = ("forward", "backward", "optimizer", "flops", "epoch_steps", "epoch_flops")
    assert [rows[0].value(k) for k in keys] == [544, 753, 78, 1375, 3, 3457]
    # the second's backward 5·3·(2B - 1) + 3·(B - 1) = 33B - 18; an epoch of 20 at B = 8: 2 steps of 8 and one
    # of 4, 4·30 + (33·4 - 18) + 36 = 270
    assert [rows[1].value(k) for k in keys] == [240, 246, 36, 522, 3, 2 * 522 + 270]
    assert rows[0].ignored == ("L",) and rows[0].values == {"B": 8, "N": 20}
    assert not rows[2].valid and "valid only for L >= 4" in rows[2].invalid  # a kernel of 4 needs 4 positions
    assert rows[0].ratio() == f"{1375 / 544:.2f}x"


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv", "latex", "json"])
def test_cli_training_every_format(tmp_path, capsys, fmt):
    two, one, _ = _two_specs(tmp_path)
    assert main(["compare", two, one, "--training", "--optimizer", "sgd", "--set", "B=8", "--format", fmt]) == 0
    out = capsys.readouterr().out
    if fmt == "json":
        models = json.loads(out)["models"]
        assert [m["flops"]["value"] for m in models] == [1375, 522] and models[0]["flops"]["expr"] == "167*B + 39"
        assert models[1]["backward_flops"] == {"expr": "33*B - 18", "value": 246}  # 5·3·(2B - 1) + 3·(B - 1)
    elif fmt == "csv":
        table = list(csv.DictReader(io.StringIO(out)))
        assert [(r["model"], r["forward"], r["optimizer"], r["flops"]) for r in table] == [
            ("test", "544", "78", "1375"), ("test", "240", "36", "522")]
    else:
        sep = "{,}" if fmt == "latex" else ","
        assert f"1{sep}375" in out and "522" in out and "Step/forward" in out


def test_cli_training_errors_exit_2(tmp_path, capsys):
    two, _, _ = _two_specs(tmp_path)
    assert main(["compare", two, "--training", "--set", "Q=1"]) == 2
    assert "no spec declares the symbol 'Q'" in capsys.readouterr().err
    assert main(["compare", two, "--optimizer", "sgd"]) == 2
    assert "go with --training" in capsys.readouterr().err
    assert main(["compare", two, "--training", "--dtype", "float64"]) == 2
    assert "--dtype float64: unknown dtype" in capsys.readouterr().err
    assert main(["compare", two, "--training", "--set", "B=0"]) == 2
    assert "--set B=0 is below the minimum 1 of the batch size B" in capsys.readouterr().err


# -- model files: anything `analyze` reads (analyzer.compare.load_input) -----------------------------------------

LLAMA_JSON, MISTRAL_JSON = "tests/fixtures/hf/llama-2-7b.json", "tests/fixtures/hf/mistral-7b-v0.1.json"
# Mistral-7B-v0.1 by hand: 32 layers, d = 4096, I = 14336, 32 query heads and 8 key/value heads of head_dim 128,
# vocab 32000, untied. Per layer: q, o 2·4096² = 33,554,432; k, v 2·4096·1024 = 8,388,608; MLP 3·4096·14336 =
# 176,160,768; 2 RMSNorms 2·4096 = 8,192: 218,112,000, times 32 = 6,979,584,000. Embedding and LM head 2·32000·4096 =
# 262,144,000, the final norm 4,096: 7,241,732,096, the published figure.
MISTRAL_PARAMS = 32 * (2 * 4096**2 + 2 * 4096 * 1024 + 3 * 4096 * 14336 + 2 * 4096) + 2 * 32000 * 4096 + 4096
LLAMA_PARAMS = 6_738_415_616  # Llama-2-7B's published figure (tests/layers/test_transformer.py by hand)


def test_two_hugging_face_configs(capsys):
    assert MISTRAL_PARAMS == 7_241_732_096
    rows = compare([LLAMA_JSON, MISTRAL_JSON])
    assert [(r.name, r.value("params")) for r in rows] == [("llama", LLAMA_PARAMS), ("mistral", MISTRAL_PARAMS)]
    # the difference per layer: the MLP 3·4096·(14336 - 11008) = 40,894,464 more, k and v 2·4096·(1024 - 4096) =
    # 25,165,824 fewer: 15,728,640, times 32 = 503,316,480
    assert MISTRAL_PARAMS - LLAMA_PARAMS == 32 * (3 * 4096 * 3328 - 2 * 4096 * 3072) == 503_316_480
    assert main(["compare", LLAMA_JSON, MISTRAL_JSON, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [m["params"]["value"] for m in data["models"]] == [LLAMA_PARAMS, MISTRAL_PARAMS]
    assert data["difference"]["of"] == "mistral - llama" and data["difference"]["params"] == 503_316_480
    assert main(["compare", LLAMA_JSON, MISTRAL_JSON, "--show", "values"]) == 0
    table = capsys.readouterr().out
    assert "6,738,415,616" in table and "7,241,732,096" in table
    line = next(line for line in table.splitlines() if line.startswith("mistral - llama"))
    assert line.split()[3:5] == ["+503,316,480", "+503,316,480"]  # params, trainable


def test_two_configs_at_one_token_differ_by_their_weights(capsys):
    # At T = 1 a prefill does one MAC per weight except the embedding lookup (the same in both) and the norms
    # (none), and the attention of one token over itself (2·32·4096 MACs in each: Mistral's window does not bite),
    # so the MACs differ exactly as the params: 503,316,480.
    rows = compare([LLAMA_JSON, MISTRAL_JSON], {"T": 1})
    assert rows[1].value("macs") - rows[0].value("macs") == 503_316_480
    assert main(["compare", LLAMA_JSON, MISTRAL_JSON, "--set", "T=1", "--format", "markdown", "--show", "values"]) == 0
    assert "| *mistral - llama* | +503,316,480 | +503,316,480 | +503,316,480 |" in capsys.readouterr().out


def test_a_config_and_its_spec_compare_equal_in_decode():
    # specs/llm/llama.yaml's defaults are Llama-2-7B: the config and the spec give one row each, equal. One token
    # after 4,095 cached (tests/test_phases.py by hand): 32·(4·4096² + 3·4096·11008 + 2·32·128·4096) + 32000·4096
    rows = compare([LLAMA_JSON, "specs/llm/llama.yaml"], {"P": 4095}, phase="decode")
    expected = 32 * (4 * 4096**2 + 3 * 4096 * 11008 + 2 * 32 * 128 * 4096) + 32000 * 4096
    assert [r.value("macs") for r in rows] == [expected, expected]
    assert rows[0].values["T"] == 1 and rows[0].values["P"] == 4095


def test_set_converts_a_config_at_its_values():
    # --set applies to a config as to a spec: Llama-2-7B with kv=8 (a GQA variant), by hand k, v 2·4096·1024 per layer
    rows = compare([LLAMA_JSON, CNN1], {"kv": 8, "L": 256})
    assert rows[0].value("params") == LLAMA_PARAMS - 32 * 2 * 4096 * (4096 - 1024)
    assert rows[0].ignored == ("L",) and rows[1].ignored == ("kv",)


def test_a_keras_model_file():
    # the Keras 3 config of SCNN (tests/fixtures/keras) and the spec: same params (Keras count_params 104,395)
    rows = compare(["tests/fixtures/keras/scnn_keras3.json", "specs/scnn.yaml"])
    assert [r.value("params") for r in rows] == [104_395, 104_395]


def test_an_onnx_model_file(tmp_path):
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    def weight(name, *dims):
        return numpy_helper.from_array(np.zeros(dims, dtype=np.float32), name)

    # x (N, 2, L) -> Conv(8, k 3, pads 1 1) -> GlobalAveragePool -> Flatten -> Gemm(4)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="/conv/Conv", kernel_shape=[3], pads=[1, 1]),
             helper.make_node("GlobalAveragePool", ["c"], ["g"], name="/gap/GlobalAveragePool"),
             helper.make_node("Flatten", ["g"], ["f"], name="/flat/Flatten"),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="/fc/Gemm", transB=1)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, "L"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    graph = helper.make_graph(nodes, "g", [x], [y], [weight("w", 8, 2, 3), weight("b", 8), weight("fw", 4, 8),
                                                     weight("fb", 4)])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    rows = compare([str(path), CNN1], {"L": 64})
    # params (2·3·8 + 8) + (8·4 + 4) = 92; MACs at L = 64: the conv 64·8·2·3 = 3,072, the Gemm 8·4 = 32
    assert (rows[0].value("params"), rows[0].value("macs"), rows[0].values["L"]) == (92, 3_104, 64)


def test_training_of_model_files(capsys):
    assert main(["compare", LLAMA_JSON, "specs/llm/llama.yaml", "--training", "--set", "B=2", "--set", "T=16",
                 "--format", "json"]) == 0
    models = json.loads(capsys.readouterr().out)["models"]
    assert models[0]["flops"]["value"] == models[1]["flops"]["value"]  # the same model read two ways


def test_phase_errors_exit_2(capsys):
    assert main(["compare", LLAMA_JSON, "--phase", "decode", "--training"]) == 2
    assert "give one or the other" in capsys.readouterr().err
    assert main(["compare", CNN1, "--phase", "decode"]) == 2  # CNN1 has no T: refused by the phase, named
    assert "--phase decode needs the sequence length" in capsys.readouterr().err
