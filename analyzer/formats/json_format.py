"""--format json: the contract in docs/spec-format.md (values are exact integers)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from analyzer.asymptotics import growth_dict
from analyzer.memory import MemorySummary, memory_summary
from analyzer.report import Report

if TYPE_CHECKING:
    from analyzer.conventions.base import Recount


def memory_dict(report: Report, memory: MemorySummary) -> dict[str, Any]:
    """The JSON "memory" object (docs/spec-format.md#json-output)."""
    return {
        "dtype": memory.dtype,
        "bytes_per_element": memory.bytes_per_element,
        "weight_bytes": report.formula(memory.weight_bytes),
        "largest_activation": {"layer": memory.largest_layer, "elements": report.formula(memory.largest_elements),
                               "bytes": report.formula(memory.largest_bytes)},
        **({"inference_bytes": report.formula(memory.inference_bytes)} if memory.kv_cache is not None else {}),
        "peak_activations": {"layer": memory.peak.layer, "live": list(memory.peak.live),
                             "elements": report.formula(memory.peak.elements), "bytes": report.formula(memory.peak_bytes)},
    }


def render(report: Report, convention: Recount | None = None, memory: MemorySummary | None = None) -> str:
    return json.dumps(report_data(report, convention, memory), indent=2) + "\n"


def report_data(report: Report, convention: Recount | None = None, memory: MemorySummary | None = None) -> dict[str, Any]:
    """The JSON object `render` prints (sections such as `training` are added to it before it is printed once)."""
    data = report.as_dict()
    data["asymptotics"] = growth_dict(report)
    memory = memory or memory_summary(report)
    if memory is not None:
        data["memory"] = memory_dict(report, memory)
        if memory.kv_cache is not None:  # per sample, in the memory's dtype
            cache = memory.kv_cache
            data["kv_cache"] = {"phase": report.phase, "elements": report.formula(cache.held),
                                "bytes": report.formula(cache.held * memory.bytes_per_element),
                                "written": report.formula(cache.written), "read": report.formula(cache.read)}
    if convention is not None:
        data["convention"] = convention.as_dict(report)
    return data
