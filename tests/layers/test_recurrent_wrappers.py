"""SimpleRNN, LSTM, GRU flags, Bidirectional, TimeDistributed. Hand-worked; "Keras" marks params
and shapes measured with Keras 3.15.1 (torch backend), "torch" params of torch 2.13.0's nn
modules, "FlopCounterMode" torch's count on the Keras layer (2 x MACs)."""

import pytest

from analyzer.errors import NNSpecError
from tests.conftest import last, run, values


def test_simple_rnn(one_layer):
    # T=7, I=5, H=10: one block of H units, x·W (5 terms) and h·U (10 terms) each step
    r = one_layer([7, 5], {"type": "SimpleRNN", "units": 10})
    assert r["shape"] == (10,)
    assert r["params"] == 10 * 15 + 10 == 160  # Keras: 160
    assert r["macs"] == 7 * 10 * 15 == 1050
    # (FlopCounterMode says 2,400 = 2 * 8 * 150: Keras' torch backend runs the cell once more for shapes)
    assert r["dot"] == 7 * 10 * (9 + 19) and r["bias"] == 70
    assert r["other"] == 70  # adding the two products
    assert r["activation"] == 70 * 5  # tanh


def test_lstm(one_layer):
    # 4 gates x 10 units = 40 gate units, each from 5 + 10 terms
    r = one_layer([7, 5], {"type": "LSTM", "units": 10})
    assert r["params"] == 40 * 15 + 40 == 640  # Keras: 640
    assert r["macs"] == 7 * 40 * 15 == 4200  # FlopCounterMode: 8,400
    assert r["dot"] == 7 * 40 * (9 + 19) and r["bias"] == 7 * 40
    assert r["other"] == 7 * 10 * 8  # 4 gate sums, f·c + i·g (3), o·tanh(c) (1)
    assert r["activation"] == 7 * 10 * (3 * 4 + 2 * 5)  # sigmoid i, f, o; tanh g, c


def test_lstm_sequences_without_bias(one_layer):
    r = one_layer([10, 3], {"type": "LSTM", "units": 4, "return_sequences": True, "use_bias": False})
    assert r["shape"] == (10, 4)  # Keras
    assert r["params"] == 16 * 7 == 112  # Keras: 112
    assert r["bias"] == 0


def test_lstm_cudnn_compatible_counts_the_second_bias(one_layer):
    r = one_layer([7, 5], {"type": "LSTM", "units": 10, "cudnn_compatible": True})
    assert r["params"] == 40 * 15 + 80 == 680  # torch nn.LSTM(5, 10): 680
    assert r["bias"] == 7 * 80
    r = one_layer([128, 2], {"type": "LSTM", "units": 128})
    assert r["params"] == 67_072  # Keras LSTM(128) on 2 features: 67,072
    r = one_layer([128, 2], {"type": "LSTM", "units": 128, "cudnn_compatible": True})
    assert r["params"] == 67_584  # torch nn.LSTM(2, 128): 67,584 (b_ih and b_hh)


def test_gru_cudnn_compatible(one_layer):
    # CuDNNGRU had two bias vectors: the count of reset_after=True whatever reset_after says
    r = one_layer([128, 2], {"type": "GRU", "units": 128, "reset_after": False})
    assert r["params"] == 3 * 128 * 130 + 384 == 50_304  # Keras GRU(128, reset_after=False): 50,304
    r = one_layer([128, 2], {"type": "GRU", "units": 128, "reset_after": False, "cudnn_compatible": True})
    assert r["params"] == 3 * 128 * 130 + 768 == 50_688  # torch nn.GRU(2, 128): 50,688
    assert one_layer([7, 5], {"type": "GRU", "units": 10})["params"] == 510  # Keras: 510
    assert one_layer([7, 5], {"type": "GRU", "units": 10})["macs"] == 7 * 30 * 15  # FlopCounterMode: 6,300


def test_initial_state_must_match_the_units():
    with pytest.raises(NNSpecError, match="initial state state_h has 3 units, the layer 4"):
        run([[7, 5], [3]], [{"type": "LSTM", "units": 4, "inputs": ["x0", "x1", "x1"]}])


def test_bidirectional_lstm(one_layer):
    # two LSTM(10) on 3 features: 2 * (40*13 + 40); concat doubles the last axis
    r = one_layer([6, 3], {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 10}})
    assert r["shape"] == (20,)  # Keras
    assert r["params"] == 2 * 560 == 1120  # Keras: 1,120
    assert r["macs"] == 2 * 6 * 40 * 13 == 6240  # FlopCounterMode: 12,480
    assert r["other"] == 2 * 6 * 8 * 10  # concat is free


def test_bidirectional_lstm_sequences(one_layer):
    r = one_layer([128, 2], {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 128, "return_sequences": True}})
    assert r["shape"] == (128, 256)  # Keras
    assert r["params"] == 134_144  # Keras: 134,144


@pytest.mark.parametrize(("mode", "per_element"), [("sum", 1), ("mul", 1), ("ave", 2)])
def test_bidirectional_gru_merge_modes(one_layer, mode, per_element):
    layer = {"type": "Bidirectional", "merge_mode": mode, "layer": {"type": "GRU", "units": 5, "return_sequences": True}}
    r = one_layer([10, 3], layer)
    assert r["shape"] == (10, 5)  # Keras
    assert r["params"] == 2 * (15 * 8 + 30) == 300  # Keras: 300
    assert r["other"] == 2 * 10 * 8 * 5 + per_element * 50


def test_bidirectional_refusals():
    with pytest.raises(NNSpecError, match="wraps a recurrent layer"):
        run([6, 3], [{"type": "Bidirectional", "layer": {"type": "Dense", "units": 3}}])
    with pytest.raises(NNSpecError, match=r"unknown field 'unitz' \(did you mean 'units'\?\)"):
        run([6, 3], [{"type": "Bidirectional", "layer": {"type": "LSTM", "unitz": 3}}])


def test_bidirectional_symbolic_units():
    report = run(["T", 4], [{"type": "Bidirectional", "layer": {"type": "SimpleRNN", "units": "H"}}], {"T": 5, "H": 3})
    r = values(report.at(H=6), last(report))
    assert r["shape"] == (12,)
    assert r["params"] == 2 * (6 * 10 + 6)


def test_time_distributed_dense(one_layer):
    r = one_layer([10, 4], {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 6}})
    assert r["shape"] == (10, 6)  # Keras
    assert r["params"] == 30  # Keras: 30 (shared across steps)
    assert r["macs"] == 10 * 6 * 4 == 240  # FlopCounterMode: 480


def test_time_distributed_conv2d(one_layer):
    # 5 frames of (10, 10, 2), Conv2D(4, 3): (8, 8, 4) each, n = 18
    r = one_layer([5, 10, 10, 2], {"type": "TimeDistributed", "layer": {"type": "Conv2D", "filters": 4, "kernel_size": 3}})
    assert r["shape"] == (5, 8, 8, 4)  # Keras
    assert r["params"] == 9 * 2 * 4 + 4 == 76  # Keras: 76
    assert r["macs"] == 5 * 64 * 4 * 18 == 23_040  # FlopCounterMode: 46,080


def test_time_distributed_inner_constraint_and_trainable():
    layer = {"type": "TimeDistributed", "layer": {"type": "Conv1D", "filters": 2, "kernel_size": 5, "trainable": False}}
    report = run(["T", "L", 3], [layer], {"T": 4, "L": 8})
    assert any(c.startswith("L >= 5") for c in report.describe_constraints())
    r = values(report, last(report))
    assert (r["trainable"], r["non_trainable"]) == (0, 5 * 3 * 2 + 2)
