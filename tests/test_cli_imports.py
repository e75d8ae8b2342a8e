"""Cold start (issue 9): `analyze SPEC` imports only what it needs.

The convention profiles, the model importers, sweeps, plots, the export and the other output
formats are imported where an option or a file asks for them. Checked in a new process (this
one has imported everything already), through sys.modules.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LAZY = ("analyzer.importers", "analyzer.conventions", "analyzer.export", "analyzer.sweep", "analyzer.plot",
        "analyzer.compare", "analyzer.explain", "analyzer.schema", "analyzer.formats.csv_format",
        "analyzer.formats.latex", "analyzer.formats.markdown", "analyzer.formats.notebook", "matplotlib",
        "torch", "keras", "onnx")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


def _lazy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.startswith(LAZY))


def test_import_cli_imports_no_optional_module():
    assert _lazy(_modules_after("import analyzer.cli")) == []


def test_analyze_spec_imports_only_the_format_it_prints():
    code = ("import io, contextlib\nfrom analyzer.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    assert main(['specs/scnn.yaml', '--format', 'json']) == 0")
    modules = _modules_after(code)
    assert _lazy(modules) == []
    assert "analyzer.formats.json_format" in modules
    assert "analyzer.formats.table" not in modules


def test_convention_option_imports_the_profiles():
    code = ("import io, contextlib\nfrom analyzer.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    assert main(['specs/scnn.yaml', '--convention', 'thop']) == 0")
    modules = _modules_after(code)
    assert "analyzer.conventions.profiles" in modules
    assert "analyzer.importers" not in modules


def test_a_spec_imports_only_its_layer_families():
    # SCNN: Reshape, Conv2D, BatchNormalization, Activation, Dropout, Flatten, Dense (and what they import)
    code = ("import io, contextlib\nfrom analyzer.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    assert main(['specs/scnn.yaml']) == 0")
    modules = _modules_after(code)
    assert {"analyzer.layers.convolutional", "analyzer.layers.normalization", "analyzer.layers.dense"} <= modules
    assert not {"analyzer.layers.attention", "analyzer.layers.recurrent", "analyzer.layers.wrappers",
                "analyzer.layers.pooling", "analyzer.layers.embedding"} & modules
