"""--sweep: totals at many values of one symbol, checked against Keras' counts and hand-worked formulas."""

import csv
import io
import json

import pytest

from analyzer import analyze, cli
from analyzer.errors import UsageError
from analyzer.sweep import parse_sweep, sweep


def run(capsys, *argv):
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def pet_macs(L, classes=11):
    # fc2 2L; conv1_1 (L-7)*75 outputs of 8*2*1 = 16 terms; conv1_2 (L-11)*25 of 5*75 = 375;
    # GRU L-11 steps of 3*128*(25 + 128); softmax 128*classes
    return 2 * L + (L - 7) * 75 * 16 + (L - 11) * 25 * 375 + (L - 11) * 3 * 128 * 153 + 128 * classes


def pet_flops(L, classes=11):
    # fc2 dot 2*2L-1 + bias 1; cos, sin 1 each; 4 Multiply, Add, Subtract: L each;
    # conv1_1 per output 2*16-1 + bias + relu = 33; conv1_2 2*375-1 + 2 = 751;
    # GRU per step: dots 3*128*(49 + 255), bias 384, 2*128 sigmoids x4 + 128 tanh x5, 8*128 elementwise;
    # softmax Dense: classes*(2*128-1 + 1) + softmax 3*classes - 1
    gru_step = 3 * 128 * (49 + 255) + 384 + 4 * 256 + 5 * 128 + 8 * 128
    return 4 * L + 2 + 6 * L + (L - 7) * 75 * 33 + (L - 11) * 25 * 751 + (L - 11) * gru_step + 256 * classes + 3 * classes - 1


@pytest.mark.parametrize(("text", "values"), [
    ("L=128,256,512", [128, 256, 512]),
    ("L=64..4096*2", [64, 128, 256, 512, 1024, 2048, 4096]),
    ("L=100..1000+100", [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]),
    ("L = 100..1050+100", [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]),
    ("L=3..20*3", [3, 9]),
])
def test_parse(text, values):
    assert parse_sweep(text) == ("L", values)


@pytest.mark.parametrize("text", ["L", "L=", "L=a,b", "L=-1,2", "L=10..1*2", "L=1..10*1", "L=1..10+0",
                                  "L=1..100000000+1", "=1,2"])
def test_parse_rejects(text):
    with pytest.raises(UsageError):
        parse_sweep(text)


def test_pet_cgdnn_against_keras_and_hand_formulas():
    s = sweep(analyze("specs/pet_cgdnn.yaml"), "L", [128, 256, 1024])
    # Keras model.summary(): 71,487 params at L=128, 71,743 at L=256 (docstring of specs/pet_cgdnn.yaml, test_cli)
    assert [p.counts["params"] for p in s.points[:2]] == [71_487, 71_743]
    assert [p.counts["trainable_params"] for p in s.points[:2]] == [71_487, 71_743]
    assert [p.counts["macs"] for p in s.points] == [pet_macs(128), pet_macs(256), pet_macs(1024)]
    assert [p.counts["flops"] for p in s.points] == [pet_flops(128), pet_flops(256), pet_flops(1024)]
    assert pet_macs(1024) == 70_236_507  # README's example at L=1024


def test_out_of_domain_rows(capsys):
    status, out, _ = run(capsys, "specs/pet_cgdnn.yaml", "--sweep", "L=0,11,12")
    assert status == 0
    lines = out.splitlines()
    assert any(line.split()[:2] == ["0", "out"] for line in lines)
    assert any(line.split()[:2] == ["11", "out"] for line in lines)
    # L=12: conv1_2's output height L-11 = 1
    assert any(line.split() == ["12", f"{71_255:,}", f"{71_255:,}", f"{pet_macs(12):,}", f"{pet_flops(12):,}"] for line in lines)
    assert "Out of domain: L=0: below the minimum 1 of L" in out
    assert "Out of domain: L=11: kernel height 5 exceeds input height L - 7" in out


def test_every_format(capsys):
    argv = ["specs/scnn.yaml", "--sweep", "classes=11,24", "--set", "L=1024"]
    # SCNN params 64*L*classes + classes + 14,272 (conv 4,224 + BN 512 + separable 9,280 + BN 256)
    params = [64 * 1024 * c + c + 14_272 for c in (11, 24)]
    status, out, _ = run(capsys, *argv, "--format", "json")
    data = json.loads(out)
    assert status == 0 and data["symbol"] == "classes" and data["fixed"] == {"L": 1024}
    assert [p["params"] for p in data["points"]] == params
    assert [p["trainable_params"] for p in data["points"]] == [p - 384 for p in params]  # BN moving stats: 2*(128+64)
    _, out, _ = run(capsys, *argv, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [int(r["params"]) for r in rows] == params and rows[0]["classes"] == "11"
    _, out, _ = run(capsys, *argv, "--format", "markdown")
    assert f"| 24 | {params[1]:,} |" in out
    _, out, _ = run(capsys, *argv, "--format", "latex")
    assert f"$24$ & ${params[1]:,}$".replace(",", "{,}") in out and r"\end{tabular}" in out
    _, out, _ = run(capsys, *argv)
    assert f"{params[0]:,}" in out


def test_json_marks_out_of_domain(capsys):
    _, out, _ = run(capsys, "specs/pet_cgdnn.yaml", "--sweep", "L=10,128", "--format", "json")
    points = json.loads(out)["points"]
    assert points[0]["valid"] is False and "valid only for L >= 12" in points[0]["reason"] and "params" not in points[0]
    assert points[1]["valid"] is True and points[1]["params"] == 71_487


@pytest.mark.parametrize("argv", [
    ["--sweep", "X=1,2"], ["--sweep", "L=1,2", "--set", "L=5"], ["--sweep", "L=1..2*1"],
    ["--sweep", "L=128", "--convention", "torch"], ["--sweep", "L=128", "--depth", "1"],
])
def test_usage_errors_exit_2(capsys, argv):
    status, _, err = run(capsys, "specs/pet_cgdnn.yaml", *argv)
    assert status == 2 and err.startswith("error:")


def test_fast_path_agrees_with_report_at():
    report = analyze("specs/mobilenet_v2.yaml")
    name = report.symbols[0].name
    start = report.symbols[0].minimum
    values = list(range(start, start + 40, 7))
    s = sweep(report, name, values)
    for p in s.points:
        if p.valid:
            at = report.at(**{name: p.value})
            assert p.counts["flops"] == at.value(at.total.flops) and p.counts["params"] == at.value(at.total.params)


def test_any_formulas_and_the_training_step():
    # sweep() takes other formulas: here 2·params of PET-CGDNN, 71,487 at L = 128 and 71,743 at 256 (Keras)
    report = analyze("specs/pet_cgdnn.yaml")
    s = sweep(report, "L", [128, 256], {"twice": 2 * report.total.params})
    assert s.quantities == ("twice",) and [p.counts for p in s.points] == [{"twice": 2 * 71_487}, {"twice": 2 * 71_743}]
    from analyzer.sweep import training_sweep
    from analyzer.training import training_step

    # x (5,) -> Dense(3), SGD, per B: forward B·(3·9 + 3) = 30B, backward 15·(2B - 1) + 3·(B - 1) = 33B - 18,
    # optimizer 2·18 = 36
    step = training_step(analyze("name: one\ninputs: [{name: x, shape: [5]}]\nlayers: [{type: Dense, name: d, units: 3}]\n"),
                         optimizer="sgd")
    points = training_sweep(step, "B", [1, 2, 8]).points
    assert [(p.counts["forward_flops"], p.counts["backward_flops"], p.counts["flops"]) for p in points] == [
        (30, 15, 81), (60, 48, 144), (240, 246, 522)]
