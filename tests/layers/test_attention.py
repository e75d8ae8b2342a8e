"""MultiHeadAttention. Hand-worked; "Keras" marks params and shapes measured with Keras 3.15.1
(torch backend), "FlopCounterMode" torch 2.13.0's count of that layer called with
return_attention_scores=True (Keras' einsum path; 2 x MACs)."""

import pytest

from analyzer.errors import NNSpecError
from tests.conftest import last, run, values


def attention(shapes, **fields):
    names = [f"x{i}" for i in range(len(shapes))]
    report = run(shapes, [{"type": "MultiHeadAttention", "inputs": fields.pop("inputs", names), **fields}])
    return values(report, last(report))


def test_self_attention():
    # x: (10, 32), 4 heads of key_dim 8: Q, K, V and O are 32x32 (+32 bias) each
    r = attention([[10, 32]], inputs=["x0", "x0"], num_heads=4, key_dim=8)
    assert r["shape"] == (10, 32)  # Keras
    assert r["params"] == 4 * (32 * 32 + 32) == 4224  # Keras: 4,224
    # Q, K, V, O: 10*32 outputs of 32 terms each; scores 4*10*10 of 8 terms; attention·V 4*10*8 of 10 terms
    assert r["macs"] == 4 * 320 * 32 + 400 * 8 + 320 * 10 == 47_360  # FlopCounterMode: 94,720
    assert r["dot"] == 4 * 320 * 63 + 400 * 15 + 320 * 19 == 92_720
    assert r["bias"] == 4 * 320
    assert r["activation"] == 4 * 10 * (3 * 10 - 1)  # softmax over 10 keys, per head and query
    assert r["other"] == 10 * 4 * 8  # query scaled by 1/sqrt(8)


def test_cross_attention_value_dim_output_shape():
    # query (10, 6), value (9, 4); 2 heads, key_dim 3, value_dim 5, output 7
    r = attention([[10, 6], [9, 4]], num_heads=2, key_dim=3, value_dim=5, output_shape=7)
    assert r["shape"] == (10, 7)  # Keras
    # Q 6*6+6, K 4*6+6, V 4*10+10, O 10*7+7
    assert r["params"] == 42 + 30 + 50 + 77 == 199  # Keras: 199
    # Q 60 outputs x 6 terms, K 54 x 4, V 90 x 4, scores 180 x 3, attention·V 100 x 9, O 70 x 10
    assert r["macs"] == 360 + 216 + 360 + 540 + 900 + 700 == 3076  # FlopCounterMode: 6,152
    assert r["activation"] == 2 * 10 * 26


def test_separate_key_no_bias_tuple_output():
    # query (10, 6), value (9, 4), key (9, 10); 3 heads of 4; output_shape (2, 5)
    r = attention([[10, 6], [9, 4], [9, 10]], num_heads=3, key_dim=4, use_bias=False, output_shape=[2, 5])
    assert r["shape"] == (10, 2, 5)  # Keras
    assert r["params"] == 12 * 6 + 12 * 10 + 12 * 4 + 12 * 10 == 360  # Keras: 360
    assert r["macs"] == 120 * 6 + 108 * 10 + 108 * 4 + 270 * 4 + 120 * 9 + 100 * 12 == 5592  # FlopCounterMode: 11,184
    assert r["bias"] == 0


def test_gated_attention():
    # query (10, 6), value (5, 3); 2 heads of 4; the gate is one more query-sized projection
    r = attention([[10, 6], [5, 3]], num_heads=2, key_dim=4, use_gate=True)
    assert r["params"] == 56 + 32 + 32 + 54 + 56 == 230  # Keras: 230
    assert r["macs"] == 480 + 120 + 120 + 400 + 400 + 480 + 480 == 2480  # FlopCounterMode: 4,960
    assert r["activation"] == 2 * 10 * 14 + 4 * 80  # softmax, sigmoid of the gate
    assert r["other"] == 80 + 80  # scaling, gate multiply


def test_bert_base_attention_symbolic():
    layers = [{"type": "MultiHeadAttention", "num_heads": "h", "key_dim": "d/h", "inputs": ["x0", "x0"]}]
    report = run(["S", "d"], layers, {"S": 128, "d": 768, "h": 12})
    r = values(report, last(report))
    assert r["params"] == 4 * 768 * 768 + 4 * 768 == 2_362_368  # Keras MHA(12, 64) on 768: 2,362,368
    assert r["macs"] == 4 * 128 * 768 * 768 + 2 * 128 * 128 * 768
    assert any("d/h is an integer" in c for c in report.describe_constraints())


def test_attention_refusals():
    with pytest.raises(NNSpecError, match="two or three inputs"):
        attention([[4, 2]] * 4, num_heads=1, key_dim=2)
    with pytest.raises(NNSpecError, match="key and value differ on axis 1"):
        attention([[4, 2], [5, 2], [6, 2]], num_heads=1, key_dim=2)
    with pytest.raises(NNSpecError, match="attention_axes: axis 2 is not a position axis"):
        attention([[4, 2], [4, 2]], num_heads=1, key_dim=2, attention_axes=[2])  # the feature axis
    with pytest.raises(NNSpecError, match="attention_axes: axis 0 is not a position axis"):
        attention([[4, 2], [4, 2]], num_heads=1, key_dim=2, attention_axes=0)  # the batch
    with pytest.raises(NNSpecError, match="axis 1 is listed twice"):
        attention([[3, 4, 2], [3, 4, 2]], num_heads=1, key_dim=2, attention_axes=[1, -3])
    with pytest.raises(NNSpecError, match=r"query and value differ on axis 2 \(4 vs 5\), which is not in attention_axes"):
        attention([[3, 4, 2], [3, 5, 2]], num_heads=1, key_dim=2, attention_axes=[1])


def test_attention_over_axis_1_of_an_image():
    # (3, 4, 6), 2 heads of key_dim 5, attention over axis 1 (3 rows); axis 2 (4 columns) is a batch axis
    r = attention([[3, 4, 6]], inputs=["x0", "x0"], num_heads=2, key_dim=5, attention_axes=[1])
    assert r["shape"] == (3, 4, 6)  # Keras
    assert r["params"] == 3 * (6 * 10 + 10) + 10 * 6 + 6 == 276  # Keras: 276 (as without attention_axes)
    # Q, K, V, O: 12 positions x 10 outputs x 6 terms = 720 each; scores: 2 heads x 4 columns x 3 x 3 of 5 terms;
    # weighted sum: 2 x 4 x 3 queries x 5 of 3 terms
    assert r["macs"] == 4 * 720 + 72 * 5 + 120 * 3 == 3600  # FlopCounterMode on Keras' layer: 7,200
    assert r["activation"] == 2 * 4 * 3 * (3 * 3 - 1)  # softmax over 3 keys, per head, column and query
    default = attention([[3, 4, 6]], inputs=["x0", "x0"], num_heads=2, key_dim=5)
    assert default["macs"] == 4 * 720 + 2 * 12 * 12 * 5 * 2 == 5760  # FlopCounterMode: 11,520
    both = attention([[3, 4, 6]], inputs=["x0", "x0"], num_heads=2, key_dim=5, attention_axes=[2, -3])
    assert both == default  # every position axis, in any order, is the default


def test_cross_attention_over_one_axis():
    # query (3, 4, 6), value (7, 4, 2); attention over axis 1 (3 queries, 7 keys), axis 2 must match (4)
    r = attention([[3, 4, 6], [7, 4, 2]], num_heads=2, key_dim=5, value_dim=3, output_shape=4, attention_axes=1)
    assert r["shape"] == (3, 4, 4)  # Keras
    assert r["params"] == 70 + 30 + 18 + 28 == 146  # Keras: 146
    # Q 12x10x6, K 28x10x2, V 28x6x2, O 12x4x6, scores 2x4x3x7 of 5, weighted sum 2x4x3x3 of 7
    assert r["macs"] == 720 + 560 + 336 + 288 + 840 + 504 == 3248  # FlopCounterMode on Keras' layer: 6,496
