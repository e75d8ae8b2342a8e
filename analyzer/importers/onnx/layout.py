"""Ops that move or select data: Transpose (free: it only changes the layout), Reshape, Flatten,
Squeeze, Unsqueeze, Concat, Slice (a cropping), Gather (an embedding lookup or a last step)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import sympy

from analyzer.importers.onnx.bidirectional import merge_directions
from analyzer.importers.onnx.loops import start_step
from analyzer.importers.onnx.patterns import group_normalization
from analyzer.importers.onnx.recurrent import embedding, last_step
from analyzer.importers.onnx.registry import handles
from analyzer.importers.onnx.repeats import up_sample
from analyzer.importers.onnx.time_distributed import merge_time, split_time
from analyzer.importers.onnx.values import BATCH, Const, Data, norm_axis, order_kept
from analyzer.symbolic import evaluate, product

if TYPE_CHECKING:
    from analyzer.importers.onnx.context import ImportContext


@handles("Gather")
def gather(imp: ImportContext) -> None:
    source = imp.value(imp.node.input[0])
    axis = imp.attrs().get("axis", 0)
    if isinstance(source, Const) and isinstance(imp.value(imp.node.input[1]), Const):
        data, indices = imp.const(imp.node.input[0]), imp.const(imp.node.input[1], "indices")
        imp.set_const(imp.np.take(data, indices.astype(int) if indices.dtype != object else indices, axis=axis))
        return
    if isinstance(source, Const):
        embedding(imp, source)
        return
    if start_step(imp, imp.data(imp.node.input[0], reversed_ok=True), axis):
        return
    last_step(imp, imp.data(imp.node.input[0]), axis)


@handles("Unsqueeze")
def unsqueeze(imp: ImportContext) -> None:
    axes = imp.axes_input(1)
    source = imp.value(imp.node.input[0])
    if isinstance(source, Const):
        array = imp.const(imp.node.input[0])
        for a in sorted(norm_axis(a, array.ndim + len(axes)) for a in axes):
            array = imp.np.expand_dims(array, a)
        imp.set_const(array)
        return
    x = imp.data(imp.node.input[0])
    rank = x.rank + len(axes)
    inserted = sorted(norm_axis(a, rank) for a in axes)
    mapping = [a for a in range(rank) if a not in inserted]  # old axis i -> new axis mapping[i]
    imp.set_output(Data(x.layer, x.shape, tuple(mapping[a] for a in x.axes), mapping[x.batch], rank, x.sequence_of))


@handles("Squeeze")
def squeeze(imp: ImportContext) -> None:
    source = imp.value(imp.node.input[0])
    if isinstance(source, Const):
        array = imp.const(imp.node.input[0])
        axes = imp.axes_input(1, required=False)
        imp.set_const(imp.np.squeeze(array, axis=tuple(axes)) if axes else imp.np.squeeze(array))
        return
    x = imp.data(imp.node.input[0])
    axes = imp.axes_input(1, required=False)
    dims = x.onnx_shape()
    removed = sorted(norm_axis(a, x.rank) for a in axes) if axes else [a for a, d in enumerate(dims) if d == 1 and a != x.batch]
    if x.batch in removed:
        raise imp.error("squeezes the batch axis")
    real = [a for a in removed if a in x.axes]
    if real:  # a spec axis of size 1 goes away: a Reshape
        keep = [a for a in x.axes if a not in real]
        y = imp.ensure_layout(x, sorted(x.axes), "Squeeze") if list(x.axes) != sorted(x.axes) else x
        shape = tuple(d for d, a in zip(y.shape, y.axes, strict=False) if a not in real)
        name = imp.unique(f"{x.layer}.squeeze")
        imp.add_layer("Reshape", name, {"target_shape": list(shape)}, [y])
        x = Data(name, shape, tuple(sorted(keep)), x.batch, x.rank)
    mapping = {}
    new = 0
    for a in range(x.rank):
        if a in removed:
            continue
        mapping[a] = new
        new += 1
    imp.set_output(Data(x.layer, x.shape, tuple(mapping[a] for a in x.axes), mapping[x.batch], new, x.sequence_of))


@handles("Concat")
def concat(imp: ImportContext) -> None:
    values = [imp.value(i) for i in imp.node.input]
    axis = imp.attrs()["axis"]
    if all(isinstance(v, Const) for v in values):
        arrays = [imp.const(i) for i in imp.node.input]
        if any(a.dtype == object for a in arrays):
            arrays = [a.astype(object) for a in arrays]
        imp.set_const(imp.np.concatenate(arrays, axis=axis))
        return
    if not all(isinstance(v, Data) for v in values):
        raise imp.error("concatenates a constant with an activation tensor: no spec layer does that")
    if len(values) == 2 and any(v.reversed_axis is not None for v in values):  # a Bidirectional's concat
        forward, backward = values
        if norm_axis(axis, forward.rank) != forward.axes[-1]:
            raise imp.error("a Concat of a reversed sequence (torch's flip) along an axis other than the features")
        merge_directions(imp, forward, backward, "concat")
        return
    xs = [imp.data(i) for i in imp.node.input]
    axis = norm_axis(axis, xs[0].rank)
    if any(x.rank != xs[0].rank for x in xs):
        raise imp.error("concatenates tensors of different ranks")
    if axis == xs[0].batch:
        raise imp.error("concatenates along the batch axis")
    first = xs[0]
    if not all((x.axes, x.batch) == (first.axes, first.batch) for x in xs) or axis not in first.axes:
        xs = [imp.identity(x, "Concat") for x in xs]
        first = xs[0]
    name = imp.node_name()
    fields = {} if imp.spec_axis(first, axis) == -1 else {"axis": imp.spec_axis(first, axis)}
    shape = imp.add_layer("Concatenate", name, fields, xs)
    imp.set_output(imp.same_layout(first, name, shape))


@handles("Slice")
def slice_(imp: ImportContext) -> None:
    if not isinstance(imp.value(imp.node.input[0]), Const):
        crop(imp, imp.data(imp.node.input[0], reversed_ok=True))
        return
    array = imp.const(imp.node.input[0])
    starts = [int(v) for v in imp.const(imp.node.input[1], "starts").reshape(-1)]
    ends = [int(v) for v in imp.const(imp.node.input[2], "ends").reshape(-1)]
    axes = list(range(len(starts)))
    if imp.optional_input(3):
        axes = [int(v) for v in imp.const(imp.node.input[3], "axes").reshape(-1)]
    steps = [1] * len(starts)
    if imp.optional_input(4):
        steps = [int(v) for v in imp.const(imp.node.input[4], "steps").reshape(-1)]
    index = [slice(None)] * array.ndim
    for s, e, a, st in zip(starts, ends, axes, steps, strict=False):
        index[norm_axis(a, array.ndim)] = slice(s, None if e >= 2**62 else e, st)
    imp.set_const(array[tuple(index)])


def reverse(imp: ImportContext, x: Data, axis: int) -> None:
    """A reversal of one axis: nothing is written; the tensor is marked, for a recurrent layer to read it as
    go_backwards (a second reversal of the same axis undoes the first)."""
    if axis == x.batch or axis not in x.axes:
        raise imp.error("a reversal of the batch axis or of a size-1 axis")
    if x.reversed_axis is not None and x.reversed_axis != axis:
        raise imp.error("reverses a second axis of a tensor: only one reversed (time) axis is read")
    imp.set_output(replace(x, reversed_axis=None if x.reversed_axis == axis else axis))


def crop(imp: ImportContext, x: Data) -> None:
    """A Slice of an activation with step 1 along one or two axes: Cropping1D / Cropping2D."""
    starts = [sympy.sympify(v) for v in imp.const(imp.node.input[1], "starts").reshape(-1)]
    ends = [sympy.sympify(v) for v in imp.const(imp.node.input[2], "ends").reshape(-1)]
    axes = list(range(len(starts)))
    if imp.optional_input(3):
        axes = [norm_axis(int(a), x.rank) for a in imp.const(imp.node.input[3], "axes").reshape(-1)]
    steps = [1] * len(starts)
    if imp.optional_input(4):
        steps = [int(v) for v in imp.const(imp.node.input[4], "steps").reshape(-1)]
    dims = x.onnx_shape()
    if steps == [-1] and starts[0] in (-1, dims[axes[0]] - 1) and ends[0].is_Integer and ends[0] <= -2**62:
        reverse(imp, x, axes[0])  # x.flip(axis), as torch writes it
        return
    if x.reversed_axis is not None:
        imp.data(imp.node.input[0])  # refused: a cropping of a reversed tensor
    if any(s != 1 for s in steps):
        raise imp.error("a Slice with steps other than 1 (other than a whole reversal): no spec layer does that")
    cuts: dict[int, tuple[sympy.Expr, sympy.Expr]] = {}
    for start, end, axis in zip(starts, ends, axes, strict=True):
        n = dims[axis]
        begin = start + n if start.is_negative else start
        stop = n if end.is_Integer and end >= 2**62 else (end + n if end.is_negative else end)
        cuts[axis] = (begin, n - stop)
    cuts = {a: c for a, c in cuts.items() if c != (0, 0)}
    if x.batch in cuts:
        raise imp.error("a Slice of the batch axis")
    if not cuts:
        imp.set_output(x)
        return
    if any(a not in x.axes for a in cuts) or len(cuts) > 2 or len(x.axes) - len(cuts) < 1:
        raise imp.error("a Slice of an activation that is not a cropping of one or two axes")
    rank = len(x.axes) - 1
    if rank not in (1, 2):
        raise imp.error(f"a Slice of a rank-{len(x.axes)} activation: nnspec has Cropping1D and Cropping2D")
    others = [a for a in x.axes if a not in cuts]
    leading = [a for a in x.axes if a in cuts] + others[: rank - len(cuts)]
    x = imp.ensure_layout(x, [*leading, *others[rank - len(cuts):]], "Slice")
    cropping = [list(cuts.get(a, (0, 0))) for a in leading]
    name = imp.node_name()
    shape = imp.add_layer(f"Cropping{rank}D", name, {"cropping": cropping[0] if rank == 1 else cropping}, [x])
    imp.set_output(imp.same_layout(x, name, shape))


@handles("Identity", "Cast", "Dropout")
def pass_through(imp: ImportContext) -> None:
    imp.set_output(imp.value(imp.node.input[0]))


@handles("Transpose")
def transpose(imp: ImportContext) -> None:
    source = imp.value(imp.node.input[0])
    perm = imp.attrs().get("perm")
    if isinstance(source, Const):
        imp.set_const(imp.np.transpose(imp.const(imp.node.input[0]), perm))
        return
    x = imp.data(imp.node.input[0], reversed_ok=True)
    perm = [norm_axis(int(p), x.rank) for p in perm] if perm is not None else list(reversed(range(x.rank)))
    if sorted(perm) != list(range(x.rank)):
        raise imp.error(f"perm {list(imp.attrs().get('perm'))} is not a permutation of the {x.rank} axes: the ONNX "
                         "file is invalid", hint="torch.onnx (TorchScript) writes such perms for movedim with "
                         "negative dims; use non-negative dims in the model")
    inverse = [0] * x.rank
    for new, old in enumerate(perm):
        inverse[old] = new
    reversed_axis = None if x.reversed_axis is None else inverse[x.reversed_axis]
    imp.set_output(Data(x.layer, x.shape, tuple(inverse[a] for a in x.axes), inverse[x.batch], x.rank, x.sequence_of,
                        reversed_axis))


@handles("Flatten")
def flatten(imp: ImportContext) -> None:
    x = imp.data(imp.node.input[0])
    axis = norm_axis(imp.attrs().get("axis", 1), x.rank)
    if axis != 1:
        raise imp.error(f"Flatten with axis {axis} merges the batch with other axes; nnspec reads axis 1 only")
    if len(x.shape) == 1 and x.rank == 2:
        imp.set_output(x)
        return
    if not order_kept(x):
        x = imp.identity(x, "Flatten")
    name = imp.node_name()
    shape = imp.add_layer("Flatten", name, {}, [x])
    imp.set_output(Data(name, shape, (1,), 0, 2))


@handles("Reshape")
def reshape(imp: ImportContext) -> None:
    source = imp.value(imp.node.input[0])
    if isinstance(source, Data) and source.repeats:  # after a Tile: torch's repeat_interleave
        up_sample(imp, source, list(imp.const(imp.node.input[1], "shape").reshape(-1)))
        return
    if split_time(imp) or merge_time(imp) or group_normalization(imp):
        return
    x = imp.data(imp.node.input[0])
    target = list(imp.const(imp.node.input[1], "shape").reshape(-1))
    allow_zero = imp.attrs().get("allowzero", 0)
    dims = x.onnx_shape()
    batch_entry = sympy.sympify(target[0]) if target else None
    batch_ok = (batch_entry == BATCH or (batch_entry == 0 and not allow_zero) or batch_entry == -1
                or (batch_entry is not None and batch_entry.is_Integer and int(batch_entry) in imp.static_batch
                    and len(imp.static_batch) == 1))
    if not batch_ok or x.batch != 0:
        raise imp.error("a Reshape that moves or merges the batch axis; nnspec keeps the batch on axis 0")
    rest: list[Any] = []
    for i, entry in enumerate(target[1:], start=1):
        e = sympy.sympify(entry)
        if e == 0 and not allow_zero:
            e = dims[i]
        if e.has(BATCH):
            raise imp.error("a Reshape whose sizes involve the batch")
        rest.append(e)
    if batch_entry == -1 and any(e == -1 for e in rest):
        raise imp.error("a Reshape with two inferred (-1) sizes")
    if not rest:
        raise imp.error("a Reshape to the batch axis alone")
    if not order_kept(x):
        x = imp.identity(x, "Reshape")
    same = len(rest) == len(x.shape) and all(sympy.expand(a - b) == 0 for a, b in zip(rest, x.shape, strict=False))
    if same and all(e != -1 for e in rest):
        imp.set_output(x)  # the same shape: nothing to write
        return
    infer_export_size(imp, x.shape, rest)
    name = imp.node_name()
    shape = imp.add_layer("Reshape", name, {"target_shape": rest}, [x])
    imp.set_output(Data(name, shape, tuple(range(1, len(shape) + 1)), 0, len(shape) + 1))


def infer_export_size(imp: ImportContext, shape: tuple[sympy.Expr, ...], target: list[Any]) -> None:
    """A Reshape to sizes the exporter hard-coded tells the size of an open dimension at export
    (PET-CGDNN's (117, 25) after (L - 11, 1, 25): L = 128). That size becomes the symbol's
    default while importing, so the hard-coded sizes hold; lifting then rewrites them."""
    if any(not sympy.sympify(d).is_Integer or d == -1 for d in target):
        return
    total = product(shape)
    free = total.free_symbols
    if len(free) != 1 or total.has(sympy.floor, sympy.ceiling):
        return
    (symbol,) = free
    doc = next((d for d in imp.doc.symbols if d.name == symbol.name), None)
    if doc is None or doc.default == 0:
        return
    if evaluate(total, imp.defaults()) == product(int(d) for d in target):
        return
    try:
        roots = sympy.roots(sympy.Poly(sympy.expand(total - product(int(d) for d in target)), symbol))
    except sympy.PolynomialError:
        return
    sizes = [int(r) for r in roots if r.is_Integer and r > 0]
    if len(sizes) == 1:
        imp.notes.append(f"{symbol.name} = {sizes[0]} at export (from the hard-coded Reshape of node "
                          f"'{imp.node.name}'): the default while converting")
        doc.default = sizes[0]
