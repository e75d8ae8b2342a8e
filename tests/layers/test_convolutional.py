"""Conv1D / Conv2D / SeparableConv1D, numbers worked by hand in the comments."""

import pytest
import sympy

from tests.conftest import last, run


def test_conv1d_valid_stride2(one_layer):
    # L=10, k=3, s=2: floor((10 - 3)/2) + 1 = 4 positions; n = 3*4 = 12 terms per output.
    r = one_layer([10, 4], {"type": "Conv1D", "filters": 8, "kernel_size": 3, "strides": 2, "activation": "relu"})
    assert r["shape"] == (4, 8)
    assert r["params"] == 3 * 4 * 8 + 8 == 104
    assert r["macs"] == 4 * 8 * 12 == 384
    assert r["dot"] == 4 * 8 * (2 * 12 - 1) == 736
    assert r["bias"] == 32
    assert r["activation"] == 32  # relu: one compare per output
    assert r["flops"] == 736 + 32 + 32


@pytest.mark.parametrize(("length", "stride", "expected"), [(11, 2, 6), (12, 2, 6), (13, 3, 5), (7, 1, 7)])
def test_conv1d_same_is_ceil(one_layer, length, stride, expected):
    r = one_layer([length, 2], {"type": "Conv1D", "filters": 1, "kernel_size": 4, "strides": stride, "padding": "same"})
    assert r["shape"] == (expected, 1)


def test_conv1d_dilation_and_causal(one_layer):
    # k=3 dilated by 2 spans 5 samples: 20 - 5 + 1 = 16
    assert one_layer([20, 1], {"type": "Conv1D", "filters": 1, "kernel_size": 3, "dilation_rate": 2})["shape"] == (16, 1)
    assert one_layer([20, 1], {"type": "Conv1D", "filters": 1, "kernel_size": 3, "padding": "causal"})["shape"] == (20, 1)


def test_conv2d_valid_rectangular_kernel(one_layer):
    # (7, 5, 3) input, kernel (3, 2): (5, 4) positions, n = 3*2*3 = 18
    r = one_layer([7, 5, 3], {"type": "Conv2D", "filters": 4, "kernel_size": [3, 2]})
    assert r["shape"] == (5, 4, 4)
    assert r["params"] == 18 * 4 + 4 == 76
    assert r["macs"] == 5 * 4 * 4 * 18 == 1440
    assert r["dot"] == 80 * 35


def test_conv2d_groups(one_layer):
    # 4 channels in 2 groups: each filter sees 2 channels
    r = one_layer([3, 3, 4], {"type": "Conv2D", "filters": 6, "kernel_size": 1, "groups": 2})
    assert r["params"] == 1 * 1 * 2 * 6 + 6 == 18
    assert r["macs"] == 9 * 6 * 2


def test_conv2d_without_bias(one_layer):
    r = one_layer([4, 4, 1], {"type": "Conv2D", "filters": 2, "kernel_size": 2, "use_bias": False})
    assert r["params"] == 8 and r["bias"] == 0
    assert r["dot"] == 9 * 2 * 7  # 2*4 - 1 = 7: the seed's "-1 without bias"


def test_pet_cgdnn_convs_match_the_seed_hand_counts(one_layer):
    # Seed: conv1_1 on (128, 2, 1), 75 filters (8, 2): 121*1*75 outputs * (2*16 - 1) = 281,325
    r = one_layer([128, 2, 1], {"type": "Conv2D", "filters": 75, "kernel_size": [8, 2]}, bias="off")
    assert r["dot"] == 121 * 75 * 31 == 281_325
    # conv1_2 on (121, 1, 75), 25 filters (5, 1): 117*25 * (2*375 - 1) = 2,190,825
    r = one_layer([121, 1, 75], {"type": "Conv2D", "filters": 25, "kernel_size": [5, 1]}, bias="off")
    assert r["dot"] == 117 * 25 * 749 == 2_190_825


def test_separable_conv1d_scnn_layer(one_layer):
    # SCNN's separable_conv1d_1: depthwise 8*128, pointwise 128*64 + 64 bias = 9,280
    r = one_layer([128, 128], {"type": "SeparableConv1D", "filters": 64, "kernel_size": 8, "padding": "same"})
    assert r["params"] == 8 * 128 + 128 * 64 + 64 == 9280
    assert r["macs"] == 128 * 128 * 8 + 128 * 64 * 128
    assert r["dot"] == 128 * 128 * 15 + 128 * 64 * 255
    assert r["bias"] == 128 * 64


def test_separable_conv1d_depth_multiplier(one_layer):
    r = one_layer([10, 3], {"type": "SeparableConv1D", "filters": 4, "kernel_size": 3, "depth_multiplier": 2})
    assert r["shape"] == (8, 4)
    assert r["params"] == 3 * 3 * 2 + 6 * 4 + 4 == 46


def test_stacked_stride2_convs_fold_to_one_floor():
    layers = [{"type": "Conv1D", "filters": 1, "kernel_size": 3, "strides": 2} for _ in range(3)]
    report = run(["L", 1], layers, {"L": 100})
    length = last(report).output_shape[0]
    assert len(length.atoms(sympy.floor)) == 1, length
    L = report.symbols[0].symbol
    for n in range(15, 200):
        expected = n
        for _ in range(3):
            expected = (expected - 3) // 2 + 1
        assert length.subs(L, n) == expected
