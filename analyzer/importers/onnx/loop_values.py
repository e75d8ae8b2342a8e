"""What an unrolled loop (loops.py) holds while the importer reads it: a `Loop` per recurrent layer exported as
a Python loop, and the `Step` values of its steps. Apart from loops.py, so that the import context, which keeps
the open loops, needs none of the loop logic."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from analyzer.importers.onnx.values import Data


@dataclass
class Loop:
    kernel: Data  # xs: the input kernel's output, read one step at a time
    scope: str  # the module path of the loop's nodes (torch.onnx names them /module/.../Op)
    steps: set[int] = field(default_factory=set)
    matmuls: list[tuple[int, ...]] = field(default_factory=list)  # recurrent kernel dims, one per MatMul
    biases: list[int] = field(default_factory=list)  # sizes of the weights added inside the loop
    activations: Counter[str] = field(default_factory=Counter)
    absorbed: set[str] = field(default_factory=set)  # the nodes of `pending` entries already counted
    # (kind, ONNX tensor): other layers' outputs read at step 0 as initial states (loop_states.py)
    initial: list[tuple[str, str]] = field(default_factory=list)
    layer: Data | None = None  # once closed: the spec layer's output 0
    type_name: str = ""  # once closed: SimpleRNN, GRU or LSTM
    units: int = 0


@dataclass(frozen=True)
class Step:
    """A value of one step of an unrolled loop: (N, width), or (N, 1, width) once unsqueezed for a stack.
    `loop` is None for a product of the zero initial state, until it meets a value of the loop;
    `pending` holds what such a value computed: (node name, "matmul", kernel dims) and (node name, "bias",
    size) entries, counted once each when the value meets the loop."""

    loop: int | None
    width: Any
    last: int  # the latest step it depends on
    stacked: bool = False
    pending: tuple[tuple[str, str, Any], ...] = ()
