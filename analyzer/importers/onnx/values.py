"""The importer's values: every ONNX tensor is an activation (`Data`, held by a spec layer) or a
constant (`Const`: a weight, or shape arithmetic evaluated here); plus the small helpers on them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy

from analyzer.importers.document import size_text
from analyzer.symbolic import floor_div

BATCH = sympy.Symbol("batch__", integer=True, positive=True)  # never written into a spec


@dataclass(frozen=True)
class Data:
    """An activation tensor: the spec layer (or input) that holds it, its spec shape, and its layout:
    spec axis i is ONNX axis axes[i]; the batch is ONNX axis `batch`; any other ONNX axis has size 1
    and is not in the spec (a 'phantom' axis, e.g. from Unsqueeze)."""

    layer: str
    shape: tuple[sympy.Expr, ...]
    axes: tuple[int, ...]
    batch: int
    rank: int
    sequence_of: str | None = None  # the recurrent layer whose per-step output this is (return_sequences)
    # an ONNX axis whose order the ONNX tensor has reversed (torch's flip, a Slice with step -1) against the
    # spec layer's output: only a recurrent layer reads such a tensor (as go_backwards)
    reversed_axis: int | None = None
    # (ONNX axis, size): size-1 axes the spec lacks that a Tile repeated (torch's repeat_interleave), waiting for
    # the Reshape that merges each into the axis before it (an UpSampling, repeats.py); nothing else reads them
    repeats: tuple[tuple[int, Any], ...] = ()
    # the time axis (its size) merged into the ONNX batch axis: this tensor is the frames of a TimeDistributed,
    # its spec shape one frame's (time_distributed.py)
    time: Any = None

    def onnx_shape(self) -> list[sympy.Expr]:
        dims: list[sympy.Expr] = [sympy.Integer(1)] * self.rank
        dims[self.batch] = BATCH
        for d, a in zip(self.shape, self.axes, strict=False):
            dims[a] = d
        for a, size in self.repeats:
            dims[a] = sympy.sympify(size)
        return dims

    @property
    def phantoms(self) -> list[int]:
        return [a for a in range(self.rank) if a != self.batch and a not in self.axes]

    def is_identity(self) -> bool:
        return self.batch == 0 and self.axes == tuple(range(1, self.rank))


@dataclass(frozen=True)
class Const:
    """A constant: an initializer, a Constant, or shape arithmetic (entries may be sympy expressions).
    `value` is None for an initializer not yet read (only its `dims` are known)."""

    dims: tuple[int, ...]
    value: Any = None  # a numpy array (dtype object for symbolic entries)
    tensor: Any = None  # the TensorProto, read on demand
    opaque: str | None = None  # why the value is unknown (e.g. a ConstantOfShape of a symbolic shape)
    weight: bool = False  # an initializer, or one reshaped (a weight, not a constant the graph computes)


def spec_value(value: Any, table: dict[str, sympy.Symbol]) -> Any:
    """A field value as a spec would hold it (sizes as ints or expression text)."""
    if isinstance(value, sympy.Basic):
        return int(value) if value.is_Integer else size_text(value, table)
    if isinstance(value, (list, tuple)):
        return [spec_value(v, table) for v in value]
    if isinstance(value, dict):
        return {k: spec_value(v, table) for k, v in value.items()}
    return value


def float32(value: float) -> float:
    """The shortest decimal that is the same float32 (ONNX stores 1e-3 as 0.0010000000474974513)."""
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if abs(float(text) - value) <= abs(value) * 2**-23:
            return float(text)
    return float(value)


def compact(values: list[int]) -> Any:
    return values[0] if len(set(values)) == 1 else list(values)


def norm_axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def int_or_none(value: Any) -> int | None:
    value = sympy.sympify(value)
    return int(value) if value.is_Integer else None


def objects(np: Any, items: list[Any]) -> Any:
    array = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        array[i] = sympy.sympify(item)
    return array


def divide(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    if a.is_integer and b.is_integer:
        return floor_div(a, b)  # sizes are positive: truncation and floor agree
    return a / b


def order_kept(x: Data) -> bool:
    """Whether the spec tensor holds its data in ONNX order (batch first; the axes that are not of
    size 1 in increasing ONNX order), so that a Flatten or Reshape of it is the ONNX one."""
    big = [a for a, d in zip(x.axes, x.shape, strict=False) if d != 1]
    return x.batch == 0 and big == sorted(big)


def prefix_layout(x: Data) -> bool:
    """Batch first, spec axes in ONNX order, any size-1 axes the spec lacks right after the batch:
    broadcasting then lines up the same way in ONNX and in Keras."""
    if x.batch != 0 or list(x.axes) != sorted(x.axes):
        return False
    return x.phantoms == list(range(1, 1 + len(x.phantoms)))
