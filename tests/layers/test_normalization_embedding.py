"""LayerNormalization, GroupNormalization, RMSNormalization, Embedding. Hand-worked; "Keras" marks params
measured with Keras 3.15.1 (torch backend)."""

import pytest

from analyzer.errors import NNSpecError
from tests.conftest import last, run, values


def test_layer_normalization(one_layer):
    # (10, 12): 10 rows of n = 12. Per row 5n + 2 = 62; gamma and beta one each per element.
    r = one_layer([10, 12], {"type": "LayerNormalization"})
    assert r["shape"] == (10, 12)
    assert (r["trainable"], r["non_trainable"]) == (24, 0)  # Keras: 24
    assert r["other"] == 10 * 62 + 2 * 120 == 860
    assert r["macs"] == 0


def test_rms_normalization(one_layer):
    # (4, 6): 4 rows of n = 6. Per row: squares 6, 5 adds, 1 divide (mean), + eps and sqrt 2, 6 divides = 3n + 2 = 20;
    # then the scale, 1 multiply per element: 4·20 + 24 = 104. params: the scale, one per normalized value.
    r = one_layer([4, 6], {"type": "RMSNormalization"})
    assert r["shape"] == (4, 6) and r["macs"] == 0
    assert (r["trainable"], r["non_trainable"]) == (6, 0)  # Keras 3.15.1 RMSNormalization().count_params(): 6
    assert r["other"] == r["flops"] == 104


def test_rms_normalization_over_two_axes_and_without_scale(one_layer):
    # axis [1, 2] of (4, 6): one row of 24 -> 3·24 + 2 = 74, + 24 for the scale; 24 params
    r = one_layer([4, 6], {"type": "RMSNormalization", "axis": [1, 2]})
    assert (r["params"], r["other"]) == (24, 98)
    r = one_layer([4, 6], {"type": "RMSNormalization", "scale": False})
    assert (r["params"], r["other"]) == (0, 80)


def test_rms_normalization_is_symbolic_in_the_length():
    # T rows of 8: 3·8T + 2T + 8T = 34T; the scale is 8 params whatever T is
    report = run(["T", 8], [{"type": "RMSNormalization", "epsilon": 1e-5}], {"T": 16})
    assert str(last(report).counts.other) == "34*T"
    assert values(report.at(T=100), last(report))["other"] == 3400


def test_layer_normalization_bert(one_layer):
    r = one_layer([128, 768], {"type": "LayerNormalization", "epsilon": 1e-12})
    assert r["params"] == 1536  # Keras: 1,536
    assert r["other"] == 128 * (5 * 768 + 2) + 2 * 128 * 768


def test_layer_normalization_over_two_axes(one_layer):
    # Keras axes 1 and 2 of (batch, 3, 10, 5) are 3 and 10: n = 30, 5 rows; scale only
    r = one_layer([3, 10, 5], {"type": "LayerNormalization", "axis": [1, 2], "center": False})
    assert r["params"] == 30  # Keras: 30
    assert r["other"] == 5 * (5 * 30 + 2) + 150 == 910


def test_group_normalization(one_layer):
    # (10, 10, 8), 4 groups of 10*10*2 = 200 values: 4 * (5*200 + 2), then gamma and beta on 800
    r = one_layer([10, 10, 8], {"type": "GroupNormalization", "groups": 4})
    assert r["params"] == 16  # Keras: 16
    assert r["other"] == 4 * 1002 + 2 * 800 == 5608


def test_group_normalization_instance(one_layer):
    # groups -1: one group per channel (6 groups of 10), no gamma
    r = one_layer([10, 6], {"type": "GroupNormalization", "groups": -1, "scale": False})
    assert r["params"] == 6  # Keras: 6
    assert r["other"] == 6 * (5 * 10 + 2) + 60 == 372


def test_group_normalization_requirements():
    with pytest.raises(NNSpecError, match="channels 8 are not divisible by groups 3"):
        run([4, 8], [{"type": "GroupNormalization", "groups": 3}])
    with pytest.raises(NNSpecError, match="groups 32 exceed the channels 8"):
        run([4, 8], [{"type": "GroupNormalization"}])


def test_embedding(one_layer):
    r = one_layer([10], {"type": "Embedding", "input_dim": 1000, "output_dim": 16})
    assert r["shape"] == (10, 16)  # Keras
    assert r["params"] == 16_000  # Keras: 16,000
    assert r["flops"] == 0 and r["macs"] == 0  # a lookup


def test_embedding_symbolic():
    report = run(["S"], [{"type": "Embedding", "input_dim": "V", "output_dim": "d"}], {"S": 128, "V": 30522, "d": 768})
    r = values(report, last(report))
    assert r["shape"] == (128, 768)
    assert r["params"] == 30522 * 768 == 23_440_896  # Keras Embedding(30522, 768): 23,440,896
