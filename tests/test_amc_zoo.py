"""The modulation-recognition model zoo (specs/amc/, issue 6) against real frameworks.

Reference numbers, measured for this project (never produced by nnspec):

KERAS_PARAMS: keras 3.15.1, KERAS_BACKEND=torch (torch 2.13.0+cpu, Python 3.11), `model.count_params()`
  of each model built from its benchmark source, Richardzhangxx/AMR-Benchmark RML201610a/<model>/rmlmodels/*.py
  (the file each spec's header names), with the input length L and `classes` where the source hard-codes
  128-derived sizes and 11. The adaptations to Keras 3, and nothing else:
  * CuDNNLSTM -> keras.layers.LSTM(units, return_sequences=...): ONE bias vector (CuDNNLSTM has two;
    see CUDNN_LSTM_UNITS below);
  * CuDNNGRU -> keras.layers.GRU(units, return_sequences=..., reset_after=True): Keras 3's default, the
    same weights as CuDNNGRU (kernel, recurrent kernel, two bias vectors);
  * CNN1: Sequential([...], input_shape=...) -> Sequential with a keras.Input first;
  * CLDNN: list(np.shape(concat)) -> list(concat.shape); Keras 1's init= dropped (CLDNN, CLDNN2;
    an initializer). CLDNN and CGDNet keep data_format="channels_first" as in the source (Keras 3
    supports it on the torch backend), which checks the specs' channels-last translation;
  * PET-CGDNN: Lambda(tf.keras.backend.cos / sin) -> Lambda(keras.ops.cos / sin);
  * MCLDNN: its unnamed Reshape([-1, 128, 50]) gets name='reshap1' (Keras 3 auto-names it 'reshape',
    which clashes with the source's layer named 'reshape'; Keras 2 named it reshape_1);
  * sizes: Dense(11) -> Dense(classes) (CNN2, IC-AMCNet, CLDNN, CLDNN2), CLDNN's Reshape([11]) ->
    Reshape([classes]); Reshape targets (124, 100) -> (L - 4, 100) (MCLDNN), [-1, 128, 50] ->
    [-1, L, 50] (MCLDNN), (80, 120) -> (80, L - 8) (CLDNN2), (50, 472) -> (50, 4L - 40) (CGDNet),
    (117, 25) -> (L - 11, 25) (PET-CGDNN); input shapes [2, 128] -> [2, L] etc.
  Specs with `cudnn_compatible: true` are compared with the flag turned off (Keras 3's LSTM).
  DAE is the exception: its numbers are worked by hand (dae_keras_params, dae_flopcounter below) for the
  source's return_state revision (stored commit 8972ddbe), and agreed with Keras 3.15.1 / FlopCounterMode
  when written (14,829 params, 96 of them non-trainable, and 3,231,072 FLOPs at L = 128, 11 classes).

FLOPCOUNTER: torch 2.13.0 torch.utils.flop_counter.FlopCounterMode around one forward pass (batch 1,
  training=False) of the same Keras models on the torch backend. It counts aten.convolution and aten.mm
  (the LSTM/GRU cells run as per-step matmuls on CPU), 2 FLOPs per multiply-accumulate: 2 x MACs.

CuDNN's second bias: torch 2.13.0's nn.LSTM(I, H), which has both bias vectors as CuDNNLSTM does,
  has 4H(I + H) + 8H parameters (measured: nn.LSTM(2, 128) 67,584; nn.LSTM(128, 128) 132,096;
  nn.LSTM(2, 32) 4,608; nn.LSTM(32, 32) 8,448; nn.LSTM(100, 128) 117,760; nn.LSTM(488, 50) 108,000;
  nn.LSTM(120, 50) 34,400), Keras 3's LSTM 4H(I + H) + 4H: so a spec with the flag on has 4H params
  more per CuDNNLSTM layer than the Keras 3 model.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy
import yaml

from analyzer import analyze
from analyzer.asymptotics import growth
from analyzer.errors import DomainError
from tests.conftest import run

ZOO = Path("specs/amc")
FILES = {
    "CNN1": "cnn1", "CNN2": "cnn2", "MCNet": "mcnet", "IC-AMCNet": "ic_amcnet", "ResNet": "resnet",
    "DenseNet": "densenet", "GRU2": "gru2", "LSTM2": "lstm2", "DAE": "dae", "MCLDNN": "mcldnn", "CLDNN": "cldnn",
    "CLDNN2": "cldnn2", "CGDNet": "cgdnet", "PET-CGDNN": "pet_cgdnn", "1DCNN-PF": "1dcnn_pf",
}
SOURCES = {  # the benchmark file each spec is written from
    "CNN1": "RML201610a/CNN1/rmlmodels/CNN2Model.py", "CNN2": "RML201610a/CNN2/rmlmodels/CNN2.py",
    "MCNet": "RML201610a/MCNET/rmlmodels/MCNET.py", "IC-AMCNet": "RML201610a/IC-AMCNet/rmlmodels/ICAMC.py",
    "ResNet": "RML201610a/ResNet/rmlmodels/ResNet.py", "DenseNet": "RML201610a/DenseNet/rmlmodels/DenseNet.py",
    "GRU2": "RML201610a/GRU2/rmlmodels/GRUModel.py", "LSTM2": "RML201610a/LSTM2/rmlmodels/CuDNNLSTMModel.py",
    "DAE": "RML201610a/DAE/rmlmodels/DAE.py", "MCLDNN": "RML201610a/MCLDNN/rmlmodels/MCLDNN.py",
    "CLDNN": "RML201610a/CLDNN/rmlmodels/CLDNNLikeModel.py", "CLDNN2": "RML201610a/CLDNN2/rmlmodels/CLDNNLikeModel.py",
    "CGDNet": "RML201610a/CGDNet/rmlmodels/CGDNN.py", "PET-CGDNN": "RML201610a/PET-CGDNN/rmlmodels/PETCGDNN.py",
    "1DCNN-PF": "RML201610a/1DCNN-PF/rmlmodels/DCNNPF.py",
}

# Keras 3 count_params() at SETTINGS, and FlopCounterMode's total at FLOP_SETTINGS (see the docstring)
SETTINGS = [(128, 11), (129, 11), (200, 11), (256, 11), (1000, 24), (1024, 24)]  # (L, classes)
FLOP_SETTINGS = [(128, 11), (200, 11), (1024, 24)]
KERAS_PARAMS = {
    "CNN1": (1_592_383, 1_605_183, 2_513_983, 3_230_783, 12_757_324, 13_064_524),
    "CNN2": (858_123, 858_123, 923_659, 989_195, 1_744_536, 1_777_304),
    "MCNet": (121_611, 125_835, 125_835, 125_835, 191_128, 191_128),
    "IC-AMCNet": (1_264_011, 1_264_011, 1_853_835, 2_312_587, 8_409_112, 8_605_720),
    "ResNet": (3_098_283, 3_118_763, 4_572_843, 5_719_723, 20_958_520, 21_450_040),
    "DenseNet": (3_282_603, 3_303_083, 4_757_163, 5_904_043, 21_142_840, 21_634_360),
    "GRU2": (151_179, 151_179, 151_179, 151_179, 152_856, 152_856),
    "LSTM2": (200_075, 200_075, 200_075, 200_075, 201_752, 201_752),
    "MCLDNN": (405_175, 405_175, 405_175, 405_175, 406_852, 406_852),
    "CLDNN": (164_233, 165_033, 221_833, 266_633, 865_174, 884_374),
    "CLDNN2": (517_443, 517_643, 531_843, 543_043, 693_520, 698_320),
    "CGDNet": (124_933, 125_533, 168_133, 201_733, 651_474, 665_874),
    "PET-CGDNN": (71_871, 71_873, 72_015, 72_127, 75_292, 75_340),
    "1DCNN-PF": (174_923, 174_923, 199_499, 207_691, 405_976, 405_976),
}
FLOPCOUNTER = {
    "CNN1": (12_988_032, 20_706_432, 109_045_888),
    "CNN2": (157_551_360, 246_156_032, 1_260_394_496),
    "MCNet": (2_816_256, 4_673_024, 22_609_920),
    "IC-AMCNet": (29_625_088, 46_287_616, 236_984_320),
    "ResNet": (248_253_184, 387_894_016, 1_986_009_088),
    "DenseNet": (342_625_024, 535_350_016, 2_740_983_808),
    "GRU2": (37_948_160, 59_292_416, 303_568_896),
    "LSTM2": (50_596_608, 79_055_616, 404_756_480),
    "MCLDNN": (97_179_136, 153_369_088, 796_435_200),
    "CLDNN": (30_271_232, 47_666_432, 246_751_488),
    "CLDNN2": (122_959_616, 193_720_064, 1_003_537_408),
    "CGDNet": (21_868_832, 34_915_232, 184_230_688),
    "PET-CGDNN": (16_235_446, 26_218_822, 140_476_342),
    "1DCNN-PF": (26_322_176, 42_253_568, 224_276_992),
}



def dae_keras_params(length: int, classes: int) -> int:
    """Keras 3's count_params() of DAE.py's model, by hand. LSTM(H) on I features: 4H(I + H) + 4H (one bias)."""
    lstm_1 = 4 * 32 * (2 + 32) + 4 * 32  # 4,480
    lstm_2 = 4 * 32 * (32 + 32) + 4 * 32  # 8,320
    dense_1 = 32 * 32 + 32  # 1,056, on the final state h (32,)
    batch_norm_1 = 4 * 32  # gamma, beta, moving mean, moving variance
    dense_2 = 32 * 16 + 16  # 528
    batch_norm_2 = 4 * 16
    xc = 16 * classes + classes
    xd = 32 * 2 + 2  # TimeDistributed(Dense(2)): one Dense shared by the L steps
    return lstm_1 + lstm_2 + dense_1 + batch_norm_1 + dense_2 + batch_norm_2 + xc + xd  # 14,642 + 17*classes


def dae_flopcounter(length: int, classes: int) -> int:
    """FlopCounterMode's total for DAE.py's model (batch 1), by hand: 2 x the matmuls' multiply-accumulates.
    Each LSTM step multiplies the input by the (I, 4H) kernel and h by the (H, 4H) recurrent kernel;
    the batch normalizations and activations are not matmuls."""
    lstm_1 = length * 4 * 32 * (2 + 32)
    lstm_2 = length * 4 * 32 * (32 + 32)
    head = 32 * 32 + 32 * 16 + 16 * classes
    xd = length * 32 * 2
    return 2 * (lstm_1 + lstm_2 + head + xd)


KERAS_PARAMS["DAE"] = tuple(dae_keras_params(length, classes) for length, classes in SETTINGS)
FLOPCOUNTER["DAE"] = tuple(dae_flopcounter(length, classes) for length, classes in FLOP_SETTINGS)
# Keras' non-trainable params: DAE's two BatchNormalization layers' moving mean and variance; 0 elsewhere
NON_TRAINABLE = {"DAE": 2 * 32 + 2 * 16}

# units of each CuDNNLSTM layer in the sources (they get 4*units params more than Keras 3's LSTM)
CUDNN_LSTM_UNITS = {"LSTM2": (128, 128), "DAE": (32, 32), "MCLDNN": (128, 128), "CLDNN": (50,), "CLDNN2": (50,)}

# the smallest L each architecture admits, worked by hand from the sources (valid convolutions and
# poolings need an input at least as long as the kernel / pool); 1 = every length
MIN_LENGTH = {
    "CNN1": 8,  # conv2: 'valid' (2, 8)
    "CNN2": 16,  # four 'valid' (1, 2) poolings: floor(L/8) >= 2
    "MCNet": 1,  # everything 'same'
    "IC-AMCNet": 2,  # the (2, 2) pooling
    "ResNet": 1, "DenseNet": 1, "GRU2": 1, "LSTM2": 1, "DAE": 1,
    "MCLDNN": 5,  # conv4: 'valid' (2, 5)
    "CLDNN": 10,  # conv13 sees L - 6 + 4 positions >= 8
    "CLDNN2": 9,  # four 'valid' width-3 convolutions: L - 6 >= 3
    "CGDNet": 16,  # three 'valid' width-6 convolutions: L - 10 >= 6
    "PET-CGDNN": 12,  # conv1_1 (height 8), conv1_2 (height 5): L - 7 >= 5
    # after the fusion L - 10; five stages of conv (-2) then pool (//2) each need length >= 2 after the conv:
    # n5 = floor(n4/2) - 2 >= 2, ..., back to L - 10 - 2 >= 90: L >= 102
    "1DCNN-PF": 102,
}



def spec_path(model: str) -> Path:
    return ZOO / f"{FILES[model]}.yaml"


_REPORTS: dict[tuple[str, bool], object] = {}


def report(model: str, cudnn: bool = True):
    """The spec's symbolic report; cudnn=False turns every cudnn_compatible flag off (Keras 3's layers)."""
    key = (model, cudnn)
    if key not in _REPORTS:
        text = spec_path(model).read_text()
        if not cudnn:
            text = text.replace("cudnn_compatible: true", "cudnn_compatible: false")
        _REPORTS[key] = analyze(text)
    return _REPORTS[key]


def test_the_zoo_has_the_fifteen_models():
    assert sorted(p.stem for p in ZOO.glob("*.yaml")) == sorted(FILES.values())
    assert {analyze(spec_path(m)).name for m in FILES} == set(FILES)


@pytest.mark.parametrize("model", list(FILES))
def test_header_names_the_source_and_the_domain(model):
    header = "".join(line for line in spec_path(model).read_text().splitlines(keepends=True) if line.startswith("#"))
    assert f"Source: Richardzhangxx/AMR-Benchmark, {SOURCES[model]}" in header
    assert "Deviations" in header and "Domain:" in header


@pytest.mark.parametrize("model", list(FILES))
@pytest.mark.parametrize(("length", "classes"), SETTINGS)
def test_params_equal_keras(model, length, classes):
    r = report(model, cudnn=False).at(L=length, classes=classes)
    assert r.value(r.total.params) == KERAS_PARAMS[model][SETTINGS.index((length, classes))]
    assert r.value(r.total.non_trainable_params) == NON_TRAINABLE.get(model, 0)


@pytest.mark.parametrize("model", list(FILES))
@pytest.mark.parametrize(("length", "classes"), SETTINGS)
def test_params_with_cudnn_double_bias(model, length, classes):
    r = report(model).at(L=length, classes=classes)
    extra = sum(4 * units for units in CUDNN_LSTM_UNITS.get(model, ()))
    assert r.value(r.total.params) == KERAS_PARAMS[model][SETTINGS.index((length, classes))] + extra


@pytest.mark.parametrize("model", list(FILES))
@pytest.mark.parametrize(("length", "classes"), FLOP_SETTINGS)
def test_macs_equal_flopcounter(model, length, classes):
    r = report(model).at(L=length, classes=classes)
    assert 2 * r.value(r.total.macs) == FLOPCOUNTER[model][FLOP_SETTINGS.index((length, classes))]


@pytest.mark.parametrize("model", list(FILES))
def test_domain(model):
    low = MIN_LENGTH[model]
    report(model).at(L=low)
    if low > 1:
        with pytest.raises(DomainError):
            report(model).at(L=low - 1)


def test_recurrent_params_that_grow_with_the_length():
    """Hand formulas: where a hard-coded reshape puts L into the features of a recurrent layer."""
    L = sympy.Symbol("L", integer=True, positive=True)

    def params(model, layer):
        return sympy.expand(report(model).layers[layer].counts.params)

    # CGDNet: CuDNNGRU(50) over 50 steps of 4L - 40 features: 3*50*(4L - 40 + 50) + 2*3*50
    assert params("CGDNet", "cu_dnngru_1") == 600 * L + 1800
    # CLDNN: CuDNNLSTM(50) over 50 steps of 4L - 24 features: 4*50*(4L - 24 + 50) + 2*4*50
    assert params("CLDNN", "cu_dnnlstm_1") == 800 * L + 5600
    # CLDNN2: CuDNNLSTM(50) over 80 steps of L - 8 features: 4*50*(L - 8 + 50) + 2*4*50
    assert params("CLDNN2", "cu_dnnlstm_1") == 200 * L + 8800
    # DAE's decoder, TimeDistributed(Dense(2)) on the (L, 32) states: one Dense(2), 32*2 + 2, no L
    assert params("DAE", "xd") == 66
    # MCLDNN: the LSTM sees L - 4 steps of 100 features: no L in its params
    assert params("MCLDNN", "cu_dnnlstm_1") == 4 * 128 * (100 + 128) + 2 * 4 * 128


@pytest.mark.parametrize(("model", "params_order", "flops_order"), [
    ("GRU2", "O(1)", "O(L)"), ("LSTM2", "O(1)", "O(L)"), ("MCLDNN", "O(1)", "O(L)"),
    ("CNN1", "O(L)", "O(L)"), ("CGDNet", "O(L)", "O(L)"), ("DAE", "O(1)", "O(L)"),
])
def test_growth_orders(model, params_order, flops_order):
    r = report(model)
    L = r.symbol("L").symbol
    assert growth(r.total.params, L, r.values).order == params_order
    assert growth(r.total.flops, L, r.values).order == flops_order


def test_pet_cgdnn_differs_from_the_founding_spec_only_in_the_gru():
    """specs/amc/pet_cgdnn.yaml is specs/pet_cgdnn.yaml with CuDNNGRU's two bias vectors: nothing else may drift."""
    zoo = yaml.safe_load((ZOO / "pet_cgdnn.yaml").read_text())
    founding = yaml.safe_load(Path("specs/pet_cgdnn.yaml").read_text())
    zoo_gru = next(layer for layer in zoo["layers"] if layer["type"] == "GRU")
    founding_gru = next(layer for layer in founding["layers"] if layer["type"] == "GRU")
    assert (zoo_gru.pop("reset_after"), zoo_gru.pop("cudnn_compatible")) == (True, True)
    assert founding_gru.pop("reset_after") is False
    assert zoo == founding
    # 3*128 more params (the second bias vector), at every L
    zoo_r, founding_r = analyze(ZOO / "pet_cgdnn.yaml"), analyze("specs/pet_cgdnn.yaml")
    assert sympy.expand(zoo_r.total.params - founding_r.total.params) == 384


def test_gaussian_noise_and_dropout_are_the_identity_at_inference():
    r = run([7, 3], [{"type": "GaussianNoise", "stddev": 1}, {"type": "GaussianDropout", "rate": 0.2}])
    for name in ("gaussian_noise_1", "gaussian_dropout_1"):
        row = r.layers[name]
        assert row.output_shape == (7, 3)
        assert r.value(row.counts.params) == 0 and r.value(row.counts.flops) == 0 and r.value(row.counts.macs) == 0


def test_the_doc_tables_are_current():
    """docs/amc-zoo.md's tables are what `make zoo` prints now (rerun it after changing a spec)."""
    import importlib.util

    module_spec = importlib.util.spec_from_file_location("amc_zoo_doc", Path("scripts/amc_zoo_doc.py"))
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    assert [Path(p).stem for p in module.SPECS] == [FILES[m] for m in FILES]  # every model, in the benchmark's order
    assert module.main(["--check"]) == 0
