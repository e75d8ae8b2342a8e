"""Ops that repeat an activation: Tile then Reshape (torch's `repeat_interleave`, as the export writes
UpSampling1D / 2D: Unsqueeze a size-1 axis after the axis to repeat, Tile it, Reshape the pair into one
axis) and Expand of a size-1 axis (torch's `unsqueeze(1).expand(-1, n, -1)`: RepeatVector)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import sympy

from analyzer.importers.onnx.registry import handles
from analyzer.importers.onnx.values import BATCH, Const, Data, int_or_none

if TYPE_CHECKING:
    from analyzer.importers.onnx.context import ImportContext


@handles("Tile")
def tile(imp: ImportContext) -> None:
    source = imp.value(imp.node.input[0])
    repeats = [sympy.sympify(r) for r in imp.const(imp.node.input[1], "repeats").reshape(-1)]
    if isinstance(source, Const):
        counts = [int_or_none(r) for r in repeats]
        if any(c is None for c in counts):
            imp.set_output(Const(source.dims, opaque="a Tile by symbolic repeats"))
            return
        imp.set_const(imp.np.tile(imp.const(imp.node.input[0]), counts))
        return
    x = imp.data(imp.node.input[0])
    if len(repeats) != x.rank:
        raise imp.error(f"{len(repeats)} repeats for a tensor of rank {x.rank}")
    tiled = tuple((axis, r) for axis, r in enumerate(repeats) if r != 1)
    if not tiled:  # repeat_interleave(1): the same tensor
        imp.set_output(x)
        return
    for axis, _ in tiled:
        if axis not in x.phantoms:
            raise imp.error(f"repeats ONNX axis {axis}, which holds data: only a Tile of a size-1 axis, merged by a "
                            "Reshape into the axis before it (torch's repeat_interleave: an UpSampling), is read")
    # nothing is written yet: the Reshape that merges the repeated axis decides which layer this is
    imp.set_output(replace(x, repeats=tiled, sequence_of=None))


def up_sample(imp: ImportContext, x: Data, target: list[Any]) -> None:
    """Reshape(Tile(Unsqueeze(x, a + 1), r on axis a + 1)) merging axes a and a + 1: every cell of axis a
    repeated r times in place, which is Keras' UpSampling (nearest) along that axis."""
    if len(x.repeats) != 1 or x.batch != 0:
        raise imp.error("a Reshape of a Tile of several axes (or with the batch moved): not one repeat_interleave")
    ((axis, size),) = x.repeats
    dims = x.onnx_shape()
    repeated = axis - 1
    if repeated not in x.axes:
        raise imp.error(f"a Reshape after a Tile of ONNX axis {axis}: the axis before it has size 1 or is the batch")
    merged = [*dims[:repeated], dims[repeated] * size, *dims[axis + 1:]]
    allow_zero = imp.attrs().get("allowzero", 0)
    entries = [sympy.sympify(e) for e in target]
    resolved = [dims[i] if e == 0 and not allow_zero else e for i, e in enumerate(entries)]
    batch_ok = resolved and (resolved[0] in (BATCH, -1) or (resolved[0].is_Integer and len(imp.static_batch) == 1
                                                           and int(resolved[0]) in imp.static_batch))
    fits = (len(resolved) == len(merged) and sum(1 for e in resolved if e == -1) <= 1
            and all(e == -1 or sympy.expand(e - m) == 0 for e, m in zip(resolved[1:], merged[1:], strict=True)))
    if not (batch_ok and fits):
        raise imp.error(f"a Reshape of a Tile (repeats {size} on ONNX axis {axis}) to {[str(e) for e in entries]}, "
                        f"not to {[str(m) for m in merged]}: only the merge of the repeated axis into the axis "
                        "before it (torch's repeat_interleave) is read")
    position = x.axes.index(repeated)
    rank = len(x.shape)
    if rank == 2 and position == 0:
        type_name, fields = "UpSampling1D", {"size": size}
    elif rank == 3 and position in (0, 1):
        type_name, fields = "UpSampling2D", {"size": [size, 1] if position == 0 else [1, size]}
    else:
        raise imp.error(f"repeats axis {position} of a rank-{rank} spec tensor: UpSampling1D / 2D repeat the "
                        "one or two axes before the channels")
    name = imp.node_name()
    shape = imp.add_layer(type_name, name, fields, [replace(x, repeats=())],
                          description="repeat_interleave in the ONNX file (Tile, Reshape)")
    imp.set_output(Data(name, shape, tuple(a - 1 if a > axis else a for a in x.axes), 0, x.rank - 1))


@handles("Expand")
def expand(imp: ImportContext) -> None:
    if isinstance(imp.value(imp.node.input[0]), Data):
        repeat_vector(imp, imp.data(imp.node.input[0]))
        return
    array = imp.const(imp.node.input[0])
    shape = [int_or_none(d) for d in imp.const(imp.node.input[1], "shape").reshape(-1)]
    if any(d is None for d in shape):
        imp.set_output(Const((len(shape),), opaque="an Expand to a symbolic shape"))
        return
    imp.set_const(array * imp.np.ones(shape, dtype=array.dtype))


def repeat_vector(imp: ImportContext, x: Data) -> None:
    """Expand of (N, 1, F) (a vector with a size-1 axis the spec lacks) to (N, n, F): RepeatVector(n)."""
    target = [sympy.sympify(d) for d in imp.const(imp.node.input[1], "shape").reshape(-1)]
    dims = x.onnx_shape()
    if len(target) != x.rank:
        raise imp.error(f"an Expand from rank {x.rank} to rank {len(target)}: only RepeatVector's (N, 1, F) -> "
                        "(N, n, F) is read")
    grown = [a for a, (d, t) in enumerate(zip(dims, target, strict=True)) if t != 1 and sympy.expand(t - d) != 0]
    if len(grown) != 1 or grown[0] not in x.phantoms or len(x.shape) != 1 or (target[grown[0]] > 1) is not sympy.true:
        raise imp.error(f"expands an activation tensor of shape {[str(d) for d in dims]} to "
                        f"{[str(t) for t in target]}: only RepeatVector's (N, 1, F) -> (N, n, F) is read")
    (axis,) = grown
    name = imp.node_name()
    shape = imp.add_layer("RepeatVector", name, {"n": target[axis]}, [x])
    imp.set_output(Data(name, shape, (axis, x.axes[0]), x.batch, x.rank))
