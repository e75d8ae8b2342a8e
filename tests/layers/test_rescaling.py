"""Rescaling (keras.layers.Rescaling; Gemma's sqrt(hidden_size) embedding scale): y = x · scale + offset, worked by
hand. One multiply per element unless scale is exactly 1, one add unless offset is exactly 0 (docs/conventions.md)."""

import pytest

from analyzer.errors import NNSpecError
from tests.conftest import run, values


@pytest.mark.parametrize(("scale", "offset", "per_element"), [
    (0.5, -1.0, 2),  # Keras' [0, 255] -> [-1, 1] is scale 1/127.5, offset -1: a multiply and an add
    (2, 0.0, 1),  # an int scale is a number too; offset 0: the multiply only
    (1, 3.0, 1),  # scale exactly 1: the add only
    (1.0, 0.0, 0),  # the identity: no arithmetic
    (55.42562584220407, 0.0, 1),  # sqrt(3072), Gemma-7B's: the value does not change the count
])
def test_flops_per_element(one_layer, scale, offset, per_element):
    r = one_layer([4, 5], {"type": "Rescaling", "scale": scale, "offset": offset})
    # 4·5 = 20 elements
    assert r["shape"] == (4, 5) and r["params"] == 0 and r["macs"] == 0
    assert r["other"] == r["flops"] == 20 * per_element


def test_the_offset_defaults_to_zero_and_sizes_stay_symbolic():
    report = run(["L", 3], [{"type": "Rescaling", "name": "r", "scale": 0.25}], {"L": 7})
    row = report.layers["r"]
    assert values(report, row)["other"] == 7 * 3  # the multiply on L·3 elements, no add
    assert values(report.at(L=100), row)["other"] == 300


@pytest.mark.parametrize("bad", [{"scale": "2"}, {"scale": True}, {"scale": [1.0, 2.0]}, {},
                                 {"scale": 2.0, "offset": None}])
def test_scale_and_offset_must_be_numbers(bad):
    with pytest.raises(NNSpecError):
        run([4], [{"type": "Rescaling", **bad}])


def test_the_tools_count_nothing_and_fvcore_names_the_ops():
    from analyzer.conventions import recount_with

    report = run([4, 5], [{"type": "Rescaling", "name": "both", "scale": 0.5, "offset": 1.0},
                          {"type": "Rescaling", "name": "none", "scale": 1.0}])
    for tool in ("torch", "thop", "ptflops"):
        assert report.value(recount_with(report, tool).total) == 0
    fvcore = recount_with(report, "fvcore").layers
    assert "aten::mul, aten::add are unsupported" in fvcore["both"].skipped and fvcore["none"].skipped is None


def test_the_builders_pass_keras_arguments():
    from analyzer.export.plan import plan_export
    from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS

    plan = plan_export("inputs: [{name: x, shape: [4]}]\nlayers:\n  - {type: Rescaling, scale: 0.5}\n", {})
    for table in (KERAS_BUILDERS, TORCH_BUILDERS):
        construct = table.build(plan.layers[0])
        assert construct.cls == "Rescaling" and construct.kwargs == {"scale": 0.5, "offset": 0.0}


def test_a_training_step_by_hand():
    # B = 2 over (4, 5): 40 elements. dL/dx = s·g: 40 multiplies with scale 0.5; none with scale 1 (g as it is).
    # Nothing is saved: x * 0.5 and x + 1 keep the numbers only (mul.Scalar, add.Scalar).
    from analyzer.training import training_step
    from analyzer.training_memory import saved_activations

    report = run([4, 5], [{"type": "Rescaling", "name": "half", "scale": 0.5, "offset": 1.0},
                          {"type": "Rescaling", "name": "shift", "scale": 1, "offset": 1.0}])
    step = training_step(report, batch=2, input_grad=True)
    v = step.report.value
    assert v(step.layers["half"].grad_input) == 40 and v(step.layers["half"].grad_weight) == 0
    assert v(step.layers["shift"].grad_input) == 0
    assert v(step.layers["half"].forward) == 2 * 20 * 2  # B · 20 elements · (multiply + add)
    saved = saved_activations(step)
    assert all(v(saved.get(name, 0)) == 0 for name in ("half", "shift"))
