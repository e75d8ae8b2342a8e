"""--plot: checked through matplotlib's objects (labels, artists, data), and the PNG written."""

import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from matplotlib.collections import PolyCollection

from analyzer import analyze, cli
from analyzer.plot import build_figure, layer_bands
from analyzer.sweep import sweep

sys.path.insert(0, str(Path(__file__).parent))
from test_sweep import pet_flops  # hand-worked PET-CGDNN FLOPs


@pytest.fixture(scope="module")
def pet_sweep():
    return sweep(analyze("specs/pet_cgdnn.yaml"), "L", [512, 8, 64, 128, 256])


def test_bands_sum_to_the_hand_worked_totals(pet_sweep):
    xs, bands = layer_bands(pet_sweep)
    assert xs == [64, 128, 256, 512]  # sorted; L=8 is out of the domain (L >= 12)
    # 13 layers have FLOPs: fc2, 2 Lambdas, 4 Multiply, Add, Subtract, 2 Conv2D, GRU, softmax Dense
    assert len(bands) == 9 and list(bands)[-1] == "other (5 layers)"
    assert list(bands)[:3] == ["gru_1", "conv1_2", "conv1_1"]  # largest first
    for j, L in enumerate(xs):
        assert sum(band[j] for band in bands.values()) == pet_flops(L)


def test_figure_objects(pet_sweep):
    figure = build_figure(pet_sweep)
    flops_ax, params_ax = figure.axes
    assert flops_ax.get_ylabel() == "FLOPs" and params_ax.get_ylabel() == "params" and params_ax.get_xlabel() == "L"
    assert flops_ax.get_title() == "PET-CGDNN: FLOPs per layer vs L (classes=11)"
    assert len([c for c in flops_ax.collections if isinstance(c, PolyCollection)]) == 9  # one stacked band each
    legend = [t.get_text() for t in flops_ax.get_legend().get_texts()]
    assert legend[0] == "gru_1" and legend[-1] == "other (5 layers)"
    (line,) = params_ax.get_lines()  # no non-trainable params: one line
    assert list(line.get_xdata()) == [64, 128, 256, 512]
    # Keras: 71,487 at L=128 and 71,743 at L=256; params = 2L + 71,231 (fc2's 2L weights)
    assert list(line.get_ydata()) == [2 * 64 + 71_231, 71_487, 71_743, 2 * 512 + 71_231]
    assert params_ax.get_xscale() == "linear"  # 512/64 = 8: linear; 16x or more: log base 2
    figure_log = build_figure(sweep(analyze("specs/pet_cgdnn.yaml"), "L", [64, 1024]))
    assert figure_log.axes[1].get_xscale() == "log"


def test_cli_writes_a_png(capsys, tmp_path):
    out = tmp_path / "cost.png"
    status = cli.main(["specs/pet_cgdnn.yaml", "--sweep", "L=64..4096*2", "--plot", str(out)])
    captured = capsys.readouterr()
    assert status == 0 and f"wrote {out}" in captured.err and f"{pet_flops(4096):,}" in captured.out
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    from matplotlib.image import imread

    height, width, _ = imread(out).shape
    assert (width, height) == (9 * 120, 7 * 120)  # figsize 9x7 inches at 120 dpi


def test_blocks_are_bands(tmp_path):
    xs, bands = layer_bands(sweep(analyze("specs/resnet50.yaml"), "S", [64, 224]))
    assert xs == [64, 224] and {"conv2", "conv3", "conv4", "conv5"} <= set(bands)


@pytest.mark.parametrize("argv", [
    ["--plot", "x.png"],  # no --sweep
    ["--sweep", "L=1,2", "--plot", "x.png"],  # nothing in the domain
    ["--sweep", "L=128,256", "--plot", "x.unknownext"],
])
def test_plot_usage_errors(capsys, argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = str(Path(__file__).resolve().parent.parent / "specs" / "pet_cgdnn.yaml")
    assert cli.main([spec, *argv]) == 2
    assert capsys.readouterr().err.startswith("error:")
