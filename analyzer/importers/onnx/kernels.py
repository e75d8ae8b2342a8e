"""Kernels: Gemm and MatMul by a weight (Dense), Conv, ConvTranspose, and their padding."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from analyzer.importers.onnx.attention import multi_head_attention
from analyzer.importers.onnx.registry import handles
from analyzer.importers.onnx.values import Const, Data, compact

if TYPE_CHECKING:
    from analyzer.importers.onnx.context import ImportContext


@handles("Gemm")
def gemm(imp: ImportContext) -> None:
    attrs = imp.attrs()
    if attrs.get("transA", 0):
        raise imp.error("Gemm with transA: the activation must be the left operand, untransposed")
    x = imp.data(imp.node.input[0])
    dims = imp.const_dims(imp.node.input[1])
    units = dims[0] if attrs.get("transB", 0) else dims[1]
    x = imp.identity(x, "Gemm")
    name = imp.node_name()
    fields: dict[str, Any] = {"units": units}
    if not imp.optional_input(2):
        fields["use_bias"] = False
    shape = imp.add_layer("Dense", name, fields, [x])
    if attrs.get("alpha", 1.0) != 1.0 or (imp.optional_input(2) and attrs.get("beta", 1.0) != 1.0):
        imp.notes.append(f"Gemm '{imp.node.name}': alpha / beta scaling is not counted")
    imp.set_output(Data(name, shape, (1,), 0, 2))


@handles("MatMul")
def mat_mul(imp: ImportContext) -> None:
    a, b = imp.value(imp.node.input[0]), imp.value(imp.node.input[1])
    if isinstance(a, Const) or not isinstance(b, Const):
        raise imp.error("MatMul of two activation tensors (as in attention) or of a weight by an activation: "
                         "no spec layer but Dense (activation x weight) is read",
                         hint="attention is read only whole, as nnspec's torch export writes MultiHeadAttention "
                              "(docs/importers.md#onnx); else write it in the spec")
    if multi_head_attention(imp):  # a query, key or value projection: the whole block is one layer
        return
    x = imp.data(imp.node.input[0], reversed_ok=True)
    reversed_axis = x.reversed_axis  # the input kernel of a loop over a flipped sequence (go_backwards)
    dims = b.dims
    if len(dims) != 2:
        raise imp.error(f"MatMul by a weight of rank {len(dims)}; Dense takes a matrix")
    last = x.rank - 1
    if last not in x.axes:
        raise imp.error("MatMul over a size-1 axis")
    wanted = [a for a in x.axes if a != last] + [last]
    x = imp.ensure_layout(x, wanted, "MatMul")
    name = imp.node_name()
    shape = imp.add_layer("Dense", name, {"units": dims[1], "use_bias": False}, [x])
    imp.bias_slots[imp.node.output[0]] = (name, last, "bias")
    if reversed_axis is not None and reversed_axis == last:
        raise imp.error("a MatMul over a reversed axis")
    imp.set_output(replace(imp.same_layout(x, name, shape), reversed_axis=reversed_axis))


def conv_padding(imp: ImportContext, x: Data, kernel: list[int], strides: list[int], dilations: list[int],
                 pool: bool = False) -> tuple[Data, str]:
    """'valid' or 'same' (when the ONNX pads give Keras' 'same' output at every size), or a
    ZeroPadding layer then 'valid'."""
    attrs = imp.attrs()
    rank = len(kernel)
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        return x, "same"
    pads = list(attrs.get("pads", [0] * (2 * rank)))
    if auto == "VALID" or not any(pads):
        return x, "valid"
    begins, ends = pads[:rank], pads[rank:]
    if all(b == e and 2 * b == d * (k - 1) for b, e, k, d in zip(begins, ends, kernel, dilations, strict=False)):
        return x, "same"
    if rank not in (1, 2):
        raise imp.error(f"explicit padding {pads} of a {rank}-D kernel: nnspec has ZeroPadding1D/2D only")
    name = imp.node_name(".pad")
    padding = [[b, e] for b, e in zip(begins, ends, strict=False)]
    shape = imp.add_layer(f"ZeroPadding{rank}D", name, {"padding": padding[0] if rank == 1 else padding}, [x],
                           description="explicit ONNX pads" + (" (zeros here; the pool pads with -inf)" if pool else ""))
    return imp.same_layout(x, name, shape), "valid"


@handles("Conv")
def conv(imp: ImportContext) -> None:
    attrs = imp.attrs()
    weight = imp.const_dims(imp.node.input[1])
    rank = len(weight) - 2
    if rank not in (1, 2, 3):
        raise imp.error(f"a {rank}-D convolution: nnspec has Conv1D, Conv2D and Conv3D")
    x = imp.channels_last(imp.data(imp.node.input[0]), "Conv")
    kernel = list(attrs.get("kernel_shape", weight[2:]))
    strides = list(attrs.get("strides", [1] * rank))
    dilations = list(attrs.get("dilations", [1] * rank))
    groups = attrs.get("group", 1)
    x, padding = conv_padding(imp, x, kernel, strides, dilations)
    fields = kernel_fields(weight[0], kernel, strides, padding, dilations)
    if groups != 1:
        fields["groups"] = groups
    if not imp.optional_input(2):
        fields["use_bias"] = False
    name = imp.node_name()
    shape = imp.add_layer(f"Conv{rank}D", name, fields, [x])
    if not imp.optional_input(2):
        imp.bias_slots[imp.node.output[0]] = (name, 1, "bias")
    imp.set_output(imp.same_layout(x, name, shape))


@handles("ConvTranspose")
def conv_transpose(imp: ImportContext) -> None:
    attrs = imp.attrs()
    weight = imp.const_dims(imp.node.input[1])
    rank = len(weight) - 2
    if rank not in (1, 2):
        raise imp.error(f"a {rank}-D transposed convolution: nnspec has Conv1DTranspose and Conv2DTranspose")
    if attrs.get("group", 1) != 1:
        raise imp.error("a grouped transposed convolution: nnspec's Conv1D/2DTranspose have no groups")
    if "output_shape" in attrs:
        raise imp.error("ConvTranspose with output_shape: give pads and output_padding instead")
    x = imp.channels_last(imp.data(imp.node.input[0]), "ConvTranspose")
    kernel = list(attrs.get("kernel_shape", weight[2:]))
    strides = list(attrs.get("strides", [1] * rank))
    dilations = list(attrs.get("dilations", [1] * rank))
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    out_pad = list(attrs.get("output_padding", [0] * rank))
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        padding, paddings = "same", None
    else:
        pads = list(attrs.get("pads", [0] * (2 * rank)))
        extra = [d * (k - 1) + 1 - (pads[i] + pads[i + rank]) + out_pad[i]
                 for i, (k, d) in enumerate(zip(kernel, dilations, strict=False))]  # out = (n - 1)s + extra
        spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilations, strict=False)]
        if all(e == s for e, s in zip(extra, strides, strict=False)):
            padding, paddings = "same", None
        elif all(0 <= e - span < s for e, span, s in zip(extra, spans, strides, strict=False)):
            padding, paddings = "valid", [e - span for e, span in zip(extra, spans, strict=False)]
        elif all(0 <= e - span % 2 < s for e, span, s in zip(extra, spans, strides, strict=False)):
            padding, paddings = "same", [e - span % 2 for e, span in zip(extra, spans, strict=False)]
        else:
            raise imp.error(f"pads {pads} with output_padding {out_pad}: no Keras padding gives that output size")
    fields = kernel_fields(weight[1], kernel, strides, padding, dilations)
    if paddings is not None:
        fields["output_padding"] = compact(paddings)
    if not imp.optional_input(2):
        fields["use_bias"] = False
    name = imp.node_name()
    shape = imp.add_layer(f"Conv{rank}DTranspose", name, fields, [x])
    imp.set_output(imp.same_layout(x, name, shape))


def kernel_fields(filters: Any, kernel: list[Any], strides: list[Any], padding: str, dilations: list[Any]) -> dict[str, Any]:
    """The fields a Conv / ConvTranspose layer writes, leaving out Keras' defaults (stride 1, valid, dilation 1)."""
    fields: dict[str, Any] = {"filters": filters, "kernel_size": compact(kernel)}
    if any(s != 1 for s in strides):
        fields["strides"] = compact(strides)
    if padding != "valid":
        fields["padding"] = padding
    if any(d != 1 for d in dilations):
        fields["dilation_rate"] = compact(dilations)
    return fields
