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
