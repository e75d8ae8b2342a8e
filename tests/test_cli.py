"""The `analyze` command: formats, --set, --bias, exit statuses, the JSON contract."""

import csv
import io
import json

import pytest

from analyzer import cli


def run_cli(capsys, *argv):
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_table_shows_formulas_and_values(capsys):
    status, out, err = run_cli(capsys, "specs/scnn.yaml")
    assert status == 0 and err == ""
    assert "conv1d_1 (Conv1D)" in out
    assert "Total params:         64*L*classes + classes + 14272 = 104,395" in out
    assert "Non-trainable params: 384" in out


def test_set_substitutes(capsys):
    status, out, _ = run_cli(capsys, "specs/pet_cgdnn.yaml", "--set", "L=256")
    assert status == 0
    assert "= 71,743" in out


def test_json_contract(capsys):
    status, out, _ = run_cli(capsys, "specs/pet_cgdnn.yaml", "--bias", "off", "--format", "json")
    assert status == 0
    data = json.loads(out)
    assert set(data) >= {"name", "symbols", "constraints", "layers", "total"}
    assert data["symbols"] == {"L": 128, "classes": 11}
    conv = next(layer for layer in data["layers"] if layer["name"] == "conv1_1")
    assert conv["type"] == "Conv2D" and conv["inputs"] == ["reshape3"]
    assert conv["output_shape"] == ["L - 7", "1", "75"]
    for key in ("params", "trainable_params", "non_trainable_params", "macs", "flops"):
        assert set(conv[key]) == {"expr", "value"} and isinstance(conv[key]["value"], int)
    assert set(conv["flops_by_op"]) == {"dot", "bias", "activation", "other"}
    assert conv["flops_by_op"]["dot"] == {"expr": "2325*L - 16275", "value": 281_325}
    assert conv["params"]["value"] == 1200  # --bias off: 1275 - 75
    assert data["total"]["params"]["value"] == 71_487 - 1 - 75 - 25 - 3 * 128 - 11


@pytest.mark.parametrize("fmt", ["markdown", "csv", "latex", "table"])
def test_other_formats(capsys, fmt):
    status, out, _ = run_cli(capsys, "specs/scnn.yaml", "--format", fmt, "--set", "L=256")
    assert status == 0
    assert "194,507" in out or "194507" in out or "194{,}507" in out


def test_csv_rows_sum_to_total(capsys):
    _, out, _ = run_cli(capsys, "specs/pet_cgdnn.yaml", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    total = rows[-1]
    assert total["name"] == "TOTAL"
    for column in ("params", "macs", "flops"):
        assert sum(int(r[column]) for r in rows[:-1]) == int(total[column])
    assert int(total["params"]) == 71_487


def test_outside_domain_exits_2(capsys):
    status, out, err = run_cli(capsys, "specs/pet_cgdnn.yaml", "--set", "L=11")
    assert status == 2 and out == ""
    assert "pet_cgdnn.yaml:" in err and "conv1_2" in err and "valid only for L >= 12" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--set", "N=3"], "unknown symbol 'N'"),
    (["--set", "l=3"], "did you mean 'L'?"),
    (["--set", "L=abc"], "expected NAME=INTEGER"),
    (["--set", "L=0"], "below the minimum 1"),
    (["--set", "L=4", "--set", "L=5"], "given twice"),
])
def test_bad_set_exits_2(capsys, argv, fragment):
    status, _, err = run_cli(capsys, "specs/scnn.yaml", *argv)
    assert status == 2
    assert fragment in err


def test_missing_file_exits_2(capsys):
    status, _, err = run_cli(capsys, "specs/nope.yaml")
    assert status == 2 and "no such file" in err


def test_internal_error_exits_1_with_report_line(capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(cli, "analyze_phase", broken)
    status, _, err = run_cli(capsys, "specs/scnn.yaml")
    assert status == 1
    assert "please report" in err and "Traceback" not in err
    status, _, err = run_cli(capsys, "specs/scnn.yaml", "--debug")
    assert status == 1 and "Traceback" in err


def test_dtype_choices(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["specs/scnn.yaml", "--dtype", "float64"])
    assert exit_info.value.code == 2
    status, out, _ = run_cli(capsys, "specs/scnn.yaml", "--dtype", "int8", "--format", "markdown")
    assert status == 0 and "Memory" not in out  # memory is shown by table and json
