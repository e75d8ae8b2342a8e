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


# -- explain --training -----------------------------------------------------------------------------------------

TWO = """
name: two
inputs: [{name: x, shape: [5]}]
layers:
  - {type: Dense, name: d1, units: 4, activation: relu}
  - {type: Dense, name: d2, units: 3}
"""


def test_training_step_through_a_dense_layer(capsys, tmp_path):
    spec = tmp_path / "two.yaml"
    spec.write_text(TWO)
    status, out, _ = run(capsys, str(spec), "d2", "--training", "--optimizer", "sgd", "--set", "B=8", "--set", "N=20")
    assert status == 0
    assert "Training step through d2 (Dense): optimizer sgd, B=8" in out
    assert "needs the input gradient:  yes: dL/dx goes back to its input(s): d1 trains" in out
    assert "needs the weight gradient: yes: it trains 15 params" in out
    assert "rule: analyzer.layers.dense.train_dense:" in out and "dL/dx = dz·Wᵀ" in out  # the rule's docstring
    # by hand: forward 8·(3·7 + 3) = 192; dL/dx 8·4·(2·3 - 1) = 160; dL/dW 4·3·(2·8 - 1) + 3·(8 - 1) = 201
    assert "forward     = 24*B = 24*8 = 192   (B × the inference forward, 24 per sample)" in out
    assert "grad input  = 20*B = 20*8 = 160" in out and "grad weight = 27*B - 15 = 27*8 - 15 = 201" in out
    assert "optimizer   = 2·trainable params = 2·15 = 30" in out
    assert "step FLOPs  = forward + grad input + grad weight + grad other + optimizer = 192 + 160 + 201 + 0 + 30 = 583" in out
    # N = 20: 2 steps of 8 and one of 4: 2·583 + (71·4 + 15) = 1,465
    assert "epoch FLOPs = 71*N + 15*ceiling(N/B)" in out and "= 1,465" in out


def test_training_says_why_a_gradient_is_not_needed(capsys, tmp_path):
    spec = tmp_path / "two.yaml"
    spec.write_text(TWO)
    _, out, _ = run(capsys, str(spec), "d1", "--training", "--set", "B=8")
    assert "needs the input gradient:  no: nothing before it trains" in out
    assert "grad other  = 8*B = 8*8 = 64" in out  # relu's backward, 2 per output
    _, out, _ = run(capsys, str(spec), "d1", "--training", "--input-grad", "--set", "B=8")
    assert "x is a model input and --input-grad asks for its gradient" in out
    assert "grad input  = 35*B = 35*8 = 280" in out  # 8·5·(2·4 - 1)
    _, out, _ = run(capsys, str(spec), "d1", "--training", "--frozen", "d1", "--set", "B=8")
    assert "needs the weight gradient: no: frozen" in out and "so no backward at all" in out
    _, out, _ = run(capsys, str(spec), "d2", "--training", "--frozen", "d1", "--set", "B=8")
    assert "needs the input gradient:  no" in out  # nothing before d2 trains now


def test_training_bad_input_exits_2(capsys, tmp_path):
    spec = tmp_path / "two.yaml"
    spec.write_text(TWO)
    status, _, err = run(capsys, str(spec), "d2", "--optimizer", "sgd")
    assert status == 2 and "go with --training" in err
    status, _, err = run(capsys, str(spec), "d3", "--training")
    assert status == 2 and "no layer 'd3'" in err
    status, _, err = run(capsys, str(spec), "d2", "--training", "--set", "B=0")
    assert status == 2 and "--set B=0 is below the minimum 1 of the batch size B" in err


LLAMA_TINY = ["--set", "T=8", "--set", "N=1", "--set", "d_model=16", "--set", "h=2", "--set", "kv=2", "--set", "I=8",
              "--set", "V=10"]


def test_explain_shows_what_a_convention_counts_and_why(capsys):
    """A causal attention at T = 8, d = 16, 2 heads of 8: nnspec counts the lower triangle, torch's FlopCounterMode
    the full scores. MACs: q, k, v, o 4·8·16·16 = 8,192; nnspec's scores and attention·V over T(T+1)/2 = 36
    query-key pairs, 2·36·16 = 1,152 -> 9,344; torch's over all 64 pairs, 2·64·16 = 2,048 -> 10,240, 20,480 FLOPs."""
    status, out, _ = run(capsys, "specs/llm/llama.yaml", "layers.each.self_attn", *LLAMA_TINY, "--convention", "torch")
    assert status == 0
    assert "this layer       = 4*N*T*d_model**2 + 4*N*T**2*d_model + 4*N*T*d_model**2*kv/h = 20,480" in out
    assert "nnspec's FLOPs   = " in out and "= 19,072" in out and "difference       = +1,408" in out
    assert "over the full Tq·Tv scores" in out  # the rule's docstring, which names torch's functions
    status, out, _ = run(capsys, "specs/llm/llama.yaml", "layers.each.self_attn", *LLAMA_TINY, "--convention", "thop")
    # thop counts the four nn.Linear only (MACs): 8,192, against nnspec's 9,344 MACs
    assert status == 0 and "= 8,192" in out and "nnspec's MACs    = " in out and "difference       = -1,152" in out
    status, _, err = run(capsys, "specs/llm/llama.yaml", "layers.each.self_attn", "--convention", "thopp")
    assert status == 2 and "unknown convention 'thopp'" in err
    status, _, err = run(capsys, "specs/llm/llama.yaml", "layers.each.self_attn", "--training", "--convention", "thop")
    assert status == 2 and "nnspec or the torch convention" in err
