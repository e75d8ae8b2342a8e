"""Convention profiles (`--convention`): each tool's rules on single layers, worked by
hand from the tool's source formula, and the founding models against the numbers
the real tools printed.

Reference numbers for the founding models: thop 0.1.1.post2209072238, ptflops 0.7.5
(backend='pytorch'), fvcore 0.1.5.post20221221 and torch 2.13.0 FlopCounterMode on
PyTorch ports of SCNN and PET-CGDNN at batch 1 (issue 4's table, L=128; the other
lengths measured the same way for this project). The cross-check suite
(tests/crosscheck/test_profiles.py) re-measures all of them on the exported models.
No framework is imported here.
"""

import json
import subprocess
import sys

import pytest
import sympy

from analyzer import analyze, cli
from analyzer.conventions import PROFILES, Profile, missing_rules, recount, recount_with, register_profile
from analyzer.conventions.base import zero
from analyzer.errors import UsageError
from analyzer.export import TORCH_BUILDERS
from tests.conftest import last, run

TOOLS = ("torch", "thop", "ptflops", "fvcore")


def counts(inputs, layer, symbols=None, **kwargs):
    """{profile: (value, skipped reason or None)} for the last layer of a one-layer model."""
    report = run(inputs, [layer], symbols, **kwargs)
    name = last(report).name
    out = {}
    for profile in PROFILES:
        count = recount_with(report, profile).layers[name]
        out[profile] = (report.value(count.expr), count.skipped)
    return out


def values(result):
    return {name: value for name, (value, _) in result.items()}


# -- the registry ------------------------------------------------------------------

def test_profiles_are_the_documented_ones():
    assert set(PROFILES) == {"nnspec", "torch", "thop", "ptflops", "fvcore", "seed-approx"}
    assert PROFILES["seed-approx"].approximate and not any(PROFILES[t].approximate for t in TOOLS)


def test_registry_refuses_a_duplicate_and_unknown_types():
    with pytest.raises(RuntimeError, match="duplicate"):
        register_profile(Profile("thop", "again", "MACs", {"Dense": zero}))
    with pytest.raises(RuntimeError, match="unknown layer types"):
        register_profile(Profile("new-tool", "x", "MACs", {"Dense2": zero}))
    assert "new-tool" not in PROFILES


@pytest.mark.parametrize("name", ["nnspec", "seed-approx"])
def test_generic_profiles_cover_every_layer_type(name):
    assert missing_rules(PROFILES[name]) == []


@pytest.mark.parametrize("name", TOOLS)
def test_tool_profiles_cover_every_type_nnspec_exports_to_torch(name):
    assert missing_rules(PROFILES[name], TORCH_BUILDERS.types()) == []


def test_a_layer_type_without_a_rule_is_a_clear_error():
    # A tool profile covers the types nnspec exports to PyTorch; any other type is a usage error, not a 0.
    report = run([5], [{"type": "Dense", "units": 3}])
    with pytest.raises(UsageError, match="no rule for layer type 'Dense'"):
        recount(report, Profile("partial", "a tool", "MACs", {"InputLayer": zero}))


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_rule_names_its_source(name):
    for type_name, rule in PROFILES[name].rules.items():
        assert rule.__doc__ and len(rule.__doc__) > 20, f"{name}: rule for {type_name} has no justification"


def test_unknown_convention_is_a_usage_error():
    with pytest.raises(UsageError, match="did you mean 'fvcore'"):
        recount_with(analyze("specs/scnn.yaml"), "fvcor")


# -- convolutions --------------------------------------------------------------------

def test_conv1d_same_even_kernel():
    # SCNN's conv1d_1: (128, 2) -> (128, 128), k = 16, bias. MACs = 128·128·2·16 = 524,288.
    r = counts([128, 2], {"type": "Conv1D", "filters": 128, "kernel_size": 16, "padding": "same"})
    assert values(r) | {"fvcore": 0} == {
        "torch": 2 * 524_288,            # conv_flop_count, x2
        "thop": 524_288,                 # calculate_conv2d_flops, no bias
        "ptflops": 524_288 + 128 * 128,  # + one per biased output
        "fvcore": 0,
        "nnspec": 128 * 128 * (2 * 32 - 1) + 128 * 128,
        "seed-approx": 2 * 4224 * 128,
    }
    value, reason = r["fvcore"]
    assert value == 0 and "aten::_convolution_mode" in reason and reason.startswith("skipped by fvcore")


def test_conv2d_valid():
    # PET-CGDNN's conv1_1: (128, 2, 1) -> (121, 1, 75), kernel 8x2, 1275 params.
    r = values(counts([128, 2, 1], {"type": "Conv2D", "filters": 75, "kernel_size": [8, 2]}))
    macs = 121 * 75 * 16
    assert macs == 145_200
    assert r["torch"] == 290_400 and r["thop"] == r["fvcore"] == 145_200
    assert r["ptflops"] == 145_200 + 121 * 75 == 154_275
    assert r["seed-approx"] == 308_550  # the founding document's own number


def test_grouped_conv_counts_channels_per_group():
    # (10, 4) -> (8, 6), k = 3, groups 2: each output sums 3·2 = 6 terms.
    r = values(counts([10, 4], {"type": "Conv1D", "filters": 6, "kernel_size": 3, "groups": 2}))
    assert r["thop"] == r["fvcore"] == 8 * 6 * 6 == 288
    assert r["ptflops"] == 3 * 4 * 3 * 8 + 48 == 336  # k · in_channels · (out // groups) · positions + bias
    assert r["torch"] == 576


def test_conv_without_bias():
    r = values(counts([10, 4], {"type": "Conv1D", "filters": 6, "kernel_size": 3, "use_bias": False}))
    assert r["ptflops"] == r["thop"] == 8 * 6 * 12
    r_on = values(counts([10, 4], {"type": "Conv1D", "filters": 6, "kernel_size": 3, "use_bias": False}, bias="on"))
    assert r_on["ptflops"] == 8 * 6 * 12 + 48 and r_on["thop"] == 8 * 6 * 12


def test_separable_conv1d_same():
    # SCNN's separable_conv1d_1: depthwise k=8 on 128 channels (131,072) + pointwise 128 -> 64 (1,048,576).
    r = counts([128, 128], {"type": "SeparableConv1D", "filters": 64, "kernel_size": 8, "padding": "same"})
    assert values(r)["thop"] == 131_072 + 1_048_576
    assert values(r)["ptflops"] == 131_072 + 1_048_576 + 128 * 64
    assert values(r)["torch"] == 2 * (131_072 + 1_048_576)
    value, reason = r["fvcore"]
    assert value == 1_048_576 and "depthwise" in reason  # the 1x1 pointwise conv is still counted


def test_separable_conv1d_valid_with_depth_multiplier():
    # (10, 3) -> (8, 4), k = 3, m = 2: depthwise 8·6·3 = 144, pointwise 8·4·6 = 192.
    r = counts([10, 3], {"type": "SeparableConv1D", "filters": 4, "kernel_size": 3, "depth_multiplier": 2})
    assert values(r)["thop"] == values(r)["fvcore"] == 336
    assert r["fvcore"][1] is None
    assert values(r)["ptflops"] == 336 + 32
    assert values(r)["torch"] == 672


# -- dense ----------------------------------------------------------------------------

def test_dense():
    # SCNN's dense_1: 8192 -> 11.
    r = values(counts([8192], {"type": "Dense", "units": 11}))
    assert (r["torch"], r["thop"], r["ptflops"], r["fvcore"]) == (180_224, 90_112, 90_123, 90_112)


def test_dense_on_rank3_input():
    # (5, 7) -> (5, 3): 5 positions of 7·3 MACs; ptflops adds the bias at every position.
    r = values(counts([5, 7], {"type": "Dense", "units": 3}))
    assert (r["thop"], r["fvcore"], r["torch"]) == (105, 105, 210)
    assert r["ptflops"] == (7 * 3 + 3) * 5 == 120


def test_dense_with_softmax_is_partly_skipped_by_fvcore():
    r = counts([128], {"type": "Dense", "units": 11, "activation": "softmax"})
    value, reason = r["fvcore"]
    assert value == 1408 and "aten::softmax" in reason
    assert r["thop"] == (1408, None) and r["ptflops"] == (1419, None)


# -- normalization, recurrent ---------------------------------------------------------

def test_batch_normalization():
    r = values(counts([128, 128], {"type": "BatchNormalization"}))
    n = 128 * 128
    assert (r["thop"], r["ptflops"], r["fvcore"], r["torch"]) == (4 * n, 2 * n, 2 * n, 0)
    assert r["seed-approx"] == 2 * 512 * 128


def test_batch_normalization_without_affine():
    r = values(counts([6, 4], {"type": "BatchNormalization", "center": False, "scale": False}))
    assert (r["thop"], r["ptflops"], r["fvcore"]) == (48, 24, 24)


def test_gru_of_pet_cgdnn():
    # I = 25, H = 128, T = 117. Per step: thop's _count_gru_cell = 3H(I+H) + 7H + 6H = 60,416.
    r = counts([117, 25], {"type": "GRU", "units": 128, "reset_after": False})
    assert 3 * 128 * 153 + 13 * 128 == 60_416
    assert values(r)["thop"] == values(r)["ptflops"] == 117 * 60_416 == 7_068_672
    assert values(r)["torch"] == 2 * 117 * 3 * 128 * 153 == 13_747_968
    assert values(r)["seed-approx"] == 2 * 59_136 * 117
    value, reason = r["fvcore"]
    assert value == 0 and "aten::gru" in reason


def test_gru_without_bias():
    # I = 3, H = 2, T = 4: per step 3·2·5 = 30 + 7·2 = 44 (no bias vectors).
    r = values(counts([4, 3], {"type": "GRU", "units": 2, "use_bias": False}))
    assert r["thop"] == r["ptflops"] == 4 * 44


def test_lstm_and_simple_rnn_are_loops_of_linear():
    # I = 5, H = 6, T = 7. KerasLSTM: kernel Linear(5, 24) over the sequence, recurrent Linear(6, 24) per step.
    r = counts([7, 5], {"type": "LSTM", "units": 6})
    assert values(r)["thop"] == 7 * 24 * 5 + 7 * 24 * 6 == 1848
    assert values(r)["ptflops"] == 1848 + 7 * 24  # + the kernel's bias at each of the 7 rows
    assert values(r)["torch"] == 2 * 1848
    assert r["fvcore"][0] == 1848 and "gate arithmetic" in r["fvcore"][1]
    rnn = values(counts([7, 5], {"type": "SimpleRNN", "units": 6}))
    assert (rnn["thop"], rnn["ptflops"], rnn["torch"]) == (7 * 6 * 11, 7 * 6 * 11 + 7 * 6, 2 * 7 * 6 * 11)


def test_gru_as_a_loop_when_not_native():
    # to_torch's default for reset_after=False: KerasGRU, counted by its nn.Linear calls (T = 7, I = 5, H = 6).
    report = run([7, 5], [{"type": "GRU", "units": 6, "reset_after": False}])
    loop = {t: report.value(recount_with(report, t, native_gru=False).total) for t in TOOLS}
    macs = 7 * 18 * (5 + 6)
    assert loop == {"torch": 2 * macs, "thop": macs, "ptflops": macs + 7 * 18, "fvcore": macs}
    assert "aten::rsub" in recount_with(report, "fvcore", native_gru=False).skipped["gru_1"]


def test_normalizations():
    ln = values(counts([9, 4], {"type": "LayerNormalization"}))
    assert (ln["thop"], ln["ptflops"], ln["fvcore"], ln["torch"]) == (4 * 36, 36, 5 * 36, 0)
    gn = values(counts([9, 8], {"type": "GroupNormalization", "groups": 4}))
    assert (gn["thop"], gn["ptflops"], gn["fvcore"]) == (0, 2 * 72, 5 * 72)  # thop has no nn.GroupNorm rule
    bn = counts([9, 4], {"type": "BatchNormalization", "scale": False})  # not affine in torch; + beta by hand
    assert (bn["thop"][0], bn["ptflops"][0], bn["fvcore"][0]) == (2 * 36, 36, 36) and "aten::add" in bn["fvcore"][1]


def test_pooling():
    # (20, 3), pool 3, valid: ptflops counts the input numel twice (module hook and the patched F.max_pool1d).
    r = counts([20, 3], {"type": "MaxPooling1D", "pool_size": 3})
    assert values(r)["ptflops"] == 2 * 60 and values(r)["thop"] == 0
    assert "aten::max_pool1d" in r["fvcore"][1]
    # (9, 8, 3), pool 2, same: padded to (10, 8), output (5, 4); the export also pools a map of ones.
    r = values(counts([9, 8, 3], {"type": "AveragePooling2D", "pool_size": 2, "padding": "same"}))
    assert r["thop"] == 5 * 4 * 3 + 5 * 4
    assert r["ptflops"] == 2 * (10 * 8 * 3) + 2 * (10 * 8)
    r = counts([9, 8, 3], {"type": "GlobalAveragePooling2D"})
    assert values(r)["ptflops"] == values(r)["thop"] == 0 and "aten::mean" in r["fvcore"][1]


def test_ptflops_counts_the_activations_it_patches():
    assert counts([6, 3], {"type": "Activation", "activation": "relu6"})["ptflops"] == (18, None)  # F.relu6
    assert counts([6, 3], {"type": "Activation", "activation": "sigmoid"})["ptflops"] == (0, None)  # torch.sigmoid
    conv = values(counts([9, 8, 3], {"type": "DepthwiseConv2D", "kernel_size": 3, "padding": "same", "activation": "relu6"}))
    assert conv["ptflops"] == 72 * 3 * 9 + 216 + 216  # MACs + bias outputs + relu6 outputs


# -- activations, elementwise, shape layers --------------------------------------------

def test_standalone_activations():
    softmax = counts([11], {"type": "Activation", "activation": "softmax"})
    assert values(softmax) | {"nnspec": None, "fvcore": None} == {
        "torch": 0, "thop": 0, "ptflops": 0, "seed-approx": 0, "nnspec": None, "fvcore": None}
    assert softmax["nnspec"] == (32, None)
    assert softmax["fvcore"][0] == 0 and "aten::softmax" in softmax["fvcore"][1]
    relu = counts([11], {"type": "Activation", "activation": "relu"})
    assert relu["fvcore"] == (0, None)  # aten::relu is ignored on purpose, not unsupported


@pytest.mark.parametrize(("layer", "op"), [
    ({"type": "Lambda", "function": "cos"}, "aten::cos"),
    ({"type": "Lambda", "function": "negative"}, "aten::neg"),
])
def test_elementwise_functions(layer, op):
    r = counts([5], layer)
    assert all(r[t] == (0, None) for t in ("torch", "thop", "ptflops"))
    assert r["fvcore"][0] == 0 and op in r["fvcore"][1]


@pytest.mark.parametrize(("kind", "op"), [("Add", "aten::add"), ("Subtract", "aten::sub"), ("Multiply", "aten::mul")])
def test_merges(kind, op):
    report = run([[4, 1], [4, 1]], [{"type": kind, "inputs": ["x0", "x1"]}])
    for tool in ("torch", "thop", "ptflops"):
        assert report.value(recount_with(report, tool).total) == 0
    fvcore = recount_with(report, "fvcore")
    (reason,) = fvcore.skipped.values()
    assert op in reason


def test_cost_free_layers():
    report = run([[4, 6], [8]], [
        {"type": "Reshape", "name": "r", "target_shape": [6, 4], "inputs": ["x0"]},
        {"type": "Flatten", "name": "f"},
        {"type": "Dropout", "name": "d", "rate": 0.5},
        {"type": "Concatenate", "name": "c", "inputs": ["d", "x1"]},
    ])
    assert {row.type for row in report.layers.values()} == {"InputLayer", "Reshape", "Flatten", "Dropout", "Concatenate"}
    for name in PROFILES:
        recount = recount_with(report, name)
        assert recount.total == 0 and recount.skipped == {}, name


# -- the founding models ---------------------------------------------------------------

ISSUE_TABLE = {  # issue 4, L=128
    "specs/scnn.yaml": {"torch": 3_588_096, "thop": 1_892_352, "ptflops": 1_867_787, "fvcore": 1_187_840},
    "specs/pet_cgdnn.yaml": {"torch": 16_235_446, "thop": 8_312_411, "ptflops": 8_324_423, "fvcore": 1_243_739},
}

OTHER_LENGTHS = {  # the same tools and ports, measured at other L
    ("specs/scnn.yaml", 77): {"torch": 2_158_464, "thop": 1_138_368, "ptflops": 1_123_595, "fvcore": 714_560},
    ("specs/scnn.yaml", 1000): {"torch": 28_032_000, "thop": 14_784_000, "ptflops": 14_592_011, "fvcore": 9_280_000},
    ("specs/pet_cgdnn.yaml", 77): {"torch": 9_163_888, "thop": 4_691_768, "ptflops": 4_698_680, "fvcore": 704_312},
    ("specs/pet_cgdnn.yaml", 1000): {"torch": 137_145_222, "thop": 70_218_307, "ptflops": 70_317_519,
                                     "fvcore": 10_466_883},
}


LOOP_GRU_PET = {"torch": 16_235_446, "thop": 8_117_723, "ptflops": 8_174_663, "fvcore": 8_117_723}  # to_torch's default
IMAGE_MODELS = {  # the tools on the export, S = 224
    "specs/mobilenet_v2.yaml": {"torch": 601_548_544, "thop": 327_486_720, "ptflops": 320_237_288, "fvcore": 49_862_912},
    "specs/resnet50.yaml": {"torch": 7_715_946_496, "thop": 3_900_321_792, "ptflops": 3_891_399_144,
                            "fvcore": 2_029_459_456},
}


def test_pet_cgdnn_with_to_torch_default_gru():
    report = analyze("specs/pet_cgdnn.yaml")
    assert {t: report.value(recount_with(report, t, native_gru=False).total) for t in TOOLS} == LOOP_GRU_PET


@pytest.mark.parametrize("spec", sorted(IMAGE_MODELS))
def test_image_models(spec):
    report = analyze(spec, S=224)
    assert {t: report.value(recount_with(report, t).total) for t in TOOLS} == IMAGE_MODELS[spec]


@pytest.mark.parametrize("spec", sorted(ISSUE_TABLE))
def test_founding_models_match_the_issue_table(spec):
    report = analyze(spec)
    assert {t: report.value(recount_with(report, t).total) for t in TOOLS} == ISSUE_TABLE[spec]


@pytest.mark.parametrize(("spec", "length"), sorted(OTHER_LENGTHS))
def test_founding_models_at_other_lengths(spec, length):
    report = analyze(spec)
    at = report.at(L=length)
    assert {t: at.value(recount_with(report, t).total) for t in TOOLS} == OTHER_LENGTHS[(spec, length)]


def test_profile_totals_stay_symbolic():
    report = analyze("specs/scnn.yaml")
    L, classes = (report.symbol(n).symbol for n in ("L", "classes"))
    assert sympy.expand(recount_with(report, "torch").total - (128 * L * classes + 26624 * L)) == 0
    assert recount_with(report, "thop").total.free_symbols == {L, classes}


def test_scnn_per_layer_as_the_tools_report_per_module():
    # thop ret_layer_info / ptflops per-module __flops__ / fvcore by_module, L=128.
    report = analyze("specs/scnn.yaml")
    per_layer = {t: {n: report.value(c.expr) for n, c in recount_with(report, t).layers.items() if c.expr != 0}
                 for t in ("thop", "ptflops", "fvcore")}
    assert per_layer["thop"] == {"conv1d_1": 524_288, "batch_normalization_1": 65_536,
                                 "separable_conv1d_1": 131_072 + 1_048_576, "batch_normalization_2": 32_768,
                                 "dense_1": 90_112}
    assert per_layer["ptflops"] == {"conv1d_1": 540_672, "batch_normalization_1": 32_768,
                                    "separable_conv1d_1": 131_072 + 1_056_768, "batch_normalization_2": 16_384,
                                    "dense_1": 90_123}
    assert per_layer["fvcore"] == {"batch_normalization_1": 32_768, "separable_conv1d_1": 1_048_576,
                                   "batch_normalization_2": 16_384, "dense_1": 90_112}


def test_pet_cgdnn_skips_are_reported():
    report = analyze("specs/pet_cgdnn.yaml")
    skipped = recount_with(report, "fvcore").skipped
    assert "aten::gru" in skipped["gru_1"]
    assert set(skipped) == {"lambda_1", "lambda_2", "multiply_1", "multiply_2", "multiply_3", "multiply_4", "add_1",
                            "subtract_1", "gru_1", "softmax"}
    assert recount_with(report, "thop").skipped == {}


def test_seed_approx_reproduces_the_founding_document():
    # Its numbers for PET-CGDNN: fc2 514, conv1_1 308,550, conv1_2 2,199,600 (params x H x W x 2).
    report = analyze("specs/pet_cgdnn.yaml")
    seed = recount_with(report, "seed-approx").layers
    assert [report.value(seed[n].expr) for n in ("fc2", "conv1_1", "conv1_2")] == [514, 308_550, 2_199_600]
    assert report.value(seed["gru_1"].expr) == 2 * 59_136 * 117


def test_nnspec_profile_is_our_flops():
    report = analyze("specs/pet_cgdnn.yaml")
    assert sympy.expand(recount_with(report, "nnspec").total - report.total.flops) == 0


def test_bias_switch_is_honoured():
    report = analyze("specs/scnn.yaml", bias="off")
    # ptflops without any bias = thop's MAC count with BatchNorm at 2 per element instead of 4.
    assert report.value(recount_with(report, "ptflops").total) == 1_892_352 - 65_536 // 2 - 32_768 // 2


# -- the command line ------------------------------------------------------------------

def run_cli(capsys, *argv):
    status = cli.main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


def test_cli_json_convention_section(capsys):
    status, out, _ = run_cli(capsys, "specs/pet_cgdnn.yaml", "--convention", "fvcore", "--format", "json", "--set", "L=77")
    assert status == 0
    section = json.loads(out)["convention"]
    assert section["name"] == "fvcore" and section["approximate"] is False
    assert section["total"]["value"] == 704_312 and "L" in section["total"]["expr"]
    assert set(section["layers"]["gru_1"]) == {"skipped"}
    assert section["layers"]["conv1_1"] == {"expr": "1200*L - 8400", "value": 1200 * 70}
    assert set(section["layers"]["softmax"]) == {"expr", "value", "skipped"}


def test_cli_json_without_convention_has_no_section(capsys):
    _, out, _ = run_cli(capsys, "specs/scnn.yaml", "--format", "json")
    assert "convention" not in json.loads(out)


def test_cli_table_says_skipped(capsys):
    status, out, _ = run_cli(capsys, "specs/scnn.yaml", "--convention", "fvcore")
    assert status == 0
    assert "skipped [1]" in out and "[1] skipped by fvcore: padding='same'" in out
    assert "fvcore total:" in out and "= 1,187,840" in out


@pytest.mark.parametrize("fmt", ["markdown", "csv", "latex", "table"])
def test_cli_other_formats_show_the_profile(capsys, fmt):
    status, out, _ = run_cli(capsys, "specs/scnn.yaml", "--convention", "thop", "--format", fmt)
    assert status == 0
    assert any(s in out for s in ("1,892,352", "1892352", "1{,}892{,}352"))


def test_cli_unknown_convention_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["specs/scnn.yaml", "--convention", "flops"])
    assert exit_info.value.code == 2


def test_profiles_import_no_framework():
    code = ("import sys, analyzer.conventions, analyzer.cli; "
            "print(sorted(m for m in ('torch', 'thop', 'ptflops', 'fvcore', 'keras', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_depth_groups_the_profile_too(capsys):
    _, flat, _ = run_cli(capsys, "specs/resnet50.yaml", "--convention", "fvcore", "--format", "json", "--set", "S=32")
    _, grouped, _ = run_cli(capsys, "specs/resnet50.yaml", "--convention", "fvcore", "--format", "json", "--set", "S=32",
                            "--depth", "1")
    flat, grouped = json.loads(flat)["convention"], json.loads(grouped)["convention"]
    assert grouped["total"] == flat["total"]
    assert len(grouped["layers"]) < len(flat["layers"])
    assert sum(c.get("value", 0) for c in grouped["layers"].values()) == grouped["total"]["value"]
    assert any("aten::_convolution_mode" in c.get("skipped", "") for c in grouped["layers"].values())


# -- transposed convolutions and wrappers (numbers the real tools printed on the export, T = 10) --

def test_conv1d_transpose_counts_the_full_output_where_the_tool_does():
    # (10, 3) -> (21, 4), k 3, s 2, valid, bias, relu. MACs = 10·3·4·3 = 360; the module's output is 21 long.
    r = counts([10, 3], {"type": "Conv1DTranspose", "filters": 4, "kernel_size": 3, "strides": 2, "activation": "relu"})
    assert {t: r[t] for t in TOOLS} == {
        "torch": (720, None),              # conv_flop_count(transposed): input spatial
        "thop": (21 * 4 * 3 * 3, None),    # calculate_conv2d_flops on the module's output
        "ptflops": (360 + 21 * 4, None),   # conv_flops_counter_hook(transpose=True) + bias on the output
        "fvcore": (360, None),             # aten::relu is ignored
    }


def test_conv_transpose_crops_follow_keras():
    from analyzer.layers.torch_modules.crops import conv_transpose_crops

    # keras backend_utils.compute_conv_transpose_output_crops_for_torch, printed for these cases
    assert conv_transpose_crops([3], [2], "valid", None, [1]) == [(0, 0)]
    assert conv_transpose_crops([1], [3], "valid", None, [1]) == [(0, -2)]
    assert conv_transpose_crops([4], [3], "same", None, [1]) == [(0, 1)]
    assert conv_transpose_crops([5], [2], "same", [1], [1]) == [(1, 2)]


def test_bidirectional_counts_both_directions():
    # LSTM(1) over (10, 3) twice (KerasLSTM loops), concat: each direction 10·4·(3 + 1) = 160 MACs.
    r = counts([10, 3], {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 1, "return_sequences": True}})
    assert values(r) | {"nnspec": 0, "seed-approx": 0} == {"torch": 640, "thop": 320, "ptflops": 400, "fvcore": 320,
                                                             "nnspec": 0, "seed-approx": 0}
    assert "aten::sigmoid" in r["fvcore"][1]
    summed = counts([10, 3], {"type": "Bidirectional", "merge_mode": "ave", "layer": {"type": "SimpleRNN", "units": 2}})
    assert "aten::div" in summed["fvcore"][1]


def test_time_distributed_counts_the_wrapped_layer_t_times():
    # Dense(5, relu) on each of 10 steps of (7, 2): 10·7·2·5 = 700 MACs, 10·7·5 = 350 biased outputs.
    r = counts([10, 7, 2], {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 5, "activation": "relu"}})
    assert {t: r[t] for t in TOOLS} == {"torch": (1400, None), "thop": (700, None), "ptflops": (1050, None),
                                        "fvcore": (700, None)}
