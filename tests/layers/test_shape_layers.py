"""Reshape, Flatten, merges, activations, Lambda, Dropout."""

import pytest

from analyzer.errors import NNSpecError
from tests.conftest import last, run, values


def test_reshape_infers_minus_one(one_layer):
    assert one_layer([6, 4], {"type": "Reshape", "target_shape": [-1, 8]})["shape"] == (3, 8)


def test_reshape_symbolic_minus_one():
    report = run(["L", 2], [{"type": "Reshape", "target_shape": [-1, 1]}], {"L": 5})
    assert values(report.at(L=9), last(report))["shape"] == (18, 1)


def test_reshape_count_mismatch_is_an_error():
    with pytest.raises(NNSpecError, match="holds 10 elements, but the input \\(3, 4\\) has 12"):
        run([3, 4], [{"type": "Reshape", "target_shape": [5, 2]}])


def test_reshape_hard_coded_size_holds_only_at_its_value():
    report = run(["L", 2], [{"type": "Reshape", "target_shape": [128, 2]}], {"L": 128})
    assert report.describe_constraints()[0].startswith("L == 128")
    with pytest.raises(NNSpecError, match="valid only for L == 128"):
        report.at(L=64)


def test_flatten_and_dropout(one_layer):
    assert one_layer([3, 4, 5], {"type": "Flatten"})["shape"] == (60,)
    r = one_layer([3, 4], {"type": "Dropout", "rate": 0.5})
    assert r["shape"] == (3, 4) and r["flops"] == 0


@pytest.mark.parametrize("noise", [{"type": "GaussianNoise", "stddev": 0.1}, {"type": "GaussianDropout", "rate": 0.2}])
def test_gaussian_noise_and_dropout_are_the_identity_at_inference(one_layer, noise):
    # Keras adds / multiplies the noise only in training: no params, no cost, the shape unchanged.
    r = one_layer([3, 4], noise)
    assert r["shape"] == (3, 4) and r["params"] == 0 and r["flops"] == 0 and r["macs"] == 0


def test_subtract_costs_one_per_element_and_broadcasts():
    # (5, 3) - (1, 3) -> (5, 3): 15 subtractions; Keras' Subtract takes exactly two inputs
    report = run([[5, 3], [1, 3]], [{"type": "Subtract", "inputs": ["x0", "x1"]}])
    r = values(report, last(report))
    assert r["shape"] == (5, 3) and r["other"] == 15 and r["params"] == 0
    with pytest.raises(NNSpecError, match="Subtract"):
        run([[5, 3], [5, 3], [5, 3]], [{"type": "Subtract", "inputs": ["x0", "x1", "x2"]}])


def test_multiply_broadcasts_like_keras():
    # PET-CGDNN: (L, 1) * (1,) -> (L, 1); one multiply per output
    report = run([[128, 1], [1]], [{"type": "Multiply", "inputs": ["x0", "x1"]}])
    assert values(report, last(report))["shape"] == (128, 1)
    assert values(report, last(report))["other"] == 128


def test_add_of_three_costs_two_per_element():
    report = run([[4, 2], [4, 2], [4, 2]], [{"type": "Add", "inputs": ["x0", "x1", "x2"]}])
    assert values(report, last(report))["other"] == 2 * 8


def test_add_mismatch_is_an_error():
    with pytest.raises(NNSpecError, match="differ on axis 1 \\(4 vs 5\\) and neither is 1"):
        run([[4, 2], [5, 2]], [{"type": "Add", "inputs": ["x0", "x1"]}])


def test_concatenate(one_layer):
    report = run([[4, 2], [4, 3]], [{"type": "Concatenate", "inputs": ["x0", "x1"]}])
    assert values(report, last(report))["shape"] == (4, 5)
    report = run([[4, 2], [1, 2]], [{"type": "Concatenate", "axis": 1, "inputs": ["x0", "x1"]}])
    assert values(report, last(report))["shape"] == (5, 2)
    with pytest.raises(NNSpecError, match="differ on axis 1 \\(4 vs 3\\); only the concatenation axis 2 may differ"):
        run([[4, 2], [3, 3]], [{"type": "Concatenate", "inputs": ["x0", "x1"]}])


@pytest.mark.parametrize(("activation", "flops"), [("linear", 0), ("relu", 12), ("sigmoid", 48), ("tanh", 60)])
def test_activation_costs(one_layer, activation, flops):
    assert one_layer([3, 4], {"type": "Activation", "activation": activation})["activation"] == flops


def test_softmax_cost_per_row(one_layer):
    # rows of 11: 11 exp + 10 add + 11 divide = 32
    assert one_layer([11], {"type": "Activation", "activation": "softmax"})["activation"] == 32
    assert one_layer([3, 11], {"type": "Activation", "activation": "softmax"})["activation"] == 96


def test_lambda_cos(one_layer):
    r = one_layer([1], {"type": "Lambda", "function": "cos"})
    assert r["shape"] == (1,) and r["other"] == 1
