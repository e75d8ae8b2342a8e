"""Issue 16, the outputs of `analyze SPEC --training`: every format, the per-epoch totals, sweeps over B, and
bad input (exit 2, a message naming the option).

The model throughout: x (5,) -> Dense(4, relu) "d1" -> Dense(3) "d2", SGD, B = 8 unless said. By hand
(docs/conventions.md#training; R = B rows):
  d1: forward B·(4·(2·5 - 1) + 4 bias + 4 relu) = 44B; no grad input (the model input needs none);
      grad weight 5·4·(2B - 1) + 4·(B - 1) = 44B - 24; grad other (relu) 2·4·B = 8B; SGD 2·24 = 48
  d2: forward B·(3·(2·4 - 1) + 3) = 24B; grad input B·4·(2·3 - 1) = 20B; grad weight 4·3·(2B - 1) + 3·(B - 1)
      = 27B - 15; SGD 2·15 = 30
  step: forward 68B, backward 99B - 39, optimizer 78, FLOPs 167B + 39
  at B = 8: d1 352, 0, 328, 64, 48 = 792; d2 192, 160, 201, 0, 30 = 583; forward 544, backward 753, step 1,375
  at B = 4: forward 272, backward 357, step 707
Epoch of N = 20 at B = 8: 2 steps of 8 and one of 4: forward 2·544 + 272 = 1,360, backward 2·753 + 357 = 1,863,
optimizer 3·78 = 234, FLOPs 2·1,375 + 707 = 3,457.
Memory (float32): weights 24 + 15 = 39 elements, 156 bytes; gradients the same; SGD keeps no state.
"""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
import sympy

from analyzer import cli
from analyzer.errors import UsageError
from analyzer.symbolic import make_symbol
from analyzer.training import epoch, per_epoch, training_step
from tests.conftest import run, spec_text

LAYERS = [{"type": "Dense", "name": "d1", "units": 4, "activation": "relu"}, {"type": "Dense", "name": "d2", "units": 3}]
D1 = (352, 0, 328, 64, 48, 792)  # forward, grad input, grad weight, grad other, optimizer, step
D2 = (192, 160, 201, 0, 30, 583)
TOTAL = (544, 160, 529, 64, 78, 1375)  # grad weight 328 + 201, grad other 64
EPOCH = {"forward": 1360, "backward": 1863, "optimizer": 234, "flops": 3457}


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "two.yaml"
    path.write_text(spec_text([5], LAYERS))
    return str(path)


def analyze_cli(capsys, *argv):
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def numbers(text):
    """The integers of a table row, commas removed; formulas in backticks left out."""
    return [int(n.replace(",", "")) for n in re.findall(r"(?<![\w*`])\d[\d,]*(?![\w*])", re.sub(r"`[^`]*`", "", text))]


# -- the epoch --------------------------------------------------------------------------------------------------

def test_epoch_by_hand_with_a_partial_last_batch():
    step = training_step(run([5], LAYERS), optimizer="sgd", batch=8, dataset=20)
    e = epoch(step)
    value = step.report.value
    assert (value(e.steps), value(e.last_batch)) == (3, 4)  # ceil(20/8); 20 mod 8
    assert {part: value(e.parts[part]) for part in EPOCH} == EPOCH
    # a·B + c per step sums to a·N + c·ceil(N/B): 99B - 39 -> 99N - 39·ceil(N/B)
    n, b = e.samples, step.report.symbol("B").symbol
    assert sympy.expand(e.parts["backward"] - (99 * n - 39 * sympy.ceiling(n / b))) == 0


@pytest.mark.parametrize(("samples", "steps", "flops"), [
    (16, 2, 2 * 1375),  # B divides N: no partial batch
    (5, 1, 167 * 5 + 39),  # fewer samples than B: one step of 5
    (1, 1, 167 + 39),
])
def test_epoch_edges(samples, steps, flops):
    step = training_step(run([5], LAYERS), optimizer="sgd", batch=8, dataset=samples)
    e = epoch(step)
    assert step.report.value(e.steps) == steps and step.report.value(e.parts["flops"]) == flops


def test_per_epoch_outside_the_linear_case():
    # f(B) = B² + 1: 20 samples in steps of 8: 2·65 + (16 + 1) = 147; 16 samples: 2·65, no last step (f(0) = 1
    # must not count)
    n, b = make_symbol("N"), make_symbol("B")
    formula = per_epoch(b**2 + 1, n, b)
    assert formula.xreplace({n: 20, b: 8}) == 147 and formula.xreplace({n: 16, b: 8}) == 130


def test_the_json_epoch_section(spec, capsys):
    status, out, _ = analyze_cli(capsys, spec, "--training", "--optimizer", "sgd", "--set", "B=8", "--set", "N=20",
                                 "--format", "json")
    assert status == 0
    section = json.loads(out)["training"]["epoch"]
    assert section["samples"] == {"expr": "N", "value": 20} and section["drop_last"] is False
    assert section["steps"]["value"] == 3 and section["last_batch"]["value"] == 4
    assert {k: section[k]["value"] for k in ("forward_flops", "backward_flops", "optimizer_flops", "flops")} == {
        "forward_flops": 1360, "backward_flops": 1863, "optimizer_flops": 234, "flops": 3457}
    status, out, _ = analyze_cli(capsys, spec, "--training", "--set", "B=8", "--format", "json")
    assert "epoch" not in json.loads(out)["training"]  # only with N


def test_a_spec_with_its_own_n_takes_the_dataset_size_as_n_data(capsys):
    # transformer_encoder.yaml's N is its number of encoder blocks
    status, out, _ = analyze_cli(capsys, "specs/transformer_encoder.yaml", "--training", "--set", "B=4",
                                 "--set", "N_data=1000", "--format", "json")
    assert status == 0
    data = json.loads(out)
    assert data["symbols"]["N"] == 12 and data["training"]["epoch"]["steps"]["value"] == 250  # 1000 / 4
    assert data["training"]["epoch"]["samples"] == {"expr": "N_data", "value": 1000}


# -- every format -----------------------------------------------------------------------------------------------

def test_table(spec, capsys):
    status, out, _ = analyze_cli(capsys, spec, "--training", "--optimizer", "sgd", "--set", "B=8", "--set", "N=20")
    assert status == 0
    rows = {line.split()[0]: numbers(line) for line in out.splitlines() if re.match(r"d[12] \(Dense\) +\d", line)}
    assert rows == {"d1": list(D1), "d2": list(D2)}
    assert "Backward:       99*B - 39 = 753" in out and "Step FLOPs:     167*B + 39 = 1,375" in out
    assert "Epoch of N=20 samples: ceiling(N/B) = 3 steps, 2 of 8 and a last one of 4" in out
    assert "Backward:     99*N - 39*ceiling(N/B) = 1,863" in out
    assert "Epoch FLOPs:  167*N + 39*ceiling(N/B) = 3,457" in out
    assert "weights: 39 elements = 156 bytes" in out and "optimizer state: 0 elements = 0 bytes" in out


def test_markdown(spec, capsys):
    status, out, _ = analyze_cli(capsys, spec, "--training", "--optimizer", "sgd", "--set", "B=8", "--set", "N=20",
                                 "--format", "markdown")
    assert status == 0 and out.startswith("### ")
    rows = {line.split("|")[1].strip(): numbers("|".join(line.split("|")[3:])) for line in out.splitlines()
            if re.match(r"\| (d[12]|\*\*Total\*\*) \| (Dense)? *\| \d", line)}
    assert rows == {"d1": list(D1), "d2": list(D2), "**Total**": list(TOTAL)}
    assert "| d1 | Dense | 352 (`44*B`) |" in out  # value and formula
    epoch_row = next(line for line in out.splitlines() if line.startswith("| **Epoch** |"))
    assert numbers(epoch_row) == list(EPOCH.values())
    memory = {line.split("|")[1].strip(): numbers(line) for line in out.splitlines()
              if line.startswith(("| weights |", "| gradients |", "| optimizer state |"))}
    assert memory == {"weights": [39, 156], "gradients": [39, 156], "optimizer state": [0, 0]}


def test_csv_is_the_reports_table_with_the_steps_columns(spec, capsys):
    analyze_cli(capsys, spec, "--format", "csv")
    plain = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    status, out, _ = analyze_cli(capsys, spec, "--training", "--optimizer", "sgd", "--set", "B=8", "--set", "N=20",
                                 "--format", "csv")
    assert status == 0
    table = list(csv.reader(io.StringIO(out)))
    assert [row[:len(plain[0])] for row in table[:len(plain)]] == plain  # the report's columns, unchanged
    rows = {row["name"]: row for row in csv.DictReader(io.StringIO(out))}
    parts = ("forward", "grad_input", "grad_weight", "grad_other", "optimizer", "flops")
    for name, expected in (("d1", D1), ("d2", D2), ("TOTAL", TOTAL)):
        assert tuple(int(rows[name][f"train_{p}"]) for p in parts) == expected, name
    assert rows["d1"]["train_grad_weight_formula"] == "44*B - 24" and rows["TOTAL"]["train_backward"] == "753"
    assert {p: int(rows["EPOCH"][f"train_{p}"]) for p in EPOCH} == EPOCH and rows["EPOCH"]["train_steps"] == "3"
    weights = rows["memory:weights"]
    assert (weights["train_memory_elements"], weights["train_memory_bytes"]) == ("39", "156")
    assert rows["memory:optimizer_state"]["train_memory_bytes"] == "0"


def test_latex(spec, capsys):
    status, out, _ = analyze_cli(capsys, spec, "--training", "--optimizer", "sgd", "--set", "B=8", "--set", "N=20",
                                 "--format", "latex")
    assert status == 0 and out.count(r"\begin{table}") == 2 and out.count(r"\end{table}") == 2
    row = next(line for line in out.splitlines() if line.startswith("d1 & Dense & $352$"))
    assert re.findall(r"\$([\d{,}]+)\$", row) == ["352", "0", "328", "64", "48", "792"]
    assert r"$1{,}375$ \newline $167 B + 39$" in out  # the step's total, value and formula
    assert r"Epoch & $1{,}360$" in out and r"$3{,}457$" in out
    assert r"weights & $39$ & $156$" in out


def test_without_training_nothing_changes(spec, capsys):
    for fmt in ("table", "markdown", "csv", "latex", "json"):
        status, out, _ = analyze_cli(capsys, spec, "--format", fmt)
        out = out.replace(spec, "")  # the tmp path names this test
        assert status == 0 and "Training" not in out and "train_" not in out and "training" not in out


# -- sweeps over B ----------------------------------------------------------------------------------------------

def test_sweep_over_b_in_csv(spec, capsys):
    status, out, _ = analyze_cli(capsys, spec, "--training", "--optimizer", "sgd", "--sweep", "B=0,4,8",
                                 "--set", "N=20", "--format", "csv")
    assert status == 0
    rows = {row["B"]: row for row in csv.DictReader(io.StringIO(out))}
    assert rows["0"]["out_of_domain"] == "below the minimum 1 of B"
    keys = ("forward_flops", "backward_flops", "optimizer_flops", "flops", "epoch_steps", "epoch_flops")
    # B = 4: 5 steps of 4 make the epoch, 5·707 = 3,535
    assert [int(rows["4"][k]) for k in keys] == [272, 357, 78, 707, 5, 3535]
    assert [int(rows["8"][k]) for k in keys] == [544, 753, 78, 1375, 3, 3457]
    assert rows["8"]["weights_bytes"] == "156" and rows["8"]["optimizer_state_bytes"] == "0"
    assert "peak_bytes" in rows["8"]  # the peak in B only


def test_sweep_over_n_and_over_another_symbol(capsys, tmp_path):
    path = tmp_path / "wide.yaml"
    path.write_text(spec_text([["F"]], LAYERS, {"F": {"default": 5}}))
    status, out, _ = analyze_cli(capsys, str(path), "--training", "--optimizer", "sgd", "--set", "B=8",
                                 "--sweep", "N=16,20", "--format", "json")
    assert status == 0
    assert [(p["N"], p["epoch_flops"]) for p in json.loads(out)["points"]] == [(16, 2 * 1375), (20, 3457)]
    # over F, B = 8: d1 forward 8·4·(2F - 1 + 2) = 64F + 32 (352 at F = 5); grad weight F·4·15 + 28 = 60F + 28;
    # SGD on 4 more weights per F: 8. The step at F = 6: 1,375 + 64 + 60 + 8 = 1,507
    status, out, _ = analyze_cli(capsys, str(path), "--training", "--optimizer", "sgd", "--set", "B=8",
                                 "--sweep", "F=5,6", "--format", "json")
    points = json.loads(out)["points"]
    assert [p["forward_flops"] for p in points] == [544, 544 + 64] and [p["flops"] for p in points] == [1375, 1375 + 132]
    assert "peak_bytes" not in points[0] and json.loads(out)["fixed"] == {"B": 8}


@pytest.mark.parametrize("fmt", ["table", "markdown", "latex"])
def test_sweep_formats_name_the_step(spec, capsys, fmt):
    status, out, _ = analyze_cli(capsys, spec, "--training", "--sweep", "B=4,8", "--format", fmt)
    assert status == 0 and "training step (optimizer adam" in out and "Step FLOPs" in out
    assert "1,375".replace(",", "{,}" if fmt == "latex" else ",") not in out  # Adam, not SGD: 167·8 + 39 + 11·39
    assert f"{544 + 753 + 13 * 39:,}".replace(",", "{,}" if fmt == "latex" else ",") in out  # 1,804


def test_plot_of_a_training_sweep(spec, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from analyzer.plot import build_figure, layer_bands
    from analyzer.sweep import training_sweep

    step = training_step(run([5], LAYERS), optimizer="sgd", batch=8)
    s = training_sweep(step, "B", [4, 8])
    xs, bands = layer_bands(s)
    assert xs == [4, 8] and bands == {"d1": [96 * 4 + 24, 792], "d2": [71 * 4 + 15, 583]}
    figure = build_figure(s)
    assert figure.axes[1].get_ylabel() == "bytes (float32)" and "training-step FLOPs" in figure.axes[0].get_title()
    target = tmp_path / "step.png"
    assert cli.main([spec, "--training", "--sweep", "B=1..8*2", "--plot", str(target)]) == 0
    assert target.stat().st_size > 0


# -- bad input --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "message"), [
    (["--training", "--frozen", "d9"], "--frozen d9: no layer or block of that name in the spec"),
    (["--training", "--frozen", ","], "--frozen: no layer name given"),
    (["--training", "--set", "B=0"], "--set B=0 is below the minimum 1 of the batch size B"),
    (["--training", "--set", "N=-5"], "--set N=-5 is below the minimum 1 of the dataset size N"),
    (["--training", "--set", "N=0"], "--set N=0 is below the minimum 1 of the dataset size N"),
    (["--training", "--depth", "1"], "--training does not combine with --depth"),
    (["--training", "--export", "torch"], "--training does not combine with --export"),
    (["--training", "--convention", "thop"], "--training counts with --convention nnspec or torch, not thop"),
    (["--optimizer", "sgd"], "--optimizer, --frozen and --input-grad go with --training"),
    (["--input-grad"], "--optimizer, --frozen and --input-grad go with --training"),
    (["--set", "B=8"], "give --training too"),
    (["--set", "N=20"], "N is the dataset size (per-epoch totals) of a training step"),
    (["--sweep", "B=1,2"], "--sweep B: B is the batch size of a training step: give --training too"),
    (["--training", "--sweep", "B=1,2", "--set", "B=2"], "--sweep B and --set B: give B one way"),
    (["--training", "--sweep", "N=1,2", "--set", "N=2"], "--sweep N and --set N: give N one way"),
    (["--training", "--set", "B=1", "--set", "B=2"], "--set B given twice"),
])
def test_bad_input_exits_2_naming_the_option(spec, capsys, argv, message):
    status, out, err = analyze_cli(capsys, spec, *argv)
    assert status == 2 and out == "" and message in err and "Traceback" not in err


def test_an_unknown_optimizer_is_refused_by_the_parser(spec, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([spec, "--training", "--optimizer", "adamx"])
    assert exit_info.value.code == 2 and "argument --optimizer: invalid choice: 'adamx'" in capsys.readouterr().err
    with pytest.raises(UsageError, match="unknown optimizer 'adamx'") as error:  # the API: with a hint
        run([5], LAYERS).training(optimizer="adamx")
    assert error.value.hint == "did you mean 'adam'?"
