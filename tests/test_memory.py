"""Activation memory, worked by hand on the founding models."""

from analyzer import analyze
from analyzer.memory import activation_elements, peak_activations, weight_bytes


def test_scnn_activations_and_peak():
    scnn = analyze("specs/scnn.yaml")
    sizes = {k: scnn.value(v) for k, v in activation_elements(scnn).items()}
    assert sizes["conv1d_1"] == 128 * 128 and sizes["separable_conv1d_1"] == 128 * 64 and sizes["dense_1"] == 11
    peak = peak_activations(scnn)
    # A chain: while batch_normalization_1 runs, conv1d_1's output (its input) and its own output are alive:
    # 2 * 128*128 = 32,768 elements, the largest pair in the chain.
    assert peak.layer == "batch_normalization_1"
    assert scnn.value(peak.elements) == 2 * 128 * 128
    assert peak.live == ("conv1d_1", "batch_normalization_1")
    assert scnn.value(weight_bytes(scnn, "float16")) == 2 * 104_395


def test_pet_cgdnn_keeps_branches_alive():
    pet = analyze("specs/pet_cgdnn.yaml")
    peak = peak_activations(pet)
    # conv1_1 -> conv1_2: (L-7)*75 + (L-11)*25 = 121*75 + 117*25 = 9,075 + 2,925 = 12,000 elements at L=128
    assert peak.layer == "conv1_2"
    assert pet.value(peak.elements) == 121 * 75 + 117 * 25
    assert pet.at(L=256).value(peak.elements) == 249 * 75 + 245 * 25


def test_pet_cgdnn_memory_in_table_and_json(capsys):
    import json

    from analyzer import cli

    # int8: 1 byte per element. Weights: Keras' 71,487 params. Largest tensor: conv1_1's (L-7)*1*75 = 121*75 = 9,075.
    # Peak: while conv1_2 runs, conv1_1's output (its input) and its own: 9,075 + 117*25 = 12,000 elements.
    assert cli.main(["specs/pet_cgdnn.yaml", "--dtype", "int8", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    memory = data["memory"]
    assert (memory["dtype"], memory["bytes_per_element"]) == ("int8", 1)
    assert memory["weight_bytes"]["value"] == 71_487
    assert memory["largest_activation"]["layer"] == "conv1_1"
    assert memory["largest_activation"]["elements"] == {"expr": "75*L - 525", "value": 9075}
    assert memory["peak_activations"]["layer"] == "conv1_2"
    assert memory["peak_activations"]["live"] == ["conv1_1", "conv1_2"]
    assert memory["peak_activations"]["elements"]["value"] == 121 * 75 + 117 * 25
    assert memory["peak_activations"]["bytes"]["value"] == 12_000
    layers = {layer["name"]: layer for layer in data["layers"]}
    assert layers["conv1_1"]["activations"] == {"expr": "75*L - 525", "value": 121 * 75}
    assert layers["gru_1"]["activations"]["value"] == 128
    assert layers["input1"]["activations"]["value"] == 2 * 128

    # bfloat16, L = 256: weights 2 * 71,743 (Keras at L=256); peak (249*75 + 245*25) * 2 bytes
    assert cli.main(["specs/pet_cgdnn.yaml", "--dtype", "bfloat16", "--set", "L=256"]) == 0
    out = capsys.readouterr().out
    assert "Memory (bfloat16, 2 bytes per element):" in out
    assert f"= {2 * 71_743:,} bytes" in out
    assert f"while conv1_2 runs: 100*L - 800 = {249 * 75 + 245 * 25:,} elements, 200*L - 1600 = " \
           f"{2 * (249 * 75 + 245 * 25):,} bytes" in out


def test_scnn_memory_default_float32(capsys):
    from analyzer import cli

    assert cli.main(["specs/scnn.yaml"]) == 0
    out = capsys.readouterr().out
    # 104,395 params (Keras) * 4 bytes; peak 2*128*128 elements * 4 bytes at batch_normalization_1
    assert f"= {4 * 104_395:,} bytes" in out
    assert f"while batch_normalization_1 runs: 256*L = 32,768 elements, 1024*L = {4 * 32_768:,} bytes" in out
    assert "largest activation: conv1d_1: 128*L = 16,384 elements" in out


def test_peak_keeps_every_model_output_alive():
    from analyzer.memory import memory_summary, model_outputs

    spec = """
name: two-heads
symbols: {N: {default: 10}}
inputs: [{name: x, shape: [N]}]
layers:
  - {type: Dense, name: a, units: 100, inputs: [x]}
  - {type: Dense, name: head1, units: 3, inputs: [a]}
  - {type: Dense, name: b, units: 50, inputs: [a]}
  - {type: Dense, name: head2, units: 4, inputs: [b]}
outputs: [head1, head2]
"""
    report = analyze(spec)
    assert model_outputs(report) == ("head1", "head2")
    summary = memory_summary(report, "float32")
    assert summary is not None
    # while b runs: a (its input) 100, head1 (an output, kept) 3, b 50 = 153; x is dead after a
    assert summary.peak.layer == "b" and report.value(summary.peak.elements) == 153
    assert summary.peak.live == ("a", "head1", "b")


def test_depth_grouping_keeps_memory_of_the_layer_graph(capsys):
    import json

    from analyzer import cli
    from analyzer.memory import memory_summary

    report = analyze("specs/transformer_encoder.yaml")
    assert memory_summary(report.grouped(1)) is None  # grouped rows name inputs inside blocks: not a layer graph
    assert cli.main(["specs/transformer_encoder.yaml", "--depth", "1", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["memory"]["peak_activations"]["layer"] in report.layers  # a layer of the ungrouped graph
