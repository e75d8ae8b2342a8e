"""`analyze explain SPEC LAYER`: derivations worked by hand, and every worked explainer agreeing
with the layer handlers on every spec."""

from pathlib import Path

import pytest

from analyzer import analyze, cli
from analyzer.explain import WORKED, explain, worked_steps

ROOT = Path(__file__).resolve().parent.parent


def run(capsys, *argv):
    status = cli.main(["explain", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_conv1_1_of_pet_cgdnn(capsys):
    status, out, _ = run(capsys, "specs/pet_cgdnn.yaml", "conv1_1", "--set", "L=128")
    assert status == 0
    # outputs (L-7)*1*75 = 121*75 = 9,075; n = 8*2*1 = 16 terms; dot = 9,075*(2*16-1) = 281,325; params 16*75 + 75
    assert "outputs          = (L - 7)·1·75 = 121·1·75 = 9,075" in out
    assert "n                = 8·2·1 = 16" in out
    assert "dot FLOPs        = outputs·(2n - 1) = 9,075·(2·16 - 1) = 281,325" in out
    assert "bias FLOPs       = outputs = 9,075" in out
    assert "params           = n·filters + filters (bias) = 16·75 + 75 = 1,275" in out
    assert "MACs             = outputs·n = 9,075·16 = 145,200" in out
    # relu: 1 per output; total 281,325 + 9,075 + 9,075
    assert f"= 281,325 + 9,075 + 9,075 + 0 = {281_325 + 2 * 9_075:,}" in out


def test_gru_of_pet_cgdnn_at_1024():
    out = explain(analyze("specs/pet_cgdnn.yaml", L=1024), "gru_1")
    # T = 1024 - 11 = 1,013 steps, I = 25, H = 128; reset_after false: one bias vector
    assert "= 3·128·(25 + 128) + 1·3·128 = 59,136" in out  # Keras: 59,136
    assert f"= 1,013·3·128·(25 + 128) = {1013 * 3 * 128 * 153:,}" in out
    assert f"= 1,013·128·(1·5 + 2·4) = {1013 * 128 * 13:,}" in out  # tanh 5, two sigmoids 4 each


def test_scnn_separable_and_batchnorm_and_dense():
    scnn = analyze("specs/scnn.yaml")
    out = explain(scnn, "separable_conv1d_1")
    # depthwise 8*128, pointwise 128*64, bias 64: Keras 9,280
    assert "= 8·128 + 128·64 + 64 = 9,280" in out
    assert f"= 16,384·8 + 8,192·128 = {16_384 * 8 + 8_192 * 128:,}" in out
    out = explain(scnn, "batch_normalization_1")
    assert "trainable params     = 2·C = 2·128 = 256" in out and "non-trainable params = 2·C = 2·128 = 256" in out
    out = explain(scnn, "dense_1")
    # 64*L = 8,192 inputs, 11 units: 8,192*11 + 11 = 90,123 params
    assert "n                = 64*L = 8,192" in out and "= 8,192·11 + 11 = 90,123" in out


def test_generic_fallback_substitutes_values():
    out = explain(analyze("specs/pet_cgdnn.yaml", L=300), "multiply_1")
    assert "each count's formula, with the values substituted" in out
    assert "other FLOPs = L = 300" in out


def test_unknown_layer_exits_2_with_a_suggestion(capsys):
    status, _, err = run(capsys, "specs/pet_cgdnn.yaml", "conv1_x")
    assert status == 2 and "no layer 'conv1_x'" in err and "did you mean 'conv1_" in err


@pytest.mark.parametrize("path", sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "specs" / "amc").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_worked_explanations_agree_with_the_handlers(path):
    report = analyze(path)
    for row in report.layers.values():
        if row.type not in WORKED:
            continue
        axis = getattr(row.spec, "axis", -1)
        if row.type == "BatchNormalization" and axis != -1:
            continue
        assert worked_steps(report, row) is not None, row.name
        explain(report, row.name)
