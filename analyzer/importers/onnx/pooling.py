"""Pooling: MaxPool, AveragePool, the global pools (and ReduceMean / ReduceMax over the spatial axes), Pad."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sympy

from analyzer.importers.onnx.kernels import conv_padding
from analyzer.importers.onnx.registry import handles
from analyzer.importers.onnx.values import Data, compact, norm_axis

if TYPE_CHECKING:
    from analyzer.importers.onnx.context import ImportContext


def pool(imp: ImportContext, kind: str) -> None:
    attrs = imp.attrs()
    x = imp.channels_last(imp.data(imp.node.input[0]), imp.node.op_type)
    rank = x.rank - 2
    if rank not in (1, 2):
        raise imp.error(f"{rank}-D pooling: nnspec has 1D and 2D pooling")
    kernel = list(attrs["kernel_shape"])
    strides = list(attrs.get("strides", [1] * rank))
    dilations = list(attrs.get("dilations", [1] * rank))
    if any(d != 1 for d in dilations):
        raise imp.error("pooling with dilations")
    if attrs.get("ceil_mode", 0) and any(s != 1 for s in strides):
        raise imp.error("ceil_mode pooling: Keras pools floor their output size",
                         hint="export with ceil_mode=False")
    x, padding = conv_padding(imp, x, kernel, strides, dilations, pool=kind == "Max")
    fields: dict[str, Any] = {"pool_size": compact(kernel), "strides": compact(strides)}
    if padding != "valid":
        fields["padding"] = padding
    name = imp.node_name()
    shape = imp.add_layer(f"{kind}Pooling{rank}D", name, fields, [x])
    imp.set_output(imp.same_layout(x, name, shape))


@handles("MaxPool")
def max_pool(imp: ImportContext) -> None:
    if len([o for o in imp.node.output if o]) > 1:
        raise imp.error("MaxPool with indices")
    pool(imp, "Max")


@handles("AveragePool")
def average_pool(imp: ImportContext) -> None:
    pool(imp, "Average")


def global_pool(imp: ImportContext, kind: str, keepdims: bool = True) -> None:
    x = imp.channels_last(imp.data(imp.node.input[0]), imp.node.op_type)
    rank = x.rank - 2
    if rank not in (1, 2):
        raise imp.error(f"{rank}-D global pooling: nnspec has 1D and 2D")
    name = imp.node_name()
    shape = imp.add_layer(f"Global{kind}Pooling{rank}D", name, {"keepdims": True} if keepdims else {}, [x])
    if keepdims:
        imp.set_output(imp.same_layout(x, name, shape))
    else:
        imp.set_output(Data(name, shape, (1,), 0, 2))


@handles("GlobalAveragePool")
def global_average_pool(imp: ImportContext) -> None:
    global_pool(imp, "Average")


@handles("GlobalMaxPool")
def global_max_pool(imp: ImportContext) -> None:
    global_pool(imp, "Max")


@handles("ReduceMean")
def reduce_mean(imp: ImportContext) -> None:
    reduce(imp, "Average")


@handles("ReduceMax")
def reduce_max(imp: ImportContext) -> None:
    reduce(imp, "Max")


def reduce(imp: ImportContext, kind: str) -> None:
    """A mean / max over every axis but the batch and one (the channels): global pooling."""
    x = imp.data(imp.node.input[0])
    axes = sorted(norm_axis(a, x.rank) for a in imp.axes_input(1))
    keepdims = bool(imp.attrs().get("keepdims", 1))
    rest = [a for a in range(x.rank) if a != x.batch and a not in axes]
    if x.batch in axes or len(rest) != 1 or len(axes) not in (1, 2):
        raise imp.error(f"a {imp.node.op_type} over axes {axes}: only one over all axes but the batch and "
                         "the channels (global pooling) has a spec layer")
    (channels,) = rest
    x = imp.ensure_layout(x, [*axes, channels], imp.node.op_type)
    name = imp.node_name()
    shape = imp.add_layer(f"Global{kind}Pooling{len(axes)}D", name, {"keepdims": True} if keepdims else {}, [x])
    if keepdims:
        imp.set_output(imp.same_layout(x, name, shape))
    else:
        imp.set_output(Data(name, shape, (1 if channels > x.batch else 0,), 0 if channels > x.batch else 1, 2))


@handles("Pad")
def pad(imp: ImportContext) -> None:
    x = imp.data(imp.node.input[0])
    attrs = imp.attrs()
    mode = attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    raw = imp.const(imp.node.input[1], "pads").reshape(-1) if imp.optional_input(1) else attrs["pads"]
    pads = [sympy.sympify(p) for p in raw]  # symbolic when computed from a dynamic shape
    fill = 0.0
    if imp.optional_input(2):
        fill = float(imp.const(imp.node.input[2], "value").reshape(-1)[0])
    if mode != "constant":
        raise imp.error(f"Pad in mode {mode!r}: nnspec pads with zeros")
    if imp.optional_input(3):
        axes = [norm_axis(int(a), x.rank) for a in imp.const(imp.node.input[3], "axes").reshape(-1)]
    else:
        axes = list(range(x.rank))
    half = len(pads) // 2
    per_axis = {a: (pads[i], pads[i + half]) for i, a in enumerate(axes)}
    if any(per_axis.get(a, (0, 0)) != (0, 0) for a in (0, 1)):
        raise imp.error("Pad of the batch or channel axis: nnspec pads the spatial axes of (N, C, ...)")
    rank = x.rank - 2
    if rank not in (1, 2):
        raise imp.error("Pad of a tensor that is not (N, C, L) or (N, C, H, W)")
    x = imp.channels_last(x, "Pad")
    padding = [list(per_axis.get(a, (0, 0))) for a in range(2, x.rank)]
    cuts = [[-p if p.is_Integer and p < 0 else 0 for p in pair] for pair in padding]
    if any(any(pair) for pair in cuts):  # a negative pad cuts cells off: a Cropping after the zero padding
        padding = [[p if not p.is_Integer or p > 0 else 0 for p in pair] for pair in padding]
    name = imp.node_name()
    description = f"ONNX Pad with {fill} (a copy, like zero padding)" if fill != 0 else None
    if any(any(pair) for pair in padding) or not any(any(pair) for pair in cuts):
        shape = imp.add_layer(f"ZeroPadding{rank}D", name, {"padding": padding[0] if rank == 1 else padding}, [x],
                              description)
        x = imp.same_layout(x, name, shape)
    if any(any(pair) for pair in cuts):
        name = imp.node_name(".crop") if x.layer == name else name
        shape = imp.add_layer(f"Cropping{rank}D", name, {"cropping": cuts[0] if rank == 1 else cuts}, [x],
                              "ONNX Pad by a negative amount")
        x = imp.same_layout(x, name, shape)
    imp.set_output(x)
