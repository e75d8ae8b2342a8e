"""Shared helpers: build small specs in YAML and analyze them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from analyzer.api import analyze
from analyzer.report import Report

CROSSCHECK = Path(__file__).parent / "crosscheck"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """tests/crosscheck needs torch and keras and takes minutes: it runs only when asked for by
    path (`make crosscheck` runs `pytest tests/crosscheck`), never as part of `pytest tests`."""
    if collection_path != CROSSCHECK:
        return None
    base = Path(config.invocation_params.dir)
    for arg in config.args:
        target = (base / arg.split("::")[0]).resolve()
        if target == CROSSCHECK or CROSSCHECK in target.parents:
            return None
    return True


def spec_text(inputs: list[list[Any]] | list[Any], layers: list[dict[str, Any]], symbols: dict[str, Any] | None = None) -> str:
    if inputs and not isinstance(inputs[0], list):
        inputs = [inputs]
    document = {
        "name": "test",
        "symbols": symbols or {},
        "inputs": [{"name": f"x{i}", "shape": shape} for i, shape in enumerate(inputs)],
        "layers": layers,
    }
    return yaml.safe_dump(document, sort_keys=False)


def run(inputs: Any, layers: list[dict[str, Any]], symbols: dict[str, Any] | None = None, **kwargs: Any) -> Report:
    return analyze(spec_text(inputs, layers, symbols), **kwargs)


def last(report: Report) -> Any:
    """The last layer's row."""
    return list(report.layers.values())[-1]


def values(report: Report, row: Any) -> dict[str, Any]:
    c = row.counts
    return {
        "shape": tuple(report.value(d) for d in row.output_shape),
        "params": report.value(c.params),
        "trainable": report.value(c.trainable_params),
        "non_trainable": report.value(c.non_trainable_params),
        "macs": report.value(c.macs),
        "dot": report.value(c.dot),
        "bias": report.value(c.bias),
        "activation": report.value(c.activation),
        "other": report.value(c.other),
        "flops": report.value(c.flops),
    }


@pytest.fixture
def one_layer():
    """Analyze a single layer on one input; returns the numbers of that layer."""

    def build(shape: list[Any], layer: dict[str, Any], symbols: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        report = run(shape, [layer], symbols, **kwargs)
        return values(report, last(report))

    return build
