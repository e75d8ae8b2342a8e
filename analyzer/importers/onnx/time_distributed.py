"""Keras' TimeDistributed as nnspec's torch export writes it (torch_modules.TimeDistributed): a Reshape of
(N, T, ...) to (N*T, ...) merges the batch with time, the wrapped module runs on the frames, and a Reshape
of (N*T, ...) to (N, T, ...) splits them again. Between the two, a tensor is a frame (Data.time = T): its
ONNX batch axis is N*T, its spec shape is that of one frame, and every layer written on it is a
TimeDistributed around that layer (context.add_layer): its params once, its costs T times. The layers
are written as their own type while the file is read (a bias Add still folds into its Dense) and wrapped
at the end (importer.run)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import sympy

from analyzer.importers.onnx.values import BATCH, Const, Data

if TYPE_CHECKING:
    from analyzer.importers.onnx.context import ImportContext


def same(a: Any, b: Any) -> bool:
    return sympy.expand(sympy.sympify(a) - sympy.sympify(b)) == 0


def batch_sizes(imp: ImportContext) -> list[sympy.Expr]:
    """What the batch is in a Reshape's target: the batch symbol, or the file's one static batch size."""
    sizes = [BATCH]
    if len(imp.static_batch) == 1:
        sizes.append(sympy.Integer(next(iter(imp.static_batch))))
    return sizes


def target_entries(imp: ImportContext) -> list[sympy.Expr] | None:
    value = imp.values.get(imp.node.input[1])
    if not isinstance(value, Const) or value.opaque:
        return None
    return [sympy.sympify(e) for e in imp.const(imp.node.input[1]).reshape(-1)]


def fits(entries: list[sympy.Expr], dims: list[sympy.Expr]) -> bool:
    """Whether a Reshape's sizes are `dims` (one of them may be left to -1)."""
    if len(entries) != len(dims) or sum(1 for e in entries if e == -1) > 1:
        return False
    return all(e == -1 or same(e, d) for e, d in zip(entries, dims, strict=True))


def merge_time(imp: ImportContext) -> bool:
    """At a Reshape of (N, T, *F) to (N*T, *F): the frames of a TimeDistributed (nothing written)."""
    x = imp.values.get(imp.node.input[0])
    entries = target_entries(imp)
    if not isinstance(x, Data) or x.time is not None or x.batch != 0 or x.rank < 3 or entries is None or not entries:
        return False
    dims = x.onnx_shape()
    # a time axis of size 1 merged with a static batch is only a Reshape dropping that axis (mcldnn's (1, 1, L, C))
    if 1 not in x.axes or same(dims[1], 1) or not any(same(entries[0], b * dims[1]) for b in batch_sizes(imp)) \
            or not fits(entries[1:], dims[2:]):
        return False
    x = imp.identity(imp.data(imp.node.input[0]), "TimeDistributed")
    imp.set_output(Data(x.layer, x.shape[1:], tuple(range(1, x.rank - 1)), 0, x.rank - 1, time=x.shape[0]))
    return True


def split_time(imp: ImportContext) -> bool:
    """At a Reshape of a frame tensor (N*T, *F) to (N, T, *F): the TimeDistributed layers' output."""
    x = imp.values.get(imp.node.input[0])
    if not isinstance(x, Data) or x.time is None:
        return False
    entries = target_entries(imp)
    dims = x.onnx_shape()
    if entries is None or len(entries) != x.rank + 1 or not any(same(entries[0], b) for b in batch_sizes(imp)) \
            or not same(entries[1], x.time) or not fits(entries[2:], dims[1:]):
        raise imp.error(f"a Reshape of frames (the batch merged with a time axis of {x.time}: TimeDistributed) to "
                        f"{[str(e) for e in entries] if entries else 'an unknown shape'}, not back to (N, "
                        f"{x.time}, ...): nnspec reads only the wrapped layers' output split back")
    x = imp.identity(imp.data(imp.node.input[0]), "TimeDistributed")
    if imp.shapes[x.layer][0] != x.time or x.layer not in imp.time_distributed:
        raise imp.error("a Reshape that merges the batch with time and splits it back with no layer in between: "
                        "nothing to wrap")
    shape = imp.shapes[x.layer]
    imp.set_output(Data(x.layer, shape, tuple(range(1, len(shape) + 1)), 0, len(shape) + 1))
    return True


def keep_frames(imp: ImportContext) -> None:
    """After a node that read frames: its outputs are frames too (handlers build new Data without `time`)."""
    steps = {v.time for i in imp.node.input if isinstance(v := imp.values.get(i), Data) and v.time is not None}
    if not steps:
        return
    if len(steps) > 1:
        raise imp.error(f"reads frames of time axes {sorted(map(str, steps))} at once")
    (time,) = steps
    for out in imp.node.output:
        value = imp.values.get(out)
        if isinstance(value, Data) and value.time is None and len(value.shape) == len(imp.shapes[value.layer]) - 1 \
                and same(imp.shapes[value.layer][0], time):
            imp.values[out] = replace(value, time=time)


def write_wrapped(imp: ImportContext) -> None:
    """The layers written on frames, as the TimeDistributed around each (once nothing folds into them)."""
    for layer in imp.doc.layers:
        if layer.name in imp.time_distributed:
            layer.fields = {"layer": {"type": layer.type, **layer.fields}}
            layer.type = "TimeDistributed"
