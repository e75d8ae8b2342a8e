"""The Python entry point: `analyze("specs/scnn.yaml")` returns a Report whose
formulas are sympy expressions (`report.total.flops`) and whose `.at(L=1024)`
gives the same report with numbers at other symbol values."""

from __future__ import annotations

from pathlib import Path

from analyzer.errors import UsageError
from analyzer.graph import analyze_spec
from analyzer.report import ANALYSES, Report
from analyzer.spec.loader import Spec, load_spec, parse_spec


def analyze(spec: str | Path, *, bias: str = "spec", phase: str = "prefill", **values: int) -> Report:
    """Analyze a spec file (or YAML text containing a newline) at optional symbol values. phase: "prefill" (T
    tokens, no cache) or "decode" (T new tokens, default 1, after P cached ones: analyzer/phases.py).

    A model file (.keras, .json, .h5, .onnx) is converted first, with its own sizes; to name
    symbols, use analyzer.importers.import_model (docs/importers.md)."""
    from analyzer.importers import is_model_file  # here, not at the top: `import analyzer` stays light (issue 9)

    text_given = isinstance(spec, str) and "\n" in spec
    if not text_given and is_model_file(spec):
        from analyzer.importers import import_model

        parsed = import_model(spec).spec
    else:
        parsed = parse_spec(spec, "<string>") if text_given else load_spec(spec)  # type: ignore[arg-type]
    report = analyze_phase(parsed, bias, phase)
    return report.at(**values) if values else report


def analyze_phase(spec: Spec, bias: str, phase: str) -> Report:
    """analyze_spec in the phase asked for (analyzer/phases.py)."""
    from analyzer.phases import PHASES, decode_spec

    if phase not in PHASES:
        raise UsageError(f"unknown phase {phase!r} (one of {', '.join(PHASES)})")
    if phase == "prefill":
        return analyze_spec(spec, bias=bias)
    spec, cache = decode_spec(spec)
    return analyze_spec(spec, bias=bias, kv_cache=cache)


def _training_step(report: Report, **options: object) -> object:
    """Report.training: analyzer.training, imported at the first call (it imports report.py, which cannot import it)."""
    from analyzer.training import training_step

    return training_step(report, **options)  # type: ignore[arg-type]


ANALYSES["training"] = _training_step
