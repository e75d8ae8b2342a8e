"""ONNX models -> spec documents (needs the optional `onnx` package, imported here only).

One module per op family, each registering a small handler per op in registry.HANDLERS:
constants.py (shape arithmetic), layout.py, elementwise.py, kernels.py, pooling.py,
normalization.py, recurrent.py, repeats.py, loops.py (recurrent layers exported as unrolled Python loops),
loop_states.py (initial and final states of recurrent layers: the spec's extra inputs and `name:1`),
patterns.py (hard_sigmoid, softsign, GroupNorm written as several nodes), same_pooling.py (the torch
export's 'same' AveragePooling arithmetic), attention.py (MultiHeadAttention's MatMuls, Softmax and reshapes),
attention_einsum.py (MultiHeadAttention with attention_axes: its Einsums), attention_common.py (what both
attention forms share), time_distributed.py (the batch merged with time: TimeDistributed);
context.py holds the state and helpers they share (the ImportContext every handler is passed), importer.py
the driver that runs them over the graph, values.py the tensor values, loop_values.py those of unrolled loops.

ONNX is channels-first with the batch on axis 0 (NCHW); specs are channels-last without the
batch. The importer does not move data: it tracks, for every activation tensor, which ONNX
axis each spec axis is (its *layout*), so

* a Transpose costs nothing and writes nothing: it only changes the layout; a model that is
  channels-last around its convolutions (Transpose, Conv, Transpose, as a Keras port is)
  gives a spec without any Permute;
* a Conv, pooling or BatchNormalization reads the channels from ONNX axis 1: their spec input
  is channels-last, and a model input that feeds them directly is declared channels-last
  ((L, C) for an ONNX (N, C, L));
* where the order of the data matters (Reshape, Flatten, MatMul's last axis, Concat, merges)
  and the layout is not the ONNX order, a Permute layer (free, like a Transpose) is written.

Axis 0 of every model input is the batch. `dim_param` dimensions become symbols (named after
the dim_param; default from --set, else DEFAULT_DYNAMIC_SIZE). Shape arithmetic (Shape,
Gather, Unsqueeze, Concat, ... on shapes, as torch.onnx writes for `x.view(x.size(0), -1)`)
is evaluated symbolically; a Reshape to sizes the exporter hard-coded is left to the lifting
step (lift.py), as for Keras.

Supported ops: Conv, ConvTranspose, Gemm, MatMul (by a weight), BatchNormalization,
LayerNormalization, InstanceNormalization, Relu, Sigmoid, Tanh, Softmax, Gelu, Elu, Selu,
LeakyRelu, HardSigmoid, Softplus, Softsign, Clip(0, 6), Exp, Log, Cos, Sin, Sqrt, Abs, Neg,
Add, Sub, Mul, Div (two activations; Add of a bias after MatMul or Conv), Reshape, Flatten,
Transpose, Squeeze, Unsqueeze, Concat, Tile + Reshape (UpSampling), Expand (RepeatVector),
MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, ReduceMean over the spatial axes, Pad (zeros, spatial;
negative: a Cropping), GRU, LSTM, RNN
(one direction), Gather (an embedding lookup, or the last step of a recurrent output),
Identity, Dropout, Cast, and constant / shape arithmetic. Anything else is refused with the
node's name and op.
"""

from __future__ import annotations

from pathlib import Path

from analyzer.importers.document import ModelImportError, SpecDocument
from analyzer.importers.onnx import (  # noqa: F401  (importing registers the handlers)
    constants,
    elementwise,
    kernels,
    layout,
    normalization,
    pooling,
    recurrent,
    repeats,
)
from analyzer.importers.onnx.importer import OnnxImporter
from analyzer.importers.symbols import ImportOptions

MAX_ONNX_BYTES = 2 * 1024**3

__all__ = ["onnx_document"]


def onnx_document(path: str | Path, options: ImportOptions | None = None) -> tuple[SpecDocument, list[str]]:
    try:
        import numpy  # noqa: F401
        import onnx
    except ImportError:
        raise ModelImportError(f"{path}: reading ONNX models needs the 'onnx' package, which is not installed",
                               hint="pip install 'nnspec[onnx]'") from None
    file = Path(path)
    try:
        if file.stat().st_size > MAX_ONNX_BYTES:
            raise ModelImportError(f"{file}: larger than 2 GiB")
        model = onnx.load(str(file), load_external_data=False)
    except FileNotFoundError:
        raise ModelImportError(f"{file}: no such file") from None
    except Exception as exc:  # onnx raises DecodeError and others for a file that is not ONNX
        raise ModelImportError(f"{file}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    return OnnxImporter(model, str(file), options or ImportOptions()).run()
