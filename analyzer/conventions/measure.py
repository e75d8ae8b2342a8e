"""Run the real counters on a torch model: what the profiles must reproduce.

Used by the cross-check suite (tests/crosscheck/test_profiles.py) and by
docs/why_counters_disagree.py; needs the `crosscheck` extra (torch 2.13.0, thop,
ptflops, fvcore). Frameworks are imported inside the functions, so importing
`analyzer.conventions` never imports them (this module is not imported there).

Each tool is called the way its README shows, at batch 1, on a fresh model in eval
mode, and reports a total plus a count per top-level module (one per spec layer):

* torch:   `FlopCounterMode.get_total_flops()`; per module `get_flop_counts()`.
* thop:    `thop.profile(..., ret_layer_info=True)`.
* ptflops: `get_model_complexity_info(..., backend='pytorch')` for the total; per
  module, the same engine run by hand (`add_flops_counting_methods`, patched
  functionals), each functional count charged to the top-level module running it.
* fvcore:  `FlopCountAnalysis(...).total()`, `.by_module()`, `.unsupported_ops(name)`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TOOLS = ("torch", "thop", "ptflops", "fvcore")

# fvcore reports these as unsupported, but they move data and do no arithmetic: nnspec
# does not call a layer "skipped" for them.
NO_ARITHMETIC_OPS = frozenset({"aten::movedim", "aten::flip", "aten::repeat_interleave", "aten::expand_as",
                               "aten::pad", "aten::ones_like", "aten::stack", "aten::embedding"})


@dataclass
class Measurement:
    tool: str
    total: int
    layers: dict[str, int]  # top-level module (spec layer attribute) -> its count
    unsupported: dict[str, dict[str, int]] = field(default_factory=dict)  # fvcore: layer -> {op: calls}


def example_inputs(model: Any, shapes: dict[str, tuple[int, ...]], batch: int = 1, seed: int = 0) -> list[Any]:
    """Random inputs in the model's input order; `shapes` maps each input attribute to its shape (no batch)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    # Positive values keep log / sqrt finite; the counts do not depend on the values.
    return [torch.rand(batch, *shapes[name], generator=generator) + 0.5 for name in model.spec_inputs]


def _layers(model: Any) -> list[str]:
    return [name for name, _ in model.named_children()]


def measure_torch(model: Any, inputs: list[Any]) -> Measurement:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*inputs)
    counts = counter.get_flop_counts()
    prefix = type(model).__name__
    layers = {name: int(sum(counts.get(f"{prefix}.{name}", {}).values())) for name in _layers(model)}
    return Measurement("torch", int(counter.get_total_flops()), layers)


def measure_thop(model: Any, inputs: list[Any]) -> Measurement:
    from thop import profile

    with contextlib.redirect_stdout(io.StringIO()):
        total, _, info = profile(model, inputs=tuple(inputs), verbose=False, ret_layer_info=True)
    layers = {name: int(info[name][0]) if name in info else 0 for name in _layers(model)}
    return Measurement("thop", int(total), layers)


def measure_ptflops(model: Any, inputs: list[Any]) -> Measurement:
    from ptflops import get_model_complexity_info

    def constructor(_: Any) -> Any:
        if len(inputs) == 1:
            return inputs[0]
        return dict(zip(model.spec_inputs, inputs, strict=True))

    res = tuple(inputs[0].shape[1:])
    with contextlib.redirect_stdout(io.StringIO()):
        total, _ = get_model_complexity_info(model, res, input_constructor=constructor, as_strings=False,
                                             backend="pytorch", print_per_layer_stat=False, verbose=False)
    return Measurement("ptflops", int(total), _ptflops_per_layer(model, inputs))


def _ptflops_per_layer(model: Any, inputs: list[Any]) -> dict[str, int]:
    import torch
    from ptflops import pytorch_engine as engine

    collector: list[int] = []
    running: list[str] = []
    functional: dict[str, int] = dict.fromkeys(_layers(model), 0)
    handles = []
    for name, child in model.named_children():
        def before(_module: Any, _args: Any, name: str = name) -> None:
            running.append(name)
            collector.clear()

        def after(_module: Any, _args: Any, _out: Any, name: str = name) -> None:
            functional[name] += int(sum(collector))
            collector.clear()
            running.pop()

        handles += [child.register_forward_pre_hook(before), child.register_forward_hook(after)]
    engine.add_flops_counting_methods(model)
    model.eval()
    model.start_flops_count(ost=io.StringIO(), verbose=False, ignore_list=[])
    engine.patch_functional(collector)
    engine.patch_tensor_ops(collector)
    try:
        with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            model(*inputs)
        per_layer = {}
        for name, child in model.named_children():
            per_layer[name] = int(sum(getattr(m, "__flops__", 0) for m in child.modules()
                                      if engine.is_supported_instance(m))) + functional[name]
    finally:
        engine.unpatch_functional()
        engine.unpatch_tensor_ops()
        model.stop_flops_count()
        for handle in handles:
            handle.remove()
    return per_layer


def measure_fvcore(model: Any, inputs: list[Any]) -> Measurement:
    """The total and per-module counts of a plain FlopCountAnalysis; `unsupported` lists, per layer, the
    unsupported ops that do tensor arithmetic (fvcore also lists 0-dim shape arithmetic traced from
    `x.shape`, and data movement such as movedim: both cost nothing in any count)."""
    from fvcore.nn import FlopCountAnalysis

    class TensorArithmetic(FlopCountAnalysis):  # type: ignore[misc]
        def _should_ignore_node(self, node: Any) -> bool:
            if super()._should_ignore_node(node):
                return True
            outputs = list(node.outputs())
            return all(not o.isCompleteTensor() or len(o.type().sizes()) == 0 for o in outputs)

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    analysis = FlopCountAnalysis(model, tuple(inputs))
    arithmetic = TensorArithmetic(model, tuple(inputs))
    for a in (analysis, arithmetic):
        a.unsupported_ops_warnings(False)
        a.uncalled_modules_warnings(False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        total = int(analysis.total())
        by_module = analysis.by_module()
        arithmetic.total()
        unsupported = {name: {op: int(n) for op, n in arithmetic.unsupported_ops(name).items()
                              if op not in NO_ARITHMETIC_OPS}
                       for name in _layers(model)}
    layers = {name: int(by_module.get(name, 0)) for name in _layers(model)}
    return Measurement("fvcore", total, layers, {k: v for k, v in unsupported.items() if v})


MEASURE: dict[str, Callable[[Any, list[Any]], Measurement]] = {
    "torch": measure_torch, "thop": measure_thop, "ptflops": measure_ptflops, "fvcore": measure_fvcore,
}


def measure(tool: str, build: Callable[[], Any], inputs: list[Any]) -> Measurement:
    """`tool` on a freshly built model (the counters leave hooks and attributes behind)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MEASURE[tool](build(), inputs)
