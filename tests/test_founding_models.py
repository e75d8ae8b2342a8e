"""The two models of the founding document, against the numbers Keras and
PyTorch report.

Reference numbers:
* per-layer params at L=128: the Keras summaries printed in the founding document;
* totals at L = 77, 256, 1000: Keras 3.15.1 `count_params()` (torch backend) on the
  same models, measured for this project (the cross-check suite rebuilds them);
* FlopCounterMode: torch 2.13.0 `torch.utils.flop_counter.FlopCounterMode` on
  faithful PyTorch ports at batch 1. It counts exactly 2 x (conv, matmul and GRU MACs).
"""

import pytest
import sympy

from analyzer import analyze
from analyzer.errors import DomainError


@pytest.fixture(scope="module")
def scnn():
    return analyze("specs/scnn.yaml")


@pytest.fixture(scope="module")
def pet():
    return analyze("specs/pet_cgdnn.yaml")


def params(report, name):
    return report.value(report.layers[name].counts.params)


def test_scnn_layers_match_the_keras_summary(scnn):
    expected = {"conv1d_1": 4224, "batch_normalization_1": 512, "separable_conv1d_1": 9280,
                "batch_normalization_2": 256, "dense_1": 90123, "activation_1": 0}
    assert {name: params(scnn, name) for name in expected} == expected
    bn = scnn.layers["batch_normalization_1"].counts
    assert scnn.value(bn.non_trainable_params) == 256


def test_scnn_shapes(scnn):
    L = scnn.symbol("L").symbol
    shapes = [scnn.layers[n].output_shape for n in
              ("reshape_1", "conv1d_1", "batch_normalization_1", "separable_conv1d_1", "flatten_1", "dense_1")]
    assert shapes[:4] == [(L, 2), (L, 128), (L, 128), (L, 64)]
    assert shapes[4] == (64 * L,)
    assert scnn.value(shapes[5][0]) == 11


def test_scnn_totals(scnn):
    total = scnn.total
    assert (scnn.value(total.params), scnn.value(total.trainable_params), scnn.value(total.non_trainable_params)) == (
        104_395, 104_011, 384)
    L = scnn.symbol("L").symbol
    assert sympy.Poly(total.params.subs(scnn.symbol("classes").symbol, 11), L).degree() == 1


@pytest.mark.parametrize(("length", "keras_params"), [(77, 68_491), (128, 104_395), (256, 194_507), (1000, 718_283)])
def test_scnn_params_at_other_lengths(scnn, length, keras_params):
    assert scnn.at(L=length).value(scnn.total.params) == keras_params


def test_pet_cgdnn_layers(pet):
    L = pet.symbol("L").symbol
    assert params(pet, "fc2") == 257
    assert params(pet, "conv1_1") == 1275
    assert pet.layers["conv1_1"].output_shape == (L - 7, 1, 75)
    assert params(pet, "conv1_2") == 9400
    assert pet.layers["conv1_2"].output_shape == (L - 11, 1, 25)
    assert params(pet, "gru_1") == 59_136
    assert params(pet, "softmax") == 1419
    assert pet.value(pet.total.params) == 71_487


@pytest.mark.parametrize(("length", "keras_params"), [(77, 71_385), (128, 71_487), (256, 71_743), (1000, 73_231)])
def test_pet_cgdnn_params_at_other_lengths(pet, length, keras_params):
    assert pet.at(L=length).value(pet.total.params) == keras_params


def test_seed_hand_counts_without_bias():
    report = analyze("specs/pet_cgdnn.yaml", bias="off")
    assert report.value(report.layers["conv1_1"].counts.dot) == 281_325
    assert report.value(report.layers["conv1_2"].counts.dot) == 2_190_825


def test_seed_fc2_dot_plus_bias(pet):
    fc2 = pet.layers["fc2"].counts
    assert pet.value(fc2.dot + fc2.bias) == 512


@pytest.mark.parametrize(("length", "scnn_torch", "pet_torch"), [
    (77, 2_158_464, 9_163_888),
    (128, 3_588_096, 16_235_446),
    (256, 7_176_192, 33_983_670),
    (1000, 28_032_000, 137_145_222),
])
def test_macs_are_half_of_flop_counter_mode(scnn, pet, length, scnn_torch, pet_torch):
    assert 2 * scnn.at(L=length).value(scnn.total.macs) == scnn_torch
    assert 2 * pet.at(L=length).value(pet.total.macs) == pet_torch


def test_pet_cgdnn_domain(pet):
    assert any(c.startswith("L >= 12") for c in pet.describe_constraints())
    pet.at(L=12)
    with pytest.raises(DomainError, match=r"conv1_2.*valid only for L >= 12"):
        pet.at(L=11)


def test_rows_sum_to_totals(scnn, pet):
    for report in (scnn, pet):
        for quantity in ("params", "trainable_params", "non_trainable_params", "macs", "flops"):
            rows = sum(report.value(r.counts.quantity(quantity)) for r in report.layers.values())
            assert rows == report.value(report.total.quantity(quantity))
        flops = report.total.flops_by_op
        assert report.value(report.total.flops) == sum(report.value(v) for v in flops.values())


def test_domain_is_one_line_per_symbol(pet):
    # conv1_1 needs L >= 8 and conv1_2 L >= 12; only the tighter one is the domain
    domain = pet.domain()
    assert len(domain) == 1 and domain[0].startswith("L >= 12  [layer 'conv1_2'")
    assert len(pet.describe_constraints()) == 2
