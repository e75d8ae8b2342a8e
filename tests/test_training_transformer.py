"""Issue 16, the training step through the decoder family (GroupedQueryAttention, GatedMLP, ReversibleEmbedding,
PositionEmbedding): nnspec's exact backward and what FlopCounterMode counts (--convention torch), worked by hand
from the rules of docs/conventions.md#training. A dot product of n terms is 2n - 1 FLOPs."""

from __future__ import annotations

from analyzer.training import training_step
from tests.conftest import run


def step_values(step, name):
    layer = step.layers[name]
    return {part: step.report.value(getattr(layer, part))
            for part in ("forward", "grad_input", "grad_weight", "grad_other", "optimizer")}


def gqa(**options):
    # x (3, 4) -> Dense(4) -> GQA on [d, d]: T = 3, d = 4, Hq = 2, Hkv = 1, hd = 2, no bias, causal: S = 3·4/2 = 6
    return run([3, 4], [{"type": "Dense", "name": "d", "units": 4},
                        {"type": "GroupedQueryAttention", "name": "gqa", "inputs": ["d", "d"], "head_dim": 2,
                         "num_query_heads": 2, "num_key_value_heads": 1, "use_bias": False, "causal": True, **options}])


def test_grouped_query_attention_causal():
    g = step_values(training_step(gqa(), batch=2), "gqa")
    # per sample: q 12 outputs of 4 terms 84, k 6·7 = 42, v 42, o 84; scores Hq·S·(2hd - 1) = 2·6·3 = 36; a·V
    # Hq·hd·(2S - T) = 2·2·9 = 36; softmax Hq·(3S - T) = 2·15 = 30; the scale 12: 366, B = 2
    assert g["forward"] == 2 * 366
    # R = 6 rows (2R - 1 = 11): q 16 weights, k 8, v 8, o 16: 48·11
    assert g["grad_weight"] == 48 * 11
    # dx of q: 24 of 4 terms, 24·7 = 168; of k and v: 24 of 2 terms, 72 each; x read thrice: 2·(2·12) = 48
    assert g["grad_input"] == 168 + 72 + 72 + 48
    # output projection's dx 24 of 4 terms 168; da B·Hq·S·3 = 72; dv per head keys seen by 3, 2, 1 queries,
    # (5 + 3 + 1)·hd = 18, ·2 heads ·2 samples = 72, and the 2 heads summed into the one v head 2·3·2 = 12; softmax
    # rows of 1, 2, 3 keys (3 + 7 + 11)·4 = 84; dq B·Hq·hd·(2S - T) = 72; dk 72 + 12; the scale 24
    assert g["grad_other"] == 168 + 72 + 72 + 12 + 84 + 72 + 72 + 12 + 24


def test_grouped_query_attention_rotary_and_qk_norm():
    g = step_values(training_step(gqa(rope_theta=10000.0, qk_norm=True), batch=2), "gqa")
    # rotary r = 2 back as forward: 3·2·(Rq·Hq + Rv·Hkv) = 6·(12 + 6) = 108; q/k norm dx 6 per element of
    # q (24) and k (12): 216
    assert g["grad_other"] == 588 + 108 + 216
    # the norms' weights: 2N - hd each, (48 - 2) + (24 - 2)
    assert g["grad_weight"] == 528 + 46 + 22


def test_grouped_query_attention_torch_convention():
    # MACs: q 3·4·4 = 48, k 24, v 24, o 48 (144); each product over all 9 scores, 2·9·2 = 36
    g = step_values(training_step(gqa(), batch=2, convention="torch"), "gqa")
    assert g["forward"] == 2 * 2 * (144 + 72)
    assert g["grad_weight"] == 2 * 2 * 144
    assert g["grad_input"] == 2 * 2 * (48 + 24 + 24)
    # output projection's dx 2·2·48, both operands of both products 2·2·4·36
    assert g["grad_other"] == 192 + 576


def gated_mlp(**options):
    # x (3, 4) -> Dense(4) -> GatedMLP I = 5, silu, no bias; B = 2: P = 6 rows
    return run([3, 4], [{"type": "Dense", "name": "d", "units": 4},
                        {"type": "GatedMLP", "name": "mlp", "intermediate_dim": 5, **options}])


def test_gated_mlp():
    m = step_values(training_step(gated_mlp(), batch=2), "mlp")
    # gate, up, down: 20 weights each of 6 rows, 3·20·11
    assert m["grad_weight"] == 660
    # gate's and up's dx: 24 of 5 terms, 24·9 = 216 each; x's two gradients summed, 24
    assert m["grad_input"] == 2 * 216 + 24
    # down's dx 30 of 4 terms 30·7 = 210; dp·up, dp·act 2·30; silu's backward 9·30
    assert m["grad_other"] == 210 + 60 + 270


def test_gated_mlp_torch_convention():
    # MACs 3·4·5 = 60 each of gate, up, down
    m = step_values(training_step(gated_mlp(), batch=2, convention="torch"), "mlp")
    assert (m["grad_input"], m["grad_weight"], m["grad_other"]) == (2 * 2 * 120, 2 * 2 * 180, 2 * 2 * 60)


def lm(tied=True):
    # ids (3,) -> ReversibleEmbedding V = 7, d = 4 -> reverse: B = 2, R = 6 rows
    head = {"tied_to": "embed"} if tied else {"tie_weights": False}
    return run([3], [{"type": "ReversibleEmbedding", "name": "embed", "input_dim": 7, "output_dim": 4},
                     {"type": "ReversibleEmbedding", "name": "head", "input_dim": 7, "output_dim": 4, "reverse": True,
                      **head}])


def test_tied_lm_head():
    step = training_step(lm(), batch=2)
    embed, head = step_values(step, "embed"), step_values(step, "head")
    assert embed["grad_weight"] == 2 * 3 * 4 and embed["optimizer"] == 13 * 28  # scatter; Adam on 28 once
    # dx 24 of 7 terms, 24·13 = 312; the table's gradient 28 of 6 terms, 28·11 = 308, summed into the lookup's 28
    assert (head["grad_input"], head["grad_weight"], head["grad_other"], head["optimizer"]) == (312, 0, 336, 0)
    torch_head = step_values(training_step(lm(), batch=2, convention="torch"), "head")
    # 2·6·4·7 = 336 for dx; the export's table is a buffer: no dW
    assert (torch_head["grad_input"], torch_head["grad_weight"]) == (336, 0)


def test_tied_lm_head_of_a_frozen_embedding_computes_no_table_gradient():
    # ids (3,) -> embed (frozen) -> Dense 4 -> 4 (trains) -> the tied head: B = 2, R = 6 rows
    report = run([3], [{"type": "ReversibleEmbedding", "name": "embed", "input_dim": 7, "output_dim": 4},
                       {"type": "Dense", "name": "d", "units": 4},
                       {"type": "ReversibleEmbedding", "name": "head", "input_dim": 7, "output_dim": 4,
                        "reverse": True, "tied_to": "embed"}])
    head = step_values(training_step(report, batch=2, frozen=("embed",)), "head")
    # the head still passes dL/dx to d: 24 of 7 terms, 24·13 = 312; the frozen table gets no gradient here either
    assert (head["grad_input"], head["grad_weight"], head["grad_other"], head["optimizer"]) == (312, 0, 0, 0)
    trained = step_values(training_step(report, batch=2), "head")
    assert trained["grad_other"] == 28 * 11 + 28  # as test_tied_lm_head: the table's 308, summed into the lookup's
    assert step_values(training_step(report, batch=2, frozen=("embed",)), "embed")["grad_weight"] == 0


def test_untied_lm_head():
    head = step_values(training_step(lm(tied=False), batch=2), "head")
    assert (head["grad_input"], head["grad_weight"], head["grad_other"]) == (312, 308, 0)
    torch_head = step_values(training_step(lm(tied=False), batch=2, convention="torch"), "head")
    assert (torch_head["grad_input"], torch_head["grad_weight"]) == (336, 336)


def test_position_embedding_sums_over_the_batch():
    report = run([3], [{"type": "ReversibleEmbedding", "name": "embed", "input_dim": 7, "output_dim": 4},
                       {"type": "PositionEmbedding", "name": "pos", "sequence_length": 5},
                       {"type": "Add", "name": "add", "inputs": ["embed", "pos"]}])
    step = training_step(report, batch=3)
    pos, add = step_values(step, "pos"), step_values(step, "add")
    # the 3·4 used entries each sum 3 samples: 12·2 adds; no gradient to the embedding through it, so embed's
    # output has one reader (add): no sum
    assert pos["grad_weight"] == 24 and pos["grad_input"] == 0 and add["grad_other"] == 0
    assert "no gradient to the input" in step.layers["pos"].note
