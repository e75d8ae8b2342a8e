"""Issue 16, the training step: a tensor read by k layers gets k gradients, which autograd sums (k - 1 adds per
element, B·elements each). Counted at the second and later reader in graph order (docs/conventions.md#training),
in the nnspec convention only (FlopCounterMode counts no adds). Numbers worked by hand; a block repeated N times
(a symbol) must give what the same block unrolled gives."""

from __future__ import annotations

import pytest

from analyzer import analyze
from analyzer.training import gradient_sums, training_step, with_batch
from tests.conftest import run


def other(step, name):
    return step.report.value(step.layers[name].grad_other)


def test_a_residual_branchs_source_sums_two_gradients():
    # x (5,) -> d = Dense(3) -> r = relu(d) -> add = d + r. d is read by r and by add: B·3 adds, at add (the second
    # reader). Add's own backward passes g on: 0. B = 2: 6. relu's backward, 2 per element, is r's grad input: 12.
    report = run([5], [{"type": "Dense", "name": "d", "units": 3},
                       {"type": "Activation", "name": "r", "activation": "relu"},
                       {"type": "Add", "name": "add", "inputs": ["d", "r"]}])
    step = training_step(report, batch=2)
    assert other(step, "add") == 2 * 3
    assert other(step, "r") == 0 and step.report.value(step.layers["r"].grad_input) == 2 * 3 * 2
    assert other(step, "d") == 0


def test_the_sum_is_not_counted_under_the_torch_convention():
    report = run([5], [{"type": "Dense", "name": "d", "units": 3},
                       {"type": "Activation", "name": "r", "activation": "relu"},
                       {"type": "Add", "name": "add", "inputs": ["d", "r"]}])
    step = training_step(report, batch=2, convention="torch")
    assert other(step, "add") == 0


def test_no_sum_where_the_tensor_needs_no_gradient():
    # the model input, read by two Dense layers, needs no gradient (no --input-grad): nothing to sum.
    text = """
inputs: [{name: x, shape: [5]}]
layers:
  - {type: Dense, name: a, units: 3, inputs: [x]}
  - {type: Dense, name: b, units: 3, inputs: [x]}
  - {type: Add, name: add, inputs: [a, b]}
"""
    step = training_step(analyze(text), batch=4)
    assert other(step, "b") == 0
    # with --input-grad x gets two gradients: B·5 = 20 adds, at b
    step = training_step(analyze(text), batch=4, input_grad=True)
    assert other(step, "b") == 4 * 5


def test_a_layer_reading_one_tensor_twice_sums_inside_its_own_rule():
    # self-attention [d, d] is one reader of d: its rule sums the query's and value's gradients itself
    # (attention.input_gradient_sums); the graph adds nothing. A Dense reading d as well is d's second reader:
    # B·3·4 = 24 adds at B = 2, at that Dense.
    layers = [{"type": "Dense", "name": "d", "units": 4},
              {"type": "MultiHeadAttention", "name": "mha", "num_heads": 1, "key_dim": 2, "inputs": ["d", "d"]},
              {"type": "Dense", "name": "e", "units": 4, "inputs": ["d"]},
              {"type": "Add", "name": "add", "inputs": ["mha", "e"]}]
    report, b = with_batch(run([3, 2], layers), 2)
    step = training_step(report)
    requires = {name: name != "input" for name in report.layers}
    sums, notes = gradient_sums(step.report, b, requires, set())
    assert set(sums) == {"e"} and not notes
    assert step.report.value(sums["e"]) == 2 * 3 * 4


RESIDUAL_STACK = """
symbols: {{N: {n}}}
blocks:
  residual:
    layers:
      - {{type: Dense, name: f, units: 4}}
      - {{type: Add, name: add, inputs: [x, f]}}
inputs: [{{name: x, shape: [4]}}]
layers:
  - {{type: Dense, name: stem, units: 4}}
  - {{block: residual, name: stack, repeat: {repeat}}}
  - {{type: Add, name: skip, inputs: [stem, stack]}}
"""


def test_a_block_repeated_n_times_sums_like_its_unrolled_copies():
    # Each copy's input is read by f and by add: 1 sum per copy, B·4 each. stem is also read by skip after the
    # stack: one more. N = 3, B = 2: 3·8 + 8 = 32, whether the block is repeated N (a symbol) or 3 times.
    symbolic = training_step(analyze(RESIDUAL_STACK.format(n=3, repeat="N")), batch=2)
    unrolled = training_step(analyze(RESIDUAL_STACK.format(n=3, repeat=3)), batch=2)
    sums = {name: other(symbolic, name) for name in symbolic.layers}
    assert sums["stack.each.add"] == 3 * 2 * 4  # copy 1 reads stem, copies 2 and 3 the copy before: N·B·4
    assert sums["skip"] == 2 * 4  # stem's third reader
    assert symbolic.report.value(symbolic.total("grad_other")) == unrolled.report.value(unrolled.total("grad_other"))
    # the formula in N: at N = 1 and N = 7 as well
    for n in (1, 7):
        at_n = symbolic.report.at(N=n)
        assert at_n.value(symbolic.layers["stack.each.add"].grad_other) == n * 8


@pytest.mark.parametrize("repeat", ["N", 3])
def test_a_block_output_read_only_after_the_stack_adds_nothing_more(repeat):
    # the last copy's add is read by skip alone; copies 1..N-1's adds are the next copy's input (counted there)
    step = training_step(analyze(RESIDUAL_STACK.format(n=3, repeat=repeat)), batch=2)
    total = step.report.value(step.total("grad_other"))
    # Dense f has no activation, Add passes g on: the only other-than-grad-input/weight FLOPs are the sums, 32
    assert total == 32


NESTED = """
symbols: {{N: 3, M: 2}}
blocks:
  inner:
    layers:
      - {{type: Dense, name: d, units: 4}}
      - {{type: Add, name: add, inputs: [x, d]}}
  outer:
    layers:
      - {{type: Dense, name: pre, units: 4}}
      - {{block: inner, name: in, repeat: {inner}}}
      - {{type: Add, name: res, inputs: [x, in]}}
inputs: [{{name: x, shape: [4]}}]
layers:
  - {{type: Dense, name: first, units: 4}}
  - {{block: outer, name: out, repeat: {outer}}}
"""


@pytest.mark.parametrize(("outer", "inner"), [("N", "M"), ("N", 2), (3, "M")])
def test_nested_repeats_sum_like_their_unrolled_copies(outer, inner):
    # Unrolled, N = 3 outer copies: each outer copy's input (first, then the copy before's res) is read by pre and
    # by res, one sum each: N·B·4; inside, each of the M = 2 inner copies' input (pre, then the add before) by d and
    # add: N·M·B·4. B = 2: 24 + 48 = 72, whether either repeat is a symbol or a number.
    unrolled = training_step(analyze(NESTED.format(outer=3, inner=2)), batch=2)
    step = training_step(analyze(NESTED.format(outer=outer, inner=inner)), batch=2)
    assert unrolled.report.value(unrolled.total("grad_other")) == 3 * 2 * 4 + 3 * 2 * 2 * 4 == 72
    assert step.report.value(step.total("grad_other")) == 72 and not step.notes


def test_nested_symbolic_repeats_are_formulas_in_both_counts():
    step = training_step(analyze(NESTED.format(outer="N", inner="M")), batch=2)
    res, add = step.layers["out.each.res"].grad_other, step.layers["out.each.in.each.add"].grad_other
    for n, m in ((1, 1), (2, 5), (4, 3)):
        at = step.report.at(N=n, M=m)
        assert (at.value(res), at.value(add)) == (n * 2 * 4, n * m * 2 * 4)
