"""Pooling, global pooling, UpSampling, ZeroPadding, Cropping. Hand-worked; shapes marked
"Keras" were measured with Keras 3.15.1 (torch backend). None of these layers has params
(Keras: 0 for every case below)."""

import pytest

from analyzer.errors import NNSpecError
from tests.conftest import last, run, values


def test_max_pooling_1d_default(one_layer):
    # pool 2, strides = pool: 10 -> 5; each output compares 2 values: 1 compare
    r = one_layer([10, 3], {"type": "MaxPooling1D"})
    assert r["shape"] == (5, 3)  # Keras
    assert r["params"] == 0 and r["macs"] == 0
    assert r["other"] == 15 * 1 and r["flops"] == 15


def test_max_pooling_1d_same_stride(one_layer):
    # pool 3, stride 2, same: (10 - 1)//2 + 1 = 5; 2 compares per output
    r = one_layer([10, 3], {"type": "MaxPooling1D", "pool_size": 3, "strides": 2, "padding": "same"})
    assert r["shape"] == (5, 3)  # Keras
    assert r["other"] == 15 * 2


def test_average_pooling_2d(one_layer):
    # pool (3, 2), strides (2, 1): (10-3)//2+1 = 4, (6-2)//1+1 = 5; window 6: 5 adds + 1 divide
    r = one_layer([10, 6, 3], {"type": "AveragePooling2D", "pool_size": [3, 2], "strides": [2, 1]})
    assert r["shape"] == (4, 5, 3)  # Keras
    assert r["other"] == 4 * 5 * 3 * 6 == 360


def test_pooling_2d_same(one_layer):
    # pool 3, stride 2, same on 17: (17-1)//2+1 = 9
    r = one_layer([17, 17, 2], {"type": "MaxPooling2D", "pool_size": 3, "strides": 2, "padding": "same"})
    assert r["shape"] == (9, 9, 2)  # Keras
    assert r["other"] == 9 * 9 * 2 * 8


def test_average_pooling_needs_pool_size():
    # Keras 3's AveragePooling has no default pool_size (MaxPooling's is 2)
    with pytest.raises(NNSpecError, match="missing required field 'pool_size'"):
        run([10, 3], [{"type": "AveragePooling1D"}])


def test_pooling_window_larger_than_input_is_a_constraint():
    report = run(["L", 2], [{"type": "MaxPooling1D", "pool_size": 4}], {"L": 8})
    assert report.describe_constraints()[0].startswith("L >= 4")
    with pytest.raises(NNSpecError, match="pool length 4 exceeds input length L"):
        report.at(L=3)
    L = report.symbols[0].symbol
    assert values(report.at(L=13), last(report))["shape"] == (3, 2)  # (13 - 4)//4 + 1
    assert last(report).output_shape[0].subs(L, 20) == 5


@pytest.mark.parametrize(("layer", "other"), [
    ({"type": "GlobalAveragePooling2D"}, 3 * 40),  # 40 positions per channel: 39 adds + 1 divide
    ({"type": "GlobalMaxPooling2D"}, 3 * 39),  # 39 compares per channel
])
def test_global_pooling_2d(one_layer, layer, other):
    r = one_layer([10, 4, 3], layer)
    assert r["shape"] == (3,)  # Keras
    assert r["other"] == other


def test_global_pooling_keepdims(one_layer):
    assert one_layer([10, 3], {"type": "GlobalMaxPooling1D", "keepdims": True})["shape"] == (1, 3)  # Keras
    assert one_layer([10, 4, 3], {"type": "GlobalAveragePooling2D", "keepdims": True})["shape"] == (1, 1, 3)  # Keras
    assert one_layer([10, 3], {"type": "GlobalAveragePooling1D"})["other"] == 3 * 10


def test_up_sampling(one_layer):
    assert one_layer([10, 2], {"type": "UpSampling1D", "size": 3})["shape"] == (30, 2)  # Keras
    r = one_layer([10, 4, 2], {"type": "UpSampling2D"})
    assert r["shape"] == (20, 8, 2) and r["flops"] == 0  # Keras; nearest: copies
    r = one_layer([10, 4, 2], {"type": "UpSampling2D", "size": [2, 3], "interpolation": "bilinear"})
    assert r["shape"] == (20, 12, 2)  # Keras
    assert r["other"] == 7 * 20 * 12 * 2  # 4 multiplies + 3 adds per output element


@pytest.mark.parametrize(("layer", "shape"), [
    ({"type": "ZeroPadding2D", "padding": [[1, 2], [3, 0]]}, (13, 7, 2)),
    ({"type": "ZeroPadding2D", "padding": [2, 1]}, (14, 6, 2)),
    ({"type": "ZeroPadding2D", "padding": 3}, (16, 10, 2)),
    ({"type": "ZeroPadding2D"}, (12, 6, 2)),
    ({"type": "Cropping2D", "cropping": [[1, 2], [0, 1]]}, (7, 3, 2)),
    ({"type": "Cropping2D", "cropping": 1}, (8, 2, 2)),
    ({"type": "Cropping2D"}, (10, 4, 2)),
])
def test_padding_and_cropping_2d(one_layer, layer, shape):
    r = one_layer([10, 4, 2], layer)
    assert r["shape"] == shape  # Keras (but the default ZeroPadding2D, worked by hand: 10+2, 4+2)
    assert r["flops"] == 0 and r["params"] == 0


def test_padding_and_cropping_1d(one_layer):
    assert one_layer([10, 2], {"type": "ZeroPadding1D", "padding": [2, 3]})["shape"] == (15, 2)  # Keras
    assert one_layer([10, 2], {"type": "ZeroPadding1D"})["shape"] == (12, 2)  # Keras
    assert one_layer([10, 2], {"type": "Cropping1D", "cropping": [2, 3]})["shape"] == (5, 2)  # Keras
    assert one_layer([10, 2], {"type": "Cropping1D"})["shape"] == (8, 2)  # Keras


def test_cropping_everything_is_an_error_or_a_constraint():
    with pytest.raises(NNSpecError, match="removes all of the input length 5"):
        run([5, 2], [{"type": "Cropping1D", "cropping": [2, 3]}])
    report = run(["L", 2], [{"type": "Cropping1D", "cropping": [2, 3]}], {"L": 10})
    assert report.describe_constraints()[0].startswith("L >= 6")


def test_padding_as_expression():
    report = run(["L", 2], [{"type": "ZeroPadding1D", "padding": ["k", "k + 1"]}], {"L": 10, "k": 2})
    assert values(report.at(k=5), last(report))["shape"] == (21, 2)
