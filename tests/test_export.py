"""The exporters' framework-free parts: builder tables, names, unrolled repeats, the written
files and the CLI. Building real models is tested in tests/crosscheck (make crosscheck)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from analyzer import cli
from analyzer.export import KERAS_BUILDERS, TORCH_BUILDERS, ExportError, export_source, plan_export
from analyzer.export.plan import keras_names, python_names
from analyzer.layers import LAYERS
from analyzer.layers.builders import BuilderTable
from analyzer.spec.loader import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted(p for p in (ROOT / "specs").rglob("*.y*ml"))


def test_both_frameworks_have_builders_for_the_same_registered_types():
    # a builder or a stated refusal (keras_hub's layers have no keras.layers counterpart: ReversibleEmbedding, ...)
    assert KERAS_BUILDERS.types() | set(KERAS_BUILDERS.refused) == TORCH_BUILDERS.types() | set(TORCH_BUILDERS.refused)
    assert KERAS_BUILDERS.types() <= set(LAYERS)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_layer_type_of_the_shipped_specs_can_be_exported(path):
    used = {entry.type for entry in load_spec(path).layers}
    assert used <= KERAS_BUILDERS.types() | set(KERAS_BUILDERS.refused) and used <= TORCH_BUILDERS.types()


def test_a_second_builder_for_a_type_is_refused():
    table = BuilderTable("torch")
    table.register("Dense")(lambda layer, plan: None)
    with pytest.raises(RuntimeError, match="duplicate torch builder for layer type 'Dense'"):
        table.register("Dense")(lambda layer, plan: None)


SPEC_WITHOUT_BUILDER = """
name: t
inputs: [{name: x, shape: [10, 3]}]
layers:
  - {type: Conv1D, name: conv, filters: 2, kernel_size: 3}
  - {type: GaussianNoise, name: noise, stddev: 0.1}
"""


def test_a_type_without_builder_is_an_error_naming_the_layer(monkeypatch):
    assert "GaussianNoise" in TORCH_BUILDERS  # imports the family that registers it, before it is taken away
    monkeypatch.delitem(TORCH_BUILDERS.builders, "GaussianNoise")
    with pytest.raises(ExportError) as info:
        export_source(SPEC_WITHOUT_BUILDER, "torch")
    text = str(info.value)
    assert "layer 'noise' (GaussianNoise)" in text and "no torch builder" in text
    assert "analyzer/layers/regularization.py" in text  # the family module, where its builders live
    export_source(SPEC_WITHOUT_BUILDER, "keras")  # the Keras table still has it


def test_a_type_with_no_torch_counterpart_says_why(monkeypatch):
    assert "GaussianNoise" in TORCH_BUILDERS
    monkeypatch.delitem(TORCH_BUILDERS.builders, "GaussianNoise")
    monkeypatch.setitem(TORCH_BUILDERS.refused, "GaussianNoise", "has no torch counterpart: a test says so")
    with pytest.raises(ExportError, match="layer type 'GaussianNoise' has no torch counterpart: a test says so"):
        export_source(SPEC_WITHOUT_BUILDER, "torch")


def test_python_names():
    names = python_names(["conv2.block1.1_conv", "forward", "1x", "a_b", "a.b", "lambda", "_private", "ok"])
    assert names == {"conv2.block1.1_conv": "conv2_block1_1_conv", "forward": "forward_", "1x": "layer_1x",
                     "a_b": "a_b", "a.b": "a_b_2", "lambda": "lambda_", "_private": "layer_private", "ok": "ok"}
    assert len(set(names.values())) == len(names)


def test_keras_names_replace_dots_and_slashes_only():
    assert keras_names(["conv2.block1.1_conv", "a/b", "a_b", "x-1", "forward"]) == {
        "conv2.block1.1_conv": "conv2_block1_1_conv", "a/b": "a_b_2", "a_b": "a_b", "x-1": "x-1", "forward": "forward"}


REPEATED = """
name: repeated
symbols: {N: 2, F: 4}
blocks:
  residual:
    layers:
      - {type: Dense, name: dense, units: F}
      - {type: Add, name: add, inputs: [x, dense]}
inputs: [{name: x, shape: [F]}]
layers:
  - {block: residual, name: stack, repeat: N}
  - {type: Dense, name: head, units: 1}
"""


def test_a_block_repeated_a_symbolic_number_of_times_is_unrolled():
    plan = plan_export(REPEATED, {"N": 3})
    wiring = {layer.name: layer.inputs for layer in plan.layers}
    assert wiring == {
        "stack.block1.dense": ("x",), "stack.block1.add": ("x", "stack.block1.dense"),
        "stack.block2.dense": ("stack.block1.add",), "stack.block2.add": ("stack.block1.add", "stack.block2.dense"),
        "stack.block3.dense": ("stack.block2.add",), "stack.block3.add": ("stack.block2.add", "stack.block3.dense"),
        "head": ("stack.block3.add",),
    }
    dense = [layer for layer in plan.layers if layer.type == "Dense" and layer.name != "head"]
    assert [plan.report.value(layer.counts.params) for layer in dense] == [4 * 4 + 4] * 3  # each copy: F*F + F
    assert plan.outputs == ["head"]


def test_sizes_are_concrete_and_checked():
    plan = plan_export(ROOT / "specs/pet_cgdnn.yaml", {"L": 77})
    gru = next(layer for layer in plan.layers if layer.type == "GRU")
    assert gru.input_shape == (66, 25) and gru.output_shape == (128,)  # L - 11 steps
    with pytest.raises(Exception, match="L"):
        plan_export(ROOT / "specs/pet_cgdnn.yaml", {"L": 5})  # below the domain L >= 12


def test_torch_source_holds_only_the_classes_it_uses():
    text = export_source(ROOT / "specs/pet_cgdnn.yaml", "torch", L=77)
    compile(text, "pet.py", "exec")
    assert "class KerasGRU(nn.Module)" in text and "class GRU(nn.Module)" not in text
    assert "class Pool(" not in text and "class BatchNorm(" not in text
    assert "self.gru_1 = KerasGRU(" in text and "reshape4 = self.reshape4(conv1_2)" in text
    assert "Reshape(target_shape=(66, 25))" in text  # L - 11 at L = 77
    native = export_source(ROOT / "specs/pet_cgdnn.yaml", "torch", L=77, native_gru=True)
    assert "self.gru_1 = GRU(" in native and "--native-gru" in native


def test_keras_source_names_layers_as_keras_accepts():
    text = export_source(ROOT / "specs/resnet50.yaml", "keras", S=64)
    compile(text, "resnet.py", "exec")
    assert "name='conv2_block1_1_conv'" in text  # conv2.block1.1_conv: Keras' own name for it
    assert "layers.Add(name='conv2_block1_add')([conv2_block1_0_bn, conv2_block1_3_bn])" in text


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.relative_to(ROOT).as_posix())
@pytest.mark.parametrize("framework", ["keras", "torch"])
def test_every_shipped_spec_exports_to_valid_python(path, framework):
    refused = {entry.type for entry in load_spec(path).layers} & set(KERAS_BUILDERS.refused)
    if framework == "keras" and refused:  # specs/llm/: keras_hub layers, checked on the torch export
        pytest.skip(f"the Keras export refuses {', '.join(sorted(refused))}")
    compile(export_source(path, framework), f"{path.stem}.py", "exec")


def test_analyzer_and_export_import_no_framework():
    code = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None  # any import of torch or keras now fails
        sys.modules["keras"] = None
        import analyzer, analyzer.export
        from analyzer.export import ExportError, export_source, to_torch, to_keras
        export_source("specs/scnn.yaml", "torch"); export_source("specs/scnn.yaml", "keras")
        for build in (to_torch, to_keras):
            try:
                build("specs/scnn.yaml")
            except ExportError as error:
                assert "not installed" in str(error) and "pip install" in str(error), error
            else:
                raise AssertionError("no ExportError without the framework")
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_cli_writes_the_file(tmp_path, capsys):
    out = tmp_path / "scnn.py"
    assert cli.main(["specs/scnn.yaml", "--export", "torch", "--set", "L=77", "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    text = out.read_text()
    compile(text, str(out), "exec")
    assert "self.dense_1 = Dense(in_features=4928, units=11, use_bias=True)" in text  # 64 * 77 features
    assert cli.main(["specs/scnn.yaml", "--export", "keras"]) == 0
    assert "layers.SeparableConv1D(" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["-o", "x.py"], "go with --export"),
    (["--export", "keras", "--native-gru"], "--native-gru applies to --export torch"),
    (["--export", "torch", "--set", "L=5"], "L"),
])
def test_cli_export_usage_errors(capsys, argv, message):
    assert cli.main(["specs/pet_cgdnn.yaml", *argv]) == 2
    assert message in capsys.readouterr().err


def test_nested_symbolic_repeats_are_unrolled_copy_by_copy():
    """A block repeated N times holding one repeated M times: each outer copy writes its M inner copies, copy k + 1
    of each level reading copy k's output (tests/crosscheck/specs/zoo_nested_repeats.yaml at N = 2, M = 2)."""
    from analyzer.export.plan import plan_export

    plan = plan_export(ROOT / "tests/crosscheck/specs/zoo_nested_repeats.yaml", {"N": 2, "M": 2, "T": 3})
    wiring = {layer.name: layer.inputs for layer in plan.layers}
    assert wiring["out.block1.in.block1.d"] == ("out.block1.norm",)
    assert wiring["out.block1.in.block2.add"] == ("out.block1.in.block1.add", "out.block1.in.block2.d")
    assert wiring["out.block1.proj"] == ("out.block1.in.block2.add",)
    assert wiring["out.block2.norm"] == ("out.block1.res",)
    assert wiring["out.block2.res"] == ("out.block1.res", "out.block2.proj")
    assert wiring["head"] == ("out.block2.res",)
    assert len(plan.layers) == 1 + 2 * (3 + 2 * 2) + 1  # first, N x (norm, proj, res + M x (d, add)), head
    assert {layer.copies for layer in plan.layers if ".in." in layer.name} == {4}  # one of N·M copies
