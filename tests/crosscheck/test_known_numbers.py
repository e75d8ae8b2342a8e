"""The exported founding models against numbers measured with the real frameworks and counters
(Keras 3.15.1 and torch 2.13.0 on independent hand-written ports; issue 4's table, and
/work/scratch/ref/REPORT.md of the measuring session), not against nnspec's own output."""

from __future__ import annotations

import io
import logging
import warnings

import pytest
import torch
from crosscheck_harness import ROOT
from torch.utils.flop_counter import FlopCounterMode

from analyzer.export import to_keras, to_torch

SCNN, PET = ROOT / "specs/scnn.yaml", ROOT / "specs/pet_cgdnn.yaml"
L_VALUES = (77, 128, 256, 1000)
# Keras count_params() of the founding models (PET: GRU reset_after=False), classes = 11
KERAS_PARAMS = {SCNN: (68_491, 104_395, 194_507, 718_283), PET: (71_385, 71_487, 71_743, 73_231)}
# FlopCounterMode totals on the hand-written torch ports, batch 1
FLOP_COUNTER = {SCNN: (2_158_464, 3_588_096, 7_176_192, 28_032_000), PET: (9_163_888, 16_235_446, 33_983_670, 137_145_222)}


def inputs(model, L, batch=1):
    shapes = {"input_1": (2, L), "input1": (2, L, 1), "input2": (L, 1), "input3": (L, 1)}
    return tuple(torch.randn(batch, *shapes[name]) for name in model.spec_inputs)


@pytest.mark.parametrize("spec", [SCNN, PET], ids=["SCNN", "PET-CGDNN"])
@pytest.mark.parametrize("index", range(4), ids=[f"L={L}" for L in L_VALUES])
def test_exported_keras_model_has_the_measured_params(spec, index):
    model = to_keras(spec, L=L_VALUES[index])
    assert model.count_params() == KERAS_PARAMS[spec][index]
    non_trainable = sum(int(torch.tensor(w.shape).prod()) for w in model.non_trainable_weights)
    assert non_trainable == (384 if spec == SCNN else 0)  # BN moving mean and variance: 2 * (128 + 64)


@pytest.mark.parametrize("native_gru", [False, True])
@pytest.mark.parametrize("spec", [SCNN, PET], ids=["SCNN", "PET-CGDNN"])
@pytest.mark.parametrize("index", range(4), ids=[f"L={L}" for L in L_VALUES])
def test_exported_torch_model_gives_the_measured_flop_counter_total(spec, index, native_gru):
    L = L_VALUES[index]
    model = to_torch(spec, L=L, native_gru=native_gru)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*inputs(model, L))
    assert counter.get_total_flops() == FLOP_COUNTER[spec][index]


def test_torch_params_at_L128():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(to_torch(SCNN, L=128)) == 104_011  # Keras' trainable: BN statistics are buffers
    assert count(to_torch(PET, L=128)) == 71_487  # the reset_after=False GRU, as Keras
    assert count(to_torch(PET, L=128, native_gru=True)) == 71_871  # nn.GRU's second bias: + 3 * 128


# Issue 4's table: the counters on straightforward PyTorch ports at L = 128, batch 1.
ISSUE_TABLE = {
    "SCNN": {"flop_counter": 3_588_096, "thop": 1_892_352, "ptflops_pytorch": 1_867_787, "ptflops_aten": 1_818_635,
             "fvcore": 1_187_840},
    "PET-CGDNN": {"flop_counter": 16_235_446, "thop": 8_312_411, "ptflops_pytorch": 8_324_423, "ptflops_aten": 8_174_663,
                  "fvcore": 1_243_739},
}


def run_counters(make, L):
    thop = pytest.importorskip("thop")
    ptflops = pytest.importorskip("ptflops")
    fvcore_nn = pytest.importorskip("fvcore.nn")
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    out = {}
    model = make()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*inputs(model, L))
    out["flop_counter"] = counter.get_total_flops()
    model = make()
    out["thop"] = int(thop.profile(model, inputs=inputs(model, L), verbose=False)[0])
    for backend in ("pytorch", "aten"):
        model = make()
        xs = inputs(model, L)
        named = dict(zip(model.spec_inputs, xs, strict=True))
        ctor = (lambda res, x=xs[0]: x) if len(xs) == 1 else (lambda res, named=named: named)
        macs, _ = ptflops.get_model_complexity_info(model, (1,), input_constructor=ctor, as_strings=False,
                                                    backend=backend, print_per_layer_stat=False, ost=io.StringIO())
        out[f"ptflops_{backend}"] = int(macs)
    model = make()
    analysis = fvcore_nn.FlopCountAnalysis(model, inputs(model, L))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    out["fvcore"] = int(analysis.total())
    logging.disable(logging.NOTSET)
    return out


def test_exported_scnn_is_counted_like_the_hand_written_port():
    assert run_counters(lambda: to_torch(SCNN, L=128), 128) == ISSUE_TABLE["SCNN"]


def test_exported_pet_with_native_gru_is_counted_like_the_hand_written_port():
    assert run_counters(lambda: to_torch(PET, L=128, native_gru=True), 128) == ISSUE_TABLE["PET-CGDNN"]


def test_exported_pet_keeps_keras_gru_and_differs_only_there():
    """The default export computes Keras' reset_after=False GRU with nn.Linear kernels. thop and fvcore
    then count exactly its MACs (fvcore no longer gives up on aten::gru): the port's count minus what each
    gave nn.GRU (thop 117 * 60,416 = 7,068,672; fvcore 0) plus the loop's MACs 117 * 384 * (25 + 128)."""
    counts = run_counters(lambda: to_torch(PET, L=128), 128)
    loop_macs = 117 * 384 * (25 + 128)
    assert counts["flop_counter"] == ISSUE_TABLE["PET-CGDNN"]["flop_counter"]
    assert counts["thop"] == ISSUE_TABLE["PET-CGDNN"]["thop"] - 117 * 60_416 + loop_macs
    assert counts["fvcore"] == ISSUE_TABLE["PET-CGDNN"]["fvcore"] + loop_macs
