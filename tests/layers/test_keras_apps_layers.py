"""The layer types keras.applications needs besides the common ones: ScalarOp (Keras 3's ops with a number operand,
as MobileNetV3 saves `x + 3.0`), LayerScale (ConvNeXt), CustomScaleLayer (InceptionResNetV2), Normalization, and the
activations of keras.activations added for them (hard_silu, ...). Numbers worked by hand; the params are also checked
against Keras' count_params() when Keras is installed."""

from __future__ import annotations

import math
import os

import pytest

from analyzer import analyze
from analyzer.errors import NNSpecError
from tests.conftest import last, values

os.environ.setdefault("KERAS_BACKEND", "torch")  # for the count_params() checks (Keras is optional here)


@pytest.mark.parametrize(("op", "reverse"), [("add", False), ("subtract", True), ("multiply", False),
                                             ("divide", False), ("divide", True)])
def test_scalar_op_is_one_flop_per_element(one_layer, op, reverse):
    # x OP 3.0 on (4, 5): 20 elements, one add / subtract / multiply / divide each
    r = one_layer([4, 5], {"type": "ScalarOp", "op": op, "value": 3.0, "reverse": reverse})
    assert r["other"] == 20 and r["flops"] == 20 and r["params"] == 0 and r["shape"] == (4, 5)


def test_layer_scale_counts_gamma(one_layer):
    # gamma: projection_dim = 6 trainable params; x * gamma on (7, 7, 6) = 294 multiplies
    r = one_layer([7, 7, 6], {"type": "LayerScale", "projection_dim": 6, "init_values": 1e-6})
    assert (r["trainable"], r["non_trainable"], r["other"]) == (6, 0, 294)


def test_layer_scale_needs_its_last_axis_to_be_projection_dim():
    with pytest.raises(NNSpecError, match="projection_dim"):
        analyze("inputs: [{name: x, shape: [4, 5]}]\nlayers:\n  - {type: LayerScale, projection_dim: 6}\n")


CUSTOM_SCALE = """inputs: [{name: a, shape: [3, 3, 8]}, {name: b, shape: [3, 3, 8]}]
layers:
  - {type: CustomScaleLayer, name: s, scale: 0.17, inputs: [a, b]}
"""


def test_custom_scale_layer_is_a_multiply_and_an_add():
    # a + b * 0.17 on (3, 3, 8): 72 elements, 2 FLOPs each = 144; no params
    report = analyze(CUSTOM_SCALE)
    r = values(report, last(report))
    assert (r["params"], r["other"], r["shape"]) == (0, 144, (3, 3, 8))


@pytest.mark.parametrize(("layer", "params", "other"), [
    # mean/variance given: constants, no weights. (x - mean) / max(sqrt(var), eps) on (5, 5, 3): 75 elements,
    # subtract + divide = 150, plus sqrt and max on the 3 variances = 6: 156
    ({"type": "Normalization", "axis": [-1], "mean": [1.0, 2.0, 3.0], "variance": [1.0, 4.0, 9.0]}, 0, 156),
    # not given: mean (3) + variance (3) + count (1) = 7 non-trainable weights; same cost
    ({"type": "Normalization", "axis": -1}, 7, 156),
    # axis None: one mean, one variance (+ count) = 3 weights; 150 + 2·1 = 152
    ({"type": "Normalization", "axis": None}, 3, 152),
    # axis [2, 3] on (5, 5, 3): 15 kept positions: 2·15 + 1 = 31 weights; 150 + 30 = 180
    ({"type": "Normalization", "axis": [2, 3]}, 31, 180),
    # inverted: mean + x * s, the same count
    ({"type": "Normalization", "axis": -1, "invert": True}, 7, 156),
])
def test_normalization(one_layer, layer, params, other):
    r = one_layer([5, 5, 3], layer)
    assert (r["trainable"], r["non_trainable"], r["other"]) == (0, params, other)


def test_normalization_needs_mean_and_variance_together(one_layer):
    with pytest.raises(NNSpecError, match="both mean and variance"):
        one_layer([3], {"type": "Normalization", "mean": [0.0, 0.0, 0.0]})


# Per element, from each formula in keras/src/activations/activations.py (docs/conventions.md, Activations)
MORE_PER_ELEMENT = {
    "hard_silu": 5,  # x * hard_sigmoid(x): 4 + 1
    "hard_swish": 5,
    "celu": 5,  # compare, x/alpha, exp, - 1, alpha*
    "hard_tanh": 2,  # two compares
    "hard_shrink": 2,  # |x|, compare
    "soft_shrink": 3,  # two compares, one add
    "tanh_shrink": 6,  # tanh 5, subtract
    "log_sigmoid": 5,  # sigmoid 4, log
    "mish": 9,  # softplus 3, tanh 5, multiply
    "sparse_plus": 5,  # two compares, + 1, square, / 4
    "sparse_sigmoid": 4,  # two compares, + 1, * 0.5
    "squareplus": 5,  # x², + 4, sqrt, + x, / 2
}


@pytest.mark.parametrize(("activation", "per_element"), sorted(MORE_PER_ELEMENT.items()))
def test_more_activations(one_layer, activation, per_element):
    r = one_layer([3, 4], {"type": "Activation", "activation": activation})
    assert r["activation"] == 12 * per_element


def test_hard_silu_backward_is_five_per_element():
    # torch's hardswish_backward: two compares, x/3, + 0.5, g*: 5 per element; (3, 4) at batch B: 12·5·B
    import analyzer.layers.activations  # noqa: F401  (adds the backward of its new activations)
    from analyzer.layers.backward import activation_backward
    from analyzer.symbolic import make_symbol

    batch = make_symbol("B")
    assert activation_backward("hard_silu", (3, 4), batch) == 60 * batch


def keras_params(layer, shape):
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input(shape), layer])
    frozen = sum(math.prod(w.shape) for w in model.non_trainable_weights)
    return model.count_params(), frozen


def test_normalization_params_are_keras_count_params():
    keras = pytest.importorskip("keras")
    assert keras_params(keras.layers.Normalization(axis=-1), (5, 5, 3)) == (7, 7)
    assert keras_params(keras.layers.Normalization(axis=-1, mean=[1.0, 2.0, 3.0], variance=[1.0, 4.0, 9.0]),
                        (5, 5, 3)) == (0, 0)
    assert keras_params(keras.layers.Normalization(axis=None), (5, 5, 3)) == (3, 3)
    assert keras_params(keras.layers.Normalization(axis=[2, 3]), (5, 5, 3)) == (31, 31)


def test_layer_scale_params_are_keras_count_params():
    pytest.importorskip("keras")
    from keras.src.applications.convnext import LayerScale

    assert keras_params(LayerScale(1e-6, 6), (7, 7, 6)) == (6, 0)


def test_training_through_layer_scale_and_a_scalar_op():
    # x (2, 2, 3) -> Dense(3) -> LayerScale(3) -> ScalarOp(x * 0.5), batch 4: N = 4·2·2·3 = 48 outputs each.
    # LayerScale: dL/dx = g·gamma, 48; dL/dgamma = Σ g·x, 48 multiplies + (48 - 3) adds = 93.
    # ScalarOp multiply: dL/dx = g·0.5, 48; no weights.
    from analyzer.training import training_step
    from tests.conftest import run

    report = run([2, 2, 3], [{"type": "Dense", "name": "d", "units": 3},
                             {"type": "LayerScale", "name": "ls", "projection_dim": 3},
                             {"type": "ScalarOp", "name": "s", "op": "multiply", "value": 0.5}])
    step = training_step(report, optimizer="sgd", batch=4)
    assert step.report.value(step.layers["ls"].grad_input) == 48
    assert step.report.value(step.layers["ls"].grad_weight) == 93
    assert step.report.value(step.layers["s"].grad_input) == 48
    assert step.report.value(step.layers["s"].grad_weight) == 0


def test_normalization_checks_a_given_mean_against_its_kept_axis(one_layer):
    # axis 1 keeps the axis of 5 on (5, 3): a mean of 2 values fits it nowhere (Keras' build() refuses it too)
    with pytest.raises(NNSpecError):
        one_layer([5, 3], {"type": "Normalization", "axis": 1, "mean": [0.0, 0.0], "variance": [1.0, 1.0]})
    # one value broadcasts: (x - mean) / sqrt(var) on 15 elements, 2 each, and sqrt and the max with epsilon per
    # kept value (2·5): 40; given, they are no weights
    r = one_layer([5, 3], {"type": "Normalization", "axis": 1, "mean": [0.5], "variance": [2.0]})
    assert (r["non_trainable"], r["other"]) == (0, 2 * 15 + 2 * 5)


def test_a_scalar_divided_by_x_saves_its_reciprocal():
    """torch computes c / x as x.reciprocal() * c: autograd keeps the reciprocal (N values) for the mul; c - x keeps
    nothing (its gradient is -g)."""
    from analyzer.training_memory import step_memory
    from tests.conftest import run

    def saved(op):
        report = run([6], [{"type": "Dense", "name": "d", "units": 6},
                           {"type": "ScalarOp", "name": "s", "op": op, "value": 2.0, "reverse": True},
                           {"type": "Dense", "name": "head", "units": 1, "use_bias": False}])
        step = report.training(batch=1)
        lines = {line.name: line for line in step_memory(step)}
        return step.report.value(lines["saved_activations"].elements)

    # d keeps its input (6), head its input (6: s's output) and s, for 2 / x, the reciprocal (6)
    assert saved("divide") == 6 + 6 + 6
    assert saved("subtract") == 6 + 6
