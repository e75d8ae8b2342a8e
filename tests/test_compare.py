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
