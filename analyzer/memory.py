"""Memory of one inference pass: activations per layer, weight bytes, and the
peak of live activations when each tensor is freed after its last use.

Walks the rows in graph order. While layer k runs, the live tensors are every
earlier output still needed by k or a later layer (or a model output), plus k's
own output. Model inputs count as tensors. Bytes = elements x dtype size.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from analyzer.phases import KVCache, kv_cache
from analyzer.report import Report
from analyzer.symbolic import ZERO, product

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}


@dataclass(frozen=True)
class PeakMemory:
    layer: str  # the layer running when the live set is largest (at the report's values)
    elements: sympy.Expr  # live activation elements at that moment, as a formula
    live: tuple[str, ...]  # the tensors alive then


def activation_elements(report: Report) -> dict[str, sympy.Expr]:
    """Elements of each layer's output; all outputs of a layer with several (return_state) together,
    freed after the last reader of any of them."""
    return {name: sympy.Add(*(product(shape) for shape in row.output_shapes)) for name, row in report.layers.items()}


def _layer(reference: str) -> str:
    """The layer of an input reference: `enc` for `enc:1` (an output of a layer with several)."""
    return reference.partition(":")[0]


def peak_activations(report: Report, outputs: tuple[str, ...] = ()) -> PeakMemory:
    """The largest live set at the report's symbol values, and its formula.

    The step that peaks can change with the symbols (a long input makes early
    layers dominate), so the formula is that step's, valid near these values.
    """
    names = list(report.layers)
    order = {name: i for i, name in enumerate(names)}
    last_use = {name: order[name] for name in names}
    for name, row in report.layers.items():
        for source in map(_layer, row.inputs):
            last_use[source] = max(last_use[source], order[name])
    keep = {_layer(o) for o in outputs} or {names[-1]}
    for name in keep:
        last_use[name] = len(names)
    sizes = activation_elements(report)
    values = {name: report.value(size) for name, size in sizes.items()}
    live: dict[str, None] = {}  # alive tensors in creation order; freed once past their last use
    running = 0
    best_step, best_value, best_live = names[0], -1, ()
    for k, name in enumerate(names):
        live[name] = None
        running += values[name]
        if running > best_value:
            best_step, best_value, best_live = name, running, tuple(live)
        for done in [n for n in live if last_use[n] <= k]:
            del live[done]
            running -= values[done]
    best = PeakMemory(best_step, sum((sizes[n] for n in best_live), ZERO), best_live)
    assert best is not None
    return best


def weight_bytes(report: Report, dtype: str) -> sympy.Expr:
    return report.total.params * DTYPE_BYTES[dtype]


def model_outputs(report: Report) -> tuple[str, ...]:
    """The layers no other layer reads: the model's outputs (and any dead ends, which stay alive too)."""
    read = {_layer(source) for row in report.layers.values() for source in row.inputs}
    return tuple(name for name in report.layers if name not in read)


@dataclass(frozen=True)
class MemorySummary:
    """What --dtype shows: weight bytes, the largest tensor, and the peak of live activations."""

    dtype: str
    bytes_per_element: int
    weight_bytes: sympy.Expr
    largest_layer: str  # the layer whose output tensor has the most elements (at the report's values)
    largest_elements: sympy.Expr
    peak: PeakMemory
    kv_cache: KVCache | None = None  # a model with causal attention: its key/value cache per sample (analyzer/phases.py)

    @property
    def largest_bytes(self) -> sympy.Expr:
        return self.largest_elements * self.bytes_per_element

    @property
    def inference_bytes(self) -> sympy.Expr:
        """What one forward pass holds at its peak: the weights, the key/value cache after the pass and the live
        activations (the cache's new entries are written from activations already counted in the peak, and kept)."""
        held = self.kv_cache.held if self.kv_cache is not None else 0
        return self.weight_bytes + (held + self.peak.elements) * self.bytes_per_element

    @property
    def peak_bytes(self) -> sympy.Expr:
        return self.peak.elements * self.bytes_per_element


def memory_summary(report: Report, dtype: str = "float32") -> MemorySummary | None:
    """The memory figures at the report's values; None for a report whose rows do not form the
    layer graph (a --depth grouping, where inputs name layers inside blocks)."""
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; one of {', '.join(DTYPE_BYTES)}")
    grouped = any(row.spec is None and row.type != "InputLayer" for row in report.layers.values())  # Report.grouped
    if not report.layers or grouped or any(_layer(s) not in report.layers for row in report.layers.values() for s in row.inputs):
        return None
    sizes = activation_elements(report)
    largest = max(sizes, key=lambda name: report.value(sizes[name]))  # first of equals, in graph order
    cache = kv_cache(report)
    return MemorySummary(dtype, DTYPE_BYTES[dtype], weight_bytes(report, dtype), largest, sizes[largest],
                         peak_activations(report, model_outputs(report)), cache if cache.held != 0 else None)
