"""Keras' 'same' AveragePooling as nnspec's torch export writes it (torch_modules.Pool): the mean of the
cells really there, i.e. the pooled sum of the zero-padded input divided by the pooled count of real
cells:

    Div(AveragePool(Pad(x, p)), AveragePool(Pad(ones, p)))

where `ones` is a constant of ones of shape (1, 1, *x's spatial sizes), or `torch.ones_like(x[:1, :1])`
(a ConstantOfShape of the Shape of a Slice of x's batch and channels). The count side is found before
the loop (find_same_average_pools) and only its shapes are followed (it holds no activation); at the Div,
the ZeroPadding and 'valid' pooling written for the data side become one AveragePooling with
`padding: same`, when both sides pad and pool alike and the pads give Keras' 'same' output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sympy

from analyzer.importers.onnx.patterns import scalar
from analyzer.importers.onnx.values import Data, objects

if TYPE_CHECKING:
    from analyzer.importers.onnx.context import ImportContext

CHAIN_OPS = {"Slice", "Shape", "ConstantOfShape", "Cast", "Identity"}


def find_same_average_pools(imp: ImportContext) -> None:
    for div in imp.graph.node:
        if div.op_type != "Div" or len(div.input) != 2:
            continue
        sum_pool, count_pool = (imp.producers.get(n) for n in div.input)
        if not all(p is not None and p.op_type == "AveragePool" for p in (sum_pool, count_pool)):
            continue
        sum_pad, count_pad = (imp.producers.get(p.input[0]) for p in (sum_pool, count_pool))
        if not all(p is not None and p.op_type == "Pad" for p in (sum_pad, count_pad)):
            continue
        if any(imp.consumers[n] != 1 for n in (count_pool.output[0], count_pad.output[0])):
            continue
        chain = [count_pad, count_pool]
        name = count_pad.input[0]
        while (node := imp.producers.get(name)) is not None and node.op_type in CHAIN_OPS:
            if any(imp.consumers[o] != len(imp.consumer_nodes.get(o, [])) or
                   any(c.output[0] not in {n.output[0] for n in chain} for c in imp.consumer_nodes.get(o, []))
                   for o in node.output):
                break  # read by something else too: not the count's alone
            chain.append(node)
            name = node.input[0]
        for node in chain:
            imp.claimed[node.output[0]] = count_step
        imp.claimed[div.output[0]] = same_average


def count_shape(imp: ImportContext, name: str) -> tuple[list[Any], float | None, list[Any] | None]:
    """(dims, the one value every entry has or None, pads) of a tensor on the count side."""
    if name in imp.masks:
        return imp.masks[name]
    value = imp.value(name)
    if isinstance(value, Data):
        return value.onnx_shape(), None, None
    array = imp.const(name)
    fill = None
    if array.dtype != object and array.size and (array == array.reshape(-1)[0]).all():
        fill = float(array.reshape(-1)[0])
    return [sympy.Integer(d) for d in array.shape], fill, None


def count_step(imp: ImportContext) -> None:
    """A node of the count side: only its shape is followed."""
    node = imp.node
    op = node.op_type
    if op in ("Cast", "Identity", "AveragePool"):
        imp.masks[node.output[0]] = count_shape(imp, node.input[0])
    elif op == "Shape":
        dims, _, _ = count_shape(imp, node.input[0])
        imp.set_const(objects(imp.np, dims))
    elif op == "ConstantOfShape":
        dims = [sympy.sympify(d) for d in imp.const(node.input[0], "shape").reshape(-1)]
        attrs = imp.attrs()
        fill = float(imp.numpy_helper.to_array(attrs["value"]).reshape(-1)[0]) if "value" in attrs else 0.0
        imp.masks[node.output[0]] = (dims, fill, None)
    elif op == "Slice":
        dims, fill, _ = count_shape(imp, node.input[0])
        dims = list(dims)
        starts, ends = (imp.const(n, "bounds").reshape(-1) for n in node.input[1:3])
        axes = list(range(len(starts)))
        if imp.optional_input(3):
            axes = [int(a) % len(dims) for a in imp.const(node.input[3], "axes").reshape(-1)]
        if imp.optional_input(4) and any(int(s) != 1 for s in imp.const(node.input[4], "steps").reshape(-1)):
            raise imp.error("a Slice with steps on the count side of a 'same' average pooling")
        for start, end, axis in zip(starts, ends, axes, strict=True):
            start, end = sympy.sympify(start), sympy.sympify(end)
            if not (start == 0 and end.is_Integer and 0 < end <= 2**62):
                raise imp.error("a Slice on the count side of a 'same' average pooling that is not x[:n]")
            dims[axis] = sympy.Min(dims[axis], end) if not (dims[axis] - end).is_nonnegative else end
        imp.masks[node.output[0]] = (dims, fill, None)
    elif op == "Pad":
        dims, fill, _ = count_shape(imp, node.input[0])
        imp.masks[node.output[0]] = (dims, fill, pads_of(imp, node))
    else:
        raise imp.error(f"internal: {op} on the count side of a 'same' average pooling")


def pads_of(imp: ImportContext, pad: Any) -> list[Any] | None:
    """The pads of a zero Pad of every axis (no `axes` input), else None."""
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in pad.attribute}
    mode = attrs.get("mode", b"constant")
    if (mode.decode() if isinstance(mode, bytes) else mode) != "constant" or (len(pad.input) > 3 and pad.input[3]):
        return None
    if len(pad.input) > 2 and pad.input[2] and scalar(imp, pad.input[2]) != 0.0:
        return None
    raw = imp.const(pad.input[1], "pads").reshape(-1) if len(pad.input) > 1 and pad.input[1] else attrs["pads"]
    return [sympy.sympify(p) for p in raw]


def pool_attributes(node: Any) -> dict[str, Any]:
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    attrs.pop("count_include_pad", None)  # no pads on the pool itself (checked): counting them changes nothing
    return {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in attrs.items()}


def same_sizes(imp: ImportContext, a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Equal sizes: identical expressions, or (floors and maxima of symbolic sizes) equal at the defaults
    and at the next 64 values of every symbol, which covers every remainder of a stride up to 64."""
    if len(a) != len(b):
        return False
    differences = [sympy.expand(x - y) for x, y in zip(a, b, strict=True)]
    if all(d == 0 for d in differences):
        return True
    defaults = imp.defaults()
    for step in range(65):
        values = {s: v + step for s, v in defaults.items()}
        if any(sympy.sympify(d).subs(values) != 0 for d in differences):
            return False
    return True


def same_average(imp: ImportContext) -> None:
    div = imp.node
    sum_pool = imp.producers[div.input[0]]
    sum_pad = imp.producers[sum_pool.input[0]]
    why = "the export's 'same' AveragePooling arithmetic (pooled sum over pooled count of real cells)"
    attrs = pool_attributes(sum_pool)
    if attrs != pool_attributes(imp.producers[div.input[1]]) or any(attrs.get("pads", [0])) or attrs.get("ceil_mode", 0):
        raise imp.error(f"{why}: the two AveragePools differ, or pad themselves")
    x = imp.value(sum_pad.input[0])
    dims, fill, pads = imp.masks[div.input[1]]
    sum_pads = pads_of(imp, sum_pad)
    if not isinstance(x, Data) or pads is None or sum_pads is None or len(pads) != len(sum_pads) or \
            any(sympy.expand(p - q) != 0 for p, q in zip(pads, sum_pads, strict=True)):
        raise imp.error(f"{why}: the sum and the count are not padded alike, with zeros")
    spatial = x.onnx_shape()[2:]
    if fill != 1.0 or dims[:2] != [1, 1] or not same_sizes(imp, tuple(dims[2:]), tuple(spatial)):
        raise imp.error(f"{why}: the count is not pooled from ones of the input's spatial shape")
    data = imp.data(div.input[0])
    pool = imp.doc.layer(data.layer)
    pad = imp.doc.layer(pool.inputs[0]) if pool.inputs else None
    if pool.type not in ("AveragePooling1D", "AveragePooling2D") or pool.fields.get("padding", "valid") != "valid" \
            or pad is None or not pad.type.startswith("ZeroPadding") or imp.spec_uses[pad.name] != 1:
        raise imp.error(f"{why}: the sum is not a zero padding then a 'valid' average pooling")
    before = imp.shapes[pool.name]
    pool.inputs = list(pad.inputs or [])
    pool.fields["padding"] = "same"
    pool.comment = "ONNX Pad, AveragePool, Div by the pooled count of real cells"
    imp.doc.layers = [d for d in imp.doc.layers if d.name != pad.name]
    if not same_sizes(imp, imp.refresh(pool), before):
        raise imp.error(f"{why}: the pads do not give Keras' 'same' output size")
    imp.set_output(data)

