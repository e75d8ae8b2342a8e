"""Layers with several outputs (return_state, Bidirectional merge_mode None), the `LAYER:OUTPUT`
references that read them, and initial states. Hand-worked; "Keras" marks params and shapes
measured with Keras 3.15.1 (torch backend) on the same layer."""

import pytest

from analyzer.api import analyze
from analyzer.errors import NNSpecError
from analyzer.formats.table import render
from analyzer.memory import memory_summary
from tests.conftest import run, spec_text, values


def row(report, name):
    return values(report, report.layers[name])


def shapes(report, name):
    return [tuple(report.value(d) for d in s) for s in report.layers[name].output_shapes]


def test_lstm_return_state():
    # LSTM(4) on (T=5, F=3): 4 gates x 4 units from 3 + 4 terms, one bias vector
    report = run([5, 3], [{"type": "LSTM", "name": "enc", "units": 4, "return_state": True}])
    r = row(report, "enc")
    assert r["params"] == 4 * 4 * (3 + 4 + 1) == 128  # Keras: 128
    assert shapes(report, "enc") == [(4,), (4,), (4,)]  # Keras: output, state_h, state_c
    assert r["macs"] == 5 * 16 * 7 == 560  # the states are the last step's h and c: nothing more
    plain = row(run([5, 3], [{"type": "LSTM", "name": "enc", "units": 4}]), "enc")
    assert {k: v for k, v in r.items() if k != "shape"} == {k: v for k, v in plain.items() if k != "shape"}


def test_return_state_with_sequences():
    report = run([5, 3], [{"type": "GRU", "name": "gru", "units": 4, "return_sequences": True, "return_state": True}])
    assert shapes(report, "gru") == [(5, 4), (4,)]  # Keras
    assert row(report, "gru")["params"] == 3 * 4 * 7 + 2 * 12 == 108  # Keras: 108 (reset_after: two bias vectors)
    report = run([5, 3], [{"type": "SimpleRNN", "name": "rnn", "units": 4, "return_state": True}])
    assert shapes(report, "rnn") == [(4,), (4,)]  # Keras
    assert row(report, "rnn")["params"] == 4 * 7 + 4 == 32  # Keras: 32


def test_references_by_index_and_by_name_are_the_same():
    for state_h, state_c in (("enc:state_h", "enc:state_c"), ("enc:1", "enc:2")):
        report = run([[5, 3], [6, 2]], [
            {"type": "LSTM", "name": "enc", "units": 4, "return_state": True, "inputs": ["x0"]},
            {"type": "LSTM", "name": "dec", "units": 4, "return_sequences": True, "inputs": ["x1", state_h, state_c]},
        ])
        assert report.layers["dec"].inputs == ("x1", "enc:1", "enc:2")
        dec = row(report, "dec")
        assert dec["shape"] == (6, 4)  # Keras
        assert dec["params"] == 16 * (2 + 4 + 1) == 112  # Keras: 112; the initial state adds no weights
        assert dec["macs"] == 6 * 16 * 6 == 576  # every step has its h·U product already (h0 = 0 or given)


def test_bidirectional_merge_mode_none_and_states():
    layer = {"type": "Bidirectional", "name": "bi", "merge_mode": None,
             "layer": {"type": "LSTM", "units": 4, "return_state": True}}
    report = run([5, 3], [layer])
    assert shapes(report, "bi") == [(4,)] * 6  # Keras: forward, backward, forward h, c, backward h, c
    r = row(report, "bi")
    assert r["params"] == 2 * 128 == 256  # Keras: 256
    assert r["other"] == 2 * 5 * 8 * 4  # the two cells; no merge
    assert report.layers["bi"].spec.output_names() == (
        "forward", "backward", "forward_state_h", "forward_state_c", "backward_state_h", "backward_state_c")
    layer = {"type": "Bidirectional", "name": "bi", "layer": {"type": "GRU", "units": 4, "return_state": True,
                                                               "return_sequences": True}}
    report = run([5, 3], [layer])
    assert shapes(report, "bi") == [(5, 8), (4,), (4,)]  # Keras
    assert row(report, "bi")["params"] == 2 * 108 == 216  # Keras: 216


def test_bidirectional_initial_state_is_forward_then_backward():
    report = run([[5, 3], [4]], [{"type": "Bidirectional", "name": "bi", "inputs": ["x0", "x1", "x1"],
                                  "layer": {"type": "GRU", "units": 4}}])
    assert row(report, "bi")["shape"] == (8,)
    with pytest.raises(NNSpecError, match=r"takes 1 input \(the sequence\), or 3 with its initial state "
                                          r"\(the sequence, then forward_state, backward_state\), got 2"):
        run([[5, 3], [4]], [{"type": "Bidirectional", "inputs": ["x0", "x1"], "layer": {"type": "GRU", "units": 4}}])


def test_output_of_the_model_can_be_a_state():
    text = spec_text([5, 3], [{"type": "LSTM", "name": "enc", "units": 4, "return_state": True}])
    report = analyze(text + "outputs: [enc:state_c]\n")
    assert list(report.layers) == ["x0", "enc"]


def test_memory_counts_every_output():
    report = run([5, 3], [{"type": "LSTM", "name": "enc", "units": 4, "return_sequences": True, "return_state": True}])
    assert report.value(report.as_dict()["layers"][1]["activations"]["value"]) == 5 * 4 + 4 + 4
    assert report.as_dict()["layers"][1]["output_shapes"] == [["5", "4"], ["4"], ["4"]]
    memory = memory_summary(report)
    assert report.value(memory.peak.elements) == 15 + 28  # the input and the three outputs


def test_several_outputs_in_the_table():
    report = run([5, 3], [{"type": "GRU", "name": "gru", "units": 4, "return_state": True}])
    assert "[(4,), (4,)]" in render(report)


@pytest.mark.parametrize(("reference", "message"), [
    ("enc:3", r"input 'enc:3': layer 'enc' \(LSTM\) has 3 outputs \(0 output, 1 state_h, 2 state_c\): no output 3"),
    ("enc:state_x", r"input 'enc:state_x': layer 'enc' \(LSTM\) has no output 'state_x' \(its outputs: 0 output, "
                    r"1 state_h, 2 state_c\)"),
    ("enc:", r"input 'enc:': nothing after ':'"),
    ("nope:1", r"input 'nope:1' is not a layer or model input of this spec"),
])
def test_bad_references(reference, message):
    with pytest.raises(NNSpecError, match=message):
        run([5, 3], [{"type": "LSTM", "name": "enc", "units": 4, "return_state": True},
                     {"type": "Dense", "units": 2, "inputs": [reference]}])


def test_a_layer_with_one_output_says_so():
    with pytest.raises(NNSpecError, match=r"layer 'enc' \(LSTM\) has one output \(refer to it as 'enc'\)") as error:
        run([5, 3], [{"type": "LSTM", "name": "enc", "units": 4}, {"type": "Dense", "units": 2, "inputs": ["enc:1"]}])
    assert "return_state: true" in str(error.value.hint)
