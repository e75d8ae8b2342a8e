"""Conv3D, grouped convolutions, DepthwiseConv1D/2D, SeparableConv2D, Conv1DTranspose/Conv2DTranspose.

Numbers are worked by hand in the comments. "Keras" marks params and shapes measured with
Keras 3.15.1 (torch backend); "FlopCounterMode" marks torch 2.13.0's count on that Keras layer,
which is 2 x MACs.
"""

import pytest

from analyzer.errors import NNSpecError
from tests.conftest import last, run, values


def test_conv3d(one_layer):
    # (10, 10, 7, 3), kernel (3, 2, 2), strides (1, 2, 2): depth 10-3+1 = 8, height (10-2)//2+1 = 5,
    # width (7-2)//2+1 = 3; n = 3*2*2*3 = 36 terms per output, 8*5*3*5 = 600 outputs.
    r = one_layer([10, 10, 7, 3], {"type": "Conv3D", "filters": 5, "kernel_size": [3, 2, 2], "strides": [1, 2, 2]})
    assert r["shape"] == (8, 5, 3, 5)  # Keras
    assert r["params"] == 36 * 5 + 5 == 185  # Keras: 185
    assert r["macs"] == 600 * 36 == 21_600  # FlopCounterMode: 43,200
    assert r["dot"] == 600 * 71 and r["bias"] == 600


def test_conv3d_groups_same_no_bias(one_layer):
    # 6 channels in 3 groups: each filter sees 2 channels, n = 27*2 = 54; outputs 10*5*4*6 = 1200
    r = one_layer([10, 5, 4, 6], {"type": "Conv3D", "filters": 6, "kernel_size": 3, "padding": "same", "groups": 3,
                                  "use_bias": False})
    assert r["shape"] == (10, 5, 4, 6)
    assert r["params"] == 54 * 6 == 324  # Keras: 324
    assert r["macs"] == 1200 * 54 == 64_800  # FlopCounterMode: 129,600
    assert r["dot"] == 1200 * 107 and r["bias"] == 0


def test_conv1d_groups(one_layer):
    # (10, 9), k=3, s=2: (10-3)//2+1 = 4; 9 channels in 3 groups: n = 3*3 = 9
    r = one_layer([10, 9], {"type": "Conv1D", "filters": 6, "kernel_size": 3, "strides": 2, "groups": 3})
    assert r["shape"] == (4, 6)
    assert r["params"] == 9 * 6 + 6 == 60  # Keras: 60
    assert r["macs"] == 24 * 9 == 216  # FlopCounterMode: 432


def test_groups_must_divide_channels_and_filters():
    with pytest.raises(NNSpecError, match="not divisible by groups 2"):
        run([8, 3], [{"type": "Conv1D", "filters": 4, "kernel_size": 3, "groups": 2}])
    with pytest.raises(NNSpecError, match="filters 3 are not divisible by groups 2"):
        run([8, 4], [{"type": "Conv1D", "filters": 3, "kernel_size": 3, "groups": 2}])


def test_depthwise_conv2d(one_layer):
    # (10, 10, 32), k=3, same, s=2: ceil(10/2) = 5; each of 5*5*32 = 800 outputs is a 9-term product
    r = one_layer([10, 10, 32], {"type": "DepthwiseConv2D", "kernel_size": 3, "padding": "same", "strides": 2})
    assert r["shape"] == (5, 5, 32)  # Keras
    assert r["params"] == 9 * 32 + 32 == 320  # Keras: 320
    assert r["macs"] == 800 * 9 == 7_200  # FlopCounterMode: 14,400
    assert r["dot"] == 800 * 17 and r["bias"] == 800


def test_depthwise_conv2d_mobilenet_block(one_layer):
    # MobileNet's first depthwise layer: (112, 112, 32), 3x3, same
    r = one_layer([112, 112, 32], {"type": "DepthwiseConv2D", "kernel_size": 3, "padding": "same", "use_bias": False})
    assert r["shape"] == (112, 112, 32)
    assert r["params"] == 288  # Keras with use_bias=True: 320 = 288 + 32
    assert r["macs"] == 112 * 112 * 32 * 9 == 3_612_672


def test_depthwise_conv1d_multiplier(one_layer):
    # (10, 5), k=3, s=2, m=2: (10-3)//2+1 = 4 positions, 5*2 = 10 channels
    r = one_layer([10, 5], {"type": "DepthwiseConv1D", "kernel_size": 3, "depth_multiplier": 2, "strides": 2})
    assert r["shape"] == (4, 10)  # Keras
    assert r["params"] == 3 * 10 + 10 == 40  # Keras: 40
    assert r["macs"] == 40 * 3 == 120  # FlopCounterMode: 240


def test_separable_conv2d(one_layer):
    # (10, 11, 8), k=3, m=2, valid: (8, 9); depthwise 72 positions * 16 channels * 9 terms,
    # pointwise 72 * 16 filters * 16 terms
    r = one_layer([10, 11, 8], {"type": "SeparableConv2D", "filters": 16, "kernel_size": 3, "depth_multiplier": 2})
    assert r["shape"] == (8, 9, 16)  # Keras
    assert r["params"] == 9 * 16 + 16 * 16 + 16 == 416  # Keras: 416
    assert r["macs"] == 72 * 16 * 9 + 72 * 16 * 16 == 28_800  # FlopCounterMode: 57,600
    assert r["dot"] == 72 * 16 * 17 + 72 * 16 * 31
    assert r["bias"] == 72 * 16


# (kernel, stride, padding, output_padding, dilation, expected length for an input of 10), shapes from Keras
TRANSPOSE_LENGTHS = [
    (3, 2, "valid", None, 1, 21),  # (10-1)*2 + max(3, 2)
    (2, 3, "valid", None, 1, 30),  # (10-1)*3 + max(2, 3)
    (3, 2, "same", None, 1, 20),  # 10*2
    (4, 2, "same", None, 1, 20),
    (3, 2, "valid", 1, 1, 22),  # (10-1)*2 + 3 + 1
    (3, 3, "same", 2, 1, 30),  # (10-1)*3 + 3 mod 2 + 2
    (4, 3, "same", 1, 1, 28),  # (10-1)*3 + 4 mod 2 + 1
    (5, 1, "valid", None, 1, 14),  # 9 + 5
    (3, 1, "valid", None, 2, 14),  # K = 2*(3-1)+1 = 5: 9 + 5
]


@pytest.mark.parametrize(("kernel", "stride", "padding", "output_padding", "dilation", "expected"), TRANSPOSE_LENGTHS)
def test_conv1d_transpose_length(one_layer, kernel, stride, padding, output_padding, dilation, expected):
    layer = {"type": "Conv1DTranspose", "filters": 4, "kernel_size": kernel, "strides": stride, "padding": padding,
             "dilation_rate": dilation}
    if output_padding is not None:
        layer["output_padding"] = output_padding
    r = one_layer([10, 3], layer)
    assert r["shape"] == (expected, 4)
    assert r["params"] == kernel * 3 * 4 + 4  # Keras: 40 for k=3, 28 for k=2, 52 for k=4, 64 for k=5


def test_conv1d_transpose_costs(one_layer):
    # 10 input positions, each multiplies its 3 channels into 3 taps x 4 filters = 12 products of 3 terms
    r = one_layer([10, 3], {"type": "Conv1DTranspose", "filters": 4, "kernel_size": 3, "strides": 2})
    assert r["macs"] == 10 * 12 * 3 == 360  # FlopCounterMode: 720
    assert r["dot"] == 120 * 5 == 600  # 2*3 - 1 per product
    assert r["other"] == 120  # each product added into its output position
    assert r["bias"] == 21 * 4  # one per output element
    assert r["dot"] + r["other"] == 2 * r["macs"]


def test_conv2d_transpose(one_layer):
    # (10, 5, 4), kernel (3, 4), strides (2, 3), same: (20, 15); 50 positions x 12 taps x 6 filters x 4 channels
    r = one_layer([10, 5, 4], {"type": "Conv2DTranspose", "filters": 6, "kernel_size": [3, 4], "strides": [2, 3],
                               "padding": "same"})
    assert r["shape"] == (20, 15, 6)  # Keras
    assert r["params"] == 12 * 4 * 6 + 6 == 294  # Keras: 294
    assert r["macs"] == 50 * 12 * 6 * 4 == 14_400  # FlopCounterMode: 28,800
    assert r["bias"] == 20 * 15 * 6


def test_conv2d_transpose_output_padding(one_layer):
    # (10, 10, 2), k=3, s=2, output_padding 1, valid: 9*2 + 3 + 1 = 22
    r = one_layer([10, 10, 2], {"type": "Conv2DTranspose", "filters": 3, "kernel_size": 3, "strides": 2,
                                "output_padding": 1, "use_bias": False})
    assert r["shape"] == (22, 22, 3)  # Keras
    assert r["params"] == 9 * 2 * 3 == 54  # Keras: 54
    assert r["macs"] == 100 * 9 * 3 * 2 == 5_400  # FlopCounterMode: 10,800


def test_conv_transpose_output_padding_must_be_below_stride():
    with pytest.raises(NNSpecError, match="output_padding 2 on the length axis is not less than the stride 2"):
        run([10, 3], [{"type": "Conv1DTranspose", "filters": 2, "kernel_size": 3, "strides": 2, "output_padding": 2}])


def test_conv_transpose_symbolic_length():
    report = run(["L", 3], [{"type": "Conv1DTranspose", "filters": 2, "kernel_size": 3, "strides": 2}], {"L": 10})
    length = last(report).output_shape[0]
    L = report.symbols[0].symbol
    assert length.expand() == 2 * L + 1  # (L - 1)*2 + 3
    assert values(report.at(L=50), last(report))["macs"] == 50 * 3 * 2 * 3
