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
