"""Issue 16: what autograd keeps of GRU, LSTM, SimpleRNN, Bidirectional and TimeDistributed on nnspec's torch export
(analyzer/layers/recurrent_saved.py, wrappers.py; docs/conventions.md#training, Memory). Numbers worked by hand from
the export's ops (torch_modules/recurrent.py, wrappers.py) and derivatives.yaml; tests/crosscheck/test_training_saved.py
holds the same rules against torch's saved_tensors_hooks. Sizes T = 3 steps, F = 2 features, H = 4 units, B = 2
unless said; float32, so bytes = 4 · floats."""

from __future__ import annotations

import sympy

from analyzer.training import training_step
from analyzer.training_memory import saved_activations, step_memory
from tests.conftest import run


def floats(step, batch=None):
    """Saved floats per layer (bytes / 4), at the step's batch or at `batch`."""
    report = step.report if batch is None else step.report.at(B=batch)
    return {name: report.value(b) / 4 for name, b in saved_activations(step).items()}


def note(step):
    return step_memory(step)[-2].note


def test_native_gru_keeps_the_time_major_rows_each_steps_gates_and_the_previous_states():
    # GRU (reset_after, tanh/sigmoid: the export's nn.GRU) on the model input, weights training, x needs no gradient.
    step = training_step(run([3, 2], [{"type": "GRU", "name": "g", "units": 4, "return_sequences": True}]), batch=2)
    # x rows: ATen's (T, B, F) transpose is not contiguous at B = 2, so matmul folds a copy: B·T·F = 12.
    # per step: h·W_hh + b, B·3H = 24 (r, z sigmoid_ in place on it); mul_'s clone of (h·U)_n, tanh_'s n, the clone of
    # h - n: 3·B·H = 24; 48 per step, 144 for 3 steps. h_{t-1} for dW_hh: zeros h_0 and h_1, h_2: 3·B·H = 24.
    assert floats(step) == {"g": 12 + 144 + 24}
    assert note(step) == ""


def test_native_gru_frozen_keeps_no_rows_and_no_previous_states():
    layers = [{"type": "Dense", "name": "d", "units": 2},
              {"type": "GRU", "name": "g", "units": 4, "return_sequences": True}]
    step = training_step(run([3, 2], layers), batch=2, frozen=("g",))
    # d keeps its input, B·T·2 = 12. g: no weight gradient, so no rows and no h_{t-1}: 3 steps · (24 + 24) = 144.
    assert floats(step) == {"d": 12, "g": 144}


def test_keras_gru_loop_resetting_before_traced_step_by_step():
    gru = {"type": "GRU", "name": "g", "units": 4, "reset_after": False, "return_sequences": True}
    step = training_step(run([3, 2], [gru]), batch=2)
    # KerasGRU: kernel(x) keeps x itself (contiguous, rows merge): 12. Each step, B·H = 8 floats each: h_{t-1}
    # (recurrent_zr, and r·h, z·h), z and r (sigmoid's outputs), q = r·h (recurrent_h's input), hh (tanh's output),
    # 1 - z (kept by (1 - z)·hh): 6 · 8 = 48; step 1 alike (h_0 zeros kept by recurrent_zr). 12 + 3 · 48 = 156.
    assert floats(step) == {"g": 156}
    layers = [{"type": "Dense", "name": "d", "units": 2}, gru]
    frozen = training_step(run([3, 2], layers), batch=2, frozen=("g",))
    # frozen: no x, no h_{t-1} for the kernels, no q; r·h still keeps h_{t-1} (r needs a gradient): z, r, h_{t-1},
    # hh, 1 - z = 5 · 8 = 40 per step, 120.
    assert floats(frozen) == {"d": 12, "g": 120}


def test_lstm_loop_keeps_gates_states_and_its_last_h_goes_to_the_next_layer():
    layers = [{"type": "LSTM", "name": "l", "units": 4}, {"type": "Dense", "name": "out", "units": 2}]
    step = training_step(run([3, 2], layers), batch=2)
    # KerasLSTM: x 12. Each step (B·H = 8 each): h_{t-1} (recurrent_kernel), i, f, o (sigmoid outputs), g (tanh),
    # c_{t-1} (f·c), act(c) (tanh's output, kept by o·act(c)): 7 · 8 = 56; step 1 the zeros h_0 and c_0. 12 + 3 · 56.
    # h_T = o·act(c_T) no op of the loop keeps: the Dense keeps it, B·H = 8.
    assert floats(step) == {"l": 12 + 3 * 56, "out": 8}


def test_simple_rnn_with_return_state_keeps_its_last_output_once():
    layers = [{"type": "SimpleRNN", "name": "r", "units": 4, "return_state": True},
              {"type": "Dense", "name": "on_state", "units": 2, "inputs": ["r:1"]},
              {"type": "Concatenate", "name": "cat", "inputs": ["r", "on_state"]}]
    step = training_step(run([3, 2], layers), batch=2)
    # KerasRNN: x 12; step 1: h_0 zeros (recurrent_kernel) 8 and h_1 (tanh's output) 8; steps 2, 3: h_t only
    # (h_{t-1} is step t-1's tanh output): 12 + 16 + 2 · 8 = 44. The output and the state are h_3, a storage the
    # layer keeps already: the Dense on the state keeps nothing new.
    assert floats(step) == {"r": 44, "on_state": 0, "cat": 0}
    assert note(step) == ""


def test_bidirectional_native_gru_mul_keeps_both_copies_and_both_operands():
    layers = [{"type": "Bidirectional", "name": "b", "merge_mode": "mul",
               "layer": {"type": "GRU", "units": 4, "return_sequences": True}}]
    step = training_step(run([3, 2], layers), batch=2)
    # forward copy: as the native GRU above, 12 + 144 + 24 = 180; backward copy: the same, its rows from x.flip(1)
    # (a copy of its own, B·T·F = 12); mul keeps y_rev.flip(1) and y, B·T·H = 24 each: 180 + 180 + 48 = 408.
    assert floats(step) == {"b": 408}


def test_bidirectional_concat_keeps_x_once():
    layers = [{"type": "Bidirectional", "name": "b", "layer": {"type": "SimpleRNN", "units": 4}}]
    step = training_step(run([3, 2], layers), batch=2)
    # forward KerasRNN: x itself 12 + 16 + 2 · 8 = 44; backward: its flipped copy 12 + 32 = 44 (x.flip(1) is new);
    # concat keeps nothing: 88.
    assert floats(step) == {"b": 88}


def test_time_distributed_dense_sees_a_view_at_batch_one_and_a_copy_above():
    layers = [{"type": "Dense", "name": "d", "units": 3, "activation": "relu"},
              {"type": "Permute", "name": "p", "dims": [2, 1]},
              {"type": "TimeDistributed", "name": "td", "layer": {"type": "Dense", "units": 5}}]
    step = training_step(run([2, 2], layers))
    b = step.report.symbol("B").symbol
    # d: x (B·2·2 = 4B) and relu's output (B·2·3 = 6B). p: a view (B, 3, 2) with its last two axes swapped in memory,
    # so B and T do not lie together: x.reshape(B·T, 2) is a copy, 6B, which the wrapped Dense (rank 2) keeps as it
    # is; at B = 1 the batch axis is trivial and the reshape is a view of relu's output (counted at d): 0.
    assert floats(step, 1) == {"d": 10, "p": 0, "td": 0}
    assert floats(step, 2) == {"d": 20, "p": 0, "td": 12}
    assert floats(step, 8) == {"d": 80, "p": 0, "td": 48}
    assert saved_activations(step)["td"].has(sympy.Min(b - 1, 1))  # 0 at B = 1, else 1


def test_time_distributed_dense_on_rows_that_merge_only_after_the_fold():
    layers = [{"type": "Dense", "name": "d", "units": 2, "activation": "relu"},
              {"type": "Permute", "name": "p", "dims": [2, 1, 3]},
              {"type": "TimeDistributed", "name": "td", "layer": {"type": "Dense", "units": 5}}]
    step = training_step(run([7, 3, 2], layers))
    # p swaps the 7 and 3 axes of relu's (B, 7, 3, 2) output. B >= 2: x.reshape(B·3, 7, 2) copies (42B, contiguous),
    # and the wrapped Dense keeps that copy as a view. B = 1: the reshape is a view (3, 7, 2) with the 7 axis outer,
    # whose rows do not merge: nn.Linear folds its own copy, 42. Either way 42B at td; d keeps x 42B and relu 42B.
    for batch in (1, 2, 8):
        assert floats(step, batch) == {"d": 84 * batch, "p": 0, "td": 42 * batch}


def test_time_distributed_conv_keeps_its_channels_first_copy_over_b_times_t():
    layers = [{"type": "TimeDistributed", "name": "td",
               "layer": {"type": "Conv1D", "filters": 4, "kernel_size": 1, "activation": "tanh"}}]
    step = training_step(run([3, 5, 2], layers), batch=2)
    # x.reshape(B·T, 5, 2) is a view (the model input is contiguous); Conv1D keeps x.movedim(-1, 1).contiguous(), a
    # copy: B·T·5·2 = 60; tanh keeps its output B·T·5·4 = 120.
    assert floats(step) == {"td": 180}


def test_dropout_fields_keep_nothing_the_export_does_not_run():
    plain = training_step(run([3, 2], [{"type": "GRU", "name": "g", "units": 4, "reset_after": False}]), batch=2)
    masked = training_step(run([3, 2], [{"type": "GRU", "name": "g", "units": 4, "reset_after": False,
                                         "dropout": 0.3, "recurrent_dropout": 0.2}]), batch=2)
    # torch_modules.recurrent runs no mask: the same 156 floats as without dropout (see the loop test).
    assert floats(masked) == floats(plain) == {"g": 156}
