"""Activations (Activation and fused), the Softmax layer, Maximum/Minimum/Average, Permute,
RepeatVector. Per-element costs follow the table in docs/conventions.md; shapes and params marked
"Keras" were measured with Keras 3.15.1 (torch backend)."""

import pytest

from analyzer.errors import NNSpecError
from tests.conftest import last, run, values

PER_ELEMENT = {"relu6": 2, "leaky_relu": 2, "elu": 4, "selu": 5, "gelu": 5, "silu": 5, "swish": 5,
               "hard_sigmoid": 4, "softplus": 3, "softsign": 3, "exponential": 1}


@pytest.mark.parametrize(("activation", "per_element"), sorted(PER_ELEMENT.items()))
def test_activation_costs(one_layer, activation, per_element):
    r = one_layer([3, 4], {"type": "Activation", "activation": activation})
    assert r["activation"] == 12 * per_element and r["shape"] == (3, 4)


@pytest.mark.parametrize("activation", sorted(PER_ELEMENT))
def test_fused_activation(one_layer, activation):
    r = one_layer([10, 2], {"type": "Dense", "units": 3, "activation": activation})
    assert r["params"] == 9  # Keras: 9
    assert r["activation"] == 30 * PER_ELEMENT[activation]


def test_gelu_is_five_not_the_tanh_approximation(one_layer):
    # 0.5*x*(1 + erf(x/sqrt(2))): x/sqrt(2), erf, 1 + ., x*., 0.5*.
    assert one_layer([1], {"type": "Activation", "activation": "gelu"})["activation"] == 5


def test_gelu_tanh_is_thirteen(one_layer):
    # 0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x**3))): x*x*x 2, *0.044715 1, x + . 1, *sqrt(2/pi) 1, tanh 5
    # (as the tanh activation counts it), 1 + . 1, x*. 1, 0.5*. 1 = 13; on (4,) 52
    assert one_layer([4], {"type": "Activation", "activation": "gelu_tanh"})["activation"] == 52


def test_the_keras_export_refuses_gelu_tanh():
    from analyzer.errors import NNSpecError
    from analyzer.export.plan import plan_export
    from analyzer.layers.builders import KERAS_BUILDERS

    spec = "inputs: [{name: x, shape: [4]}]\nlayers:\n  - {type: Dense, name: d, units: 2, activation: gelu_tanh}\n"
    plan = plan_export(spec, {})
    with pytest.raises(NNSpecError, match=r"activation 'gelu_tanh' is keras.activations.gelu\(x, approximate=True\)"):
        KERAS_BUILDERS.build(plan.layers[0])
    # inside a wrapper too
    wrapped = ("inputs: [{name: x, shape: [3, 4]}]\nlayers:\n  - {type: TimeDistributed, name: t, "
               "layer: {type: Dense, units: 2, activation: gelu_tanh}}\n")
    with pytest.raises(NNSpecError, match="activation 'gelu_tanh'"):
        KERAS_BUILDERS.build(plan_export(wrapped, {}).layers[0])


@pytest.mark.parametrize(("axis", "flops"), [
    (-1, 10 * (3 * 3 - 1)),  # 10 rows of 3
    (1, 3 * (3 * 10 - 1)),  # 3 rows of 10 (Keras axis 1 is the first non-batch axis)
    ([1, 2], 3 * 30 - 1),  # one row of 30
])
def test_softmax_layer(one_layer, axis, flops):
    r = one_layer([10, 3], {"type": "Softmax", "axis": axis})
    assert r["shape"] == (10, 3) and r["activation"] == flops


@pytest.mark.parametrize(("merge", "per_element"), [("Maximum", 2), ("Minimum", 2), ("Average", 3)])
def test_maximum_minimum_average(merge, per_element):
    # three (10, 3) inputs: 2 compares per element; Average 2 adds + 1 divide
    report = run([[10, 3]] * 3, [{"type": merge, "inputs": ["x0", "x1", "x2"]}])
    r = values(report, last(report))
    assert r["shape"] == (10, 3)  # Keras
    assert r["other"] == 30 * per_element


def test_average_broadcasts():
    report = run([[10, 3], [1, 3]], [{"type": "Average", "inputs": ["x0", "x1"]}])
    assert values(report, last(report))["shape"] == (10, 3)


def test_permute(one_layer):
    assert one_layer([10, 4, 2], {"type": "Permute", "dims": [2, 3, 1]})["shape"] == (4, 2, 10)  # Keras
    with pytest.raises(NNSpecError, match=r"must be a permutation of 1\.\.2"):
        run([10, 4], [{"type": "Permute", "dims": [0, 1]}])


def test_repeat_vector(one_layer):
    r = one_layer([5], {"type": "RepeatVector", "n": 10})
    assert r["shape"] == (10, 5) and r["flops"] == 0  # Keras
    with pytest.raises(NNSpecError, match="expects an input of rank 1"):
        run([5, 2], [{"type": "RepeatVector", "n": 3}])
