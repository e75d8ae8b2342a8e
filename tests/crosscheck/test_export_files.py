"""`analyze SPEC --export keras|torch -o FILE`: the written file runs on its own (its framework only)
and builds the same model as to_keras / to_torch: same layers, params and, with the same weights,
the same outputs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import torch
from crosscheck_harness import ROOT

from analyzer import cli
from analyzer.export import to_keras, to_torch

CASES = [("specs/scnn.yaml", {"L": 77}), ("specs/pet_cgdnn.yaml", {"L": 77}),
         ("specs/resnet50.yaml", {"S": 40, "classes": 7}), ("tests/crosscheck/specs/zoo_rnn.yaml", {"T": 5}),
         ("tests/crosscheck/specs/zoo_wrappers.yaml", {"T": 7})]


def write(tmp_path, spec, framework, values, *extra):
    out = tmp_path / f"{framework}_{spec.replace('/', '_').replace('.', '_')}.py"
    sets = [a for k, v in values.items() for a in ("--set", f"{k}={v}")]
    assert cli.main([str(ROOT / spec), "--export", framework, *sets, "-o", str(out), *extra]) == 0
    module_spec = importlib.util.spec_from_file_location(out.stem, out)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return out, module


@pytest.mark.parametrize("spec, values", CASES, ids=[c[0] for c in CASES])
def test_torch_file_builds_the_to_torch_model(tmp_path, spec, values):
    _, module = write(tmp_path, spec, "torch", values)
    written, reference = module.build(), to_torch(ROOT / spec, **values)
    assert {k: v.shape for k, v in written.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}
    assert [n for n, _ in written.named_children()] == [n for n, _ in reference.named_children()]
    written.load_state_dict(reference.state_dict())
    xs = [torch.randn(2, *shape) for shape in module.INPUT_SHAPES.values()]
    with torch.no_grad():
        a, b = written(*xs), reference(*xs)
    for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,), strict=True):
        assert torch.equal(x, y)


@pytest.mark.parametrize("spec, values", CASES, ids=[c[0] for c in CASES])
def test_keras_file_builds_the_to_keras_model(tmp_path, spec, values):
    _, module = write(tmp_path, spec, "keras", values)
    written, reference = module.build(), to_keras(ROOT / spec, **values)
    assert [(layer.name, type(layer).__name__, layer.count_params()) for layer in written.layers] == \
        [(layer.name, type(layer).__name__, layer.count_params()) for layer in reference.layers]
    written.set_weights(reference.get_weights())
    xs = [np.random.default_rng(0).standard_normal((2, *x.shape[1:])).astype("float32") for x in reference.inputs]
    xs = xs if len(xs) > 1 else xs[0]
    a, b = written.predict(xs, verbose=0), reference.predict(xs, verbose=0)
    for x, y in zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b], strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_written_file_runs_as_a_script(tmp_path, framework):
    path, _ = write(tmp_path, "specs/pet_cgdnn.yaml", framework, {"L": 77})
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert ("output shape: (1, 11)" in result.stdout) if framework == "torch" else ("71,385" in result.stdout)
