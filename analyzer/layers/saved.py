"""What autograd keeps for the backward pass (issue 16, the memory of a training step): the vocabulary the families'
saved-activation rules share.

A family declares, next to the layer, `saves_as(type, rule=...)` (analyzer/layers/registry.py). A rule takes a
`SaveContext` (the analyzed row, what it sees of each input: shape with the batch axis, layout in memory, whether it
needs a gradient; whether the layer's own weights train) and returns `Saves`: the tensors the torch export's ops
record for their backward, as torch's derivatives.yaml has them (which tensor: one of the layer's inputs as it is,
its output, or a tensor of its own, with elements and dtype), and how the output lies in memory. The training step
(analyzer/training_memory.py) follows the storages through the graph, counts each one once (where it is first
saved) and never the parameters.

Layouts matter because a copy is a new storage: nnspec's torch convolutions call `.contiguous()` on the
channels-first view of their input, nn.Linear folds a non-contiguous input into rows by copying it, and both save
what they computed on. A rule that meets an option it does not model raises `NotCounted`: the step then says
"not counted for <type>" instead of a wrong total.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sympy

from analyzer.symbolic import ZERO, product

if TYPE_CHECKING:
    from analyzer.report import LayerRow


class NotCounted(Exception):
    """An option a saved-activation rule does not model: a verdict, not a failure (the step names the type)."""


@dataclass(frozen=True)
class Layout:
    """How a tensor lies in its storage. order: its axes (0 the batch, then Keras' axes) from the outermost in
    memory to the innermost; partial: axes that cover only part of their storage (a crop's narrow view);
    broadcast: axes of stride 0 (an expand)."""

    order: tuple[int, ...]
    partial: frozenset[int] = frozenset()
    broadcast: frozenset[int] = frozenset()

    def permuted(self, dims: Sequence[int]) -> Layout:
        """The layout of x.permute(dims): new axis j is old axis dims[j]."""
        new = {old: j for j, old in enumerate(dims)}
        return Layout(tuple(new[a] for a in self.order), frozenset(new[a] for a in self.partial),
                      frozenset(new[a] for a in self.broadcast))

    def dense(self) -> Layout:
        """A new tensor computed elementwise from one in this layout (TensorIterator keeps the axis order)."""
        return Layout(self.order) if not self.broadcast else channels_last(len(self.order))


def channels_last(rank: int) -> Layout:
    """A contiguous tensor: memory in Keras' axis order."""
    return Layout(tuple(range(rank)))


def channels_first(rank: int) -> Layout:
    """x.movedim(1, -1) of a contiguous channels-first tensor: what the export's convolutions return."""
    return Layout((0, rank - 1, *range(1, rank - 1)))


def moved_axes(rank: int, axis: int) -> tuple[int, ...]:
    """x.movedim(axis, 1) as a permutation: the moved tensor's axis j is x's axis dims[j]."""
    return (0, axis, *(a for a in range(1, rank) if a != axis))


@dataclass
class World:
    """The step the layouts are worked out for: at B = 1 a batch axis of size 1 breaks no contiguity. `sensitive`
    is set when a decision depends on it, so the step works the B = 1 case out too."""

    batch_one: bool = False
    sensitive: bool = False


@dataclass(frozen=True)
class Tensor:
    """What a rule sees of one input: its shape (batch axis first), its layout, whether it needs a gradient."""

    shape: tuple[sympy.Expr, ...]
    layout: Layout
    requires_grad: bool
    world: World

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def elements(self) -> sympy.Expr:
        return product(self.shape)

    def permuted(self, dims: Sequence[int]) -> Tensor:
        return Tensor(tuple(self.shape[d] for d in dims), self.layout.permuted(dims), self.requires_grad, self.world)

    def _decide(self, test: Callable[[Callable[[int], bool]], bool]) -> bool:
        """`test(trivial)` in this world, noting when the answer at B = 1 differs."""
        def trivial(batch_one: bool) -> Callable[[int], bool]:
            return lambda a: self.shape[a] == 1 or (a == 0 and batch_one)

        answer = test(trivial(self.world.batch_one))
        if answer != test(trivial(not self.world.batch_one)):
            self.world.sensitive = True
        return answer

    def is_contiguous(self, order: Sequence[int] | None = None) -> bool:
        """Whether the elements lie densely in memory in `order` (default: Keras' axis order); axes of size 1
        do not count, as in torch."""
        want = tuple(range(self.rank)) if order is None else tuple(order)

        def test(trivial: Callable[[int], bool]) -> bool:
            have = [a for a in self.layout.order if not trivial(a)]
            if have != [a for a in want if not trivial(a)] or any(a in self.layout.broadcast for a in have):
                return False
            partial = [a for a in have if a in self.layout.partial]
            return not partial or partial == have[:1]

        return self._decide(test)

    def mergeable(self, axes: Sequence[int]) -> bool:
        """Whether x.reshape can merge these consecutive axes into one without a copy (torch's view rule)."""
        def test(trivial: Callable[[int], bool]) -> bool:
            have = [a for a in self.layout.order if not trivial(a)]
            inside = [a for a in have if a in axes]
            if len(inside) < 2:  # one axis of size > 1: a view whatever its stride
                return True
            start = have.index(inside[0])
            if have[start:start + len(inside)] != sorted(inside) or any(a in self.layout.broadcast for a in inside):
                return False
            return all(a not in self.layout.partial for a in inside[1:])

        return self._decide(test)

    def channels_last_like(self) -> bool:
        """torch's suggest_memory_format of this (already moved, channels at axis 1) tensor is channels_last: rank 4
        or 5 with the channels innermost in memory, and not plainly contiguous."""
        if self.rank not in (4, 5):
            return False
        return self.is_contiguous((0, *range(2, self.rank), 1)) and not self.is_contiguous()


def moved_output(x: Tensor, axis: int, via_2d: bool = False) -> Layout:
    """The layout of op(x.movedim(axis, 1)).movedim(1, axis) for an op that allocates its output in its input's
    suggested memory format (batch norm, group norm, F.pad, the poolings): channels-last in memory when the moved
    input is, else contiguous with the channels at axis 1. via_2d: a 1-D pooling, which torch computes as a 2-D one
    on x.unsqueeze(-2), so a rank-3 input can come out channels-last too."""
    dims = moved_axes(x.rank, axis)
    moved = x.permuted(dims)
    if via_2d and moved.rank == 3:
        last = moved.is_contiguous((0, 2, 1)) and not moved.is_contiguous()
    else:
        last = moved.channels_last_like()
    order = (0, *range(2, x.rank), 1) if last else tuple(range(x.rank))
    return Layout(tuple(dims[j] for j in order))


@dataclass(frozen=True)
class Saved:
    """One tensor autograd keeps. tensor: "input" (input `index`, its storage as it is), "output" (the layer's
    output's storage) or "new" (a tensor of the layer's own, `elements` of `dtype`; `tag` names it, so that two ops
    saving the same one count it once). dtype: "float" (the compute dtype), "float32", "int64" or "bool"."""

    tensor: str
    index: int = 0
    elements: sympy.Expr = ZERO
    dtype: str = "float"
    tag: str = ""

    @staticmethod
    def input(index: int = 0) -> Saved:
        return Saved("input", index)

    @staticmethod
    def new(tag: str, elements: sympy.Expr, dtype: str = "float") -> Saved:
        return Saved("new", elements=elements, dtype=dtype, tag=tag)


OUTPUT = Saved("output")


@dataclass(frozen=True)
class Saves:
    """What one layer saves, and its output: a view of input `alias`'s storage, or (None) a new tensor; `layout`
    its layout (None: contiguous); `storage` the new tensor's storage elements when the output is a view of only
    part of it (a crop; None: the output's elements)."""

    saved: tuple[Saved, ...] = ()
    layout: Layout | None = None
    alias: int | None = None
    storage: sympy.Expr | None = None


@dataclass(frozen=True)
class SaveContext:
    """What a rule is given: the row, the batch symbol, its inputs, whether its own weights need a gradient."""

    row: LayerRow
    batch: sympy.Symbol
    inputs: tuple[Tensor, ...]
    trains: bool

    @property
    def spec(self) -> Any:
        return self.row.spec

    @property
    def output_shape(self) -> tuple[sympy.Expr, ...]:
        return (self.batch, *self.row.output_shape)

    @property
    def outputs(self) -> sympy.Expr:
        """The output's elements, whole batch."""
        return self.batch * product(self.row.output_shape)

    def kept_input(self, index: int, order: Sequence[int] | None, tag: str) -> Saved:
        """Input `index` as an op that needs it contiguous in `order` saves it: as it is, or the copy made of it."""
        x = self.inputs[index]
        return Saved.input(index) if x.is_contiguous(order) else Saved.new(tag, x.elements)


SaveRule = Callable[[SaveContext], Saves]
