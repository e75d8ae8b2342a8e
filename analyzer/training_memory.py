"""The memory of one training step (issue 16): weights, gradients, optimizer state, the activations autograd
saves for the backward pass, and a documented peak, in elements and in bytes for a dtype or a mixed-precision
policy (docs/conventions.md#training, the Memory bullet).

Saved activations follow autograd on nnspec's torch export: each layer family says what its ops keep
(`saves_as`, analyzer/layers/saved.py); this module follows the storages through the graph, so that a tensor two
layers keep (a convolution's output kept by the next relu and by the next convolution) counts once, for the first
layer in graph order that keeps it, and never counts a parameter. A layer records nothing when nothing it computes
needs a gradient (before the first trainable layer, with the model input not requiring one). Where torch's choice
between a view and a copy depends on the batch axis having size 1, the formula has a factor Min(B - 1, 1): 0 at
B = 1, else 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import sympy

from analyzer.layers.registry import INPUT_LAYER, SAVES
from analyzer.layers.saved import NotCounted, SaveContext, Saves, Tensor, World, channels_last
from analyzer.memory import DTYPE_BYTES
from analyzer.symbolic import ZERO, product, sum_of

# Optimizer state elements per trainable parameter (torch.optim's `state`; each also keeps a step count).
OPTIMIZER_STATE = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}
# Keras' mixed-precision policies: 2-byte weights, gradients and activations, float32 master weights and
# optimizer state (ZeRO's accounting: 2 + 2 + 4 + 4 + 4 = 16 bytes per parameter with Adam).
MIXED_PRECISION = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}
FIXED_BYTES = {"float32": 4, "int64": 8, "bool": 1}  # saved tensors whose dtype is not the compute dtype
REPEATED = "inside blocks repeated a symbolic number of times"


class StepLike(Protocol):
    """What this module reads of analyzer.training.TrainingStep (which imports this module, not the reverse)."""

    report: Any
    optimizer: str
    layers: dict[str, Any]
    input_grad: bool

    def total(self, part: str) -> sympy.Expr: ...


@dataclass(frozen=True)
class MemoryLine:
    name: str  # "weights", "gradients", "optimizer_state", "saved_activations", "peak" (+ "master_weights" in mixed precision)
    elements: sympy.Expr
    bytes: sympy.Expr
    note: str = ""  # e.g. "not counted for GRU" or "fp32 master copy"


def compute_bytes(dtype: str) -> int:
    """Bytes of one element in the compute dtype of `dtype` (a DTYPE_BYTES name or a mixed-precision policy)."""
    if dtype in MIXED_PRECISION:
        return DTYPE_BYTES[MIXED_PRECISION[dtype]]
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; one of {', '.join([*DTYPE_BYTES, *MIXED_PRECISION])}")
    return DTYPE_BYTES[dtype]


Kept = list[tuple[sympy.Expr, str]]  # a layer's saved storages: (elements, dtype), first keeper first


@dataclass
class _Walk:
    """Saved storages per layer (elements, dtype), first keeper first; the layers not counted, by type."""

    saved: dict[str, list[tuple[sympy.Expr, str]]] = field(default_factory=dict)
    not_counted: dict[str, str] = field(default_factory=dict)  # layer -> type
    grads: dict[str, tuple[sympy.Expr, ...]] = field(default_factory=dict)  # layer -> gradients in flight in its backward


@dataclass(frozen=True)
class _Value:
    key: Any  # the storage
    layout: Any
    shape: tuple[sympy.Expr, ...]


def _walk(step: StepLike, world: World) -> _Walk:
    report = step.report
    batch = report.symbol("B").symbol
    storages: dict[Any, tuple[sympy.Expr, str]] = {}
    values: dict[str, _Value] = {}
    requires: dict[str, bool] = {}
    seen: set[Any] = set()
    out = _Walk()
    # rule results by the row's rule_key and its inputs' shapes and layouts (whether a B = 1 answer differed with
    # them: World.sensitive): a stack's repeated rows ask the same few questions
    computed: dict[tuple[Any, ...], tuple[Saves | None, bool]] = {}

    def visit(name: str, row: Any, copy: tuple[int, ...] = (), feeds: dict[str, str] | None = None,
              opaque: bool = False) -> Kept | None:
        """Walk one row: its copy `copy` of the repeated blocks it is in (one index per repeat; (): the row itself),
        `feeds` (a block's input -> its output) rewiring the copies after the first to read the one before. None:
        not counted."""
        def own(key: tuple[Any, ...]) -> tuple[Any, ...]:
            return (*key, copy) if copy else key

        shapes = [(batch, *shape) for shape in row.output_shapes]
        if row.type == INPUT_LAYER:
            requires[name] = step.input_grad
            storages[name] = (product(shapes[0]), "float")
            values[name] = _Value(name, channels_last(len(shapes[0])), shapes[0])
            return []
        refs = [feeds[ref.partition(":")[0]] if feeds and ref.partition(":")[0] in feeds else ref for ref in row.inputs]
        sources = [values.get(ref) or values[ref.partition(":")[0]] for ref in refs]
        trains = step.layers[name].trainable_params != 0
        requires[name] = trains or any(requires[ref.partition(":")[0]] for ref in refs)
        if requires[name]:
            grads = [product(s) for s in shapes]
            if any(requires[ref.partition(":")[0]] for ref in refs):
                grads += [product(v.shape) for v in sources]
            out.grads[name] = tuple(grads)  # summed for the largest only (step_memory)
        rule = SAVES.get(row.type)
        result: Saves | None = None
        if rule is not None and opaque:
            out.not_counted[name] = REPEATED
        elif rule is not None:
            inputs = tuple(Tensor(v.shape, v.layout, requires[ref.partition(":")[0]], world)
                           for v, ref in zip(sources, refs, strict=True))
            key = (row.rule_key, trains, tuple((tuple(map(id, t.shape)), t.layout, t.requires_grad) for t in inputs))
            if key in computed:
                result, sensitive = computed[key]
            else:
                before, world.sensitive = world.sensitive, False
                try:
                    result = rule(SaveContext(row, batch, inputs, trains))
                except NotCounted:
                    result = None
                sensitive, world.sensitive = world.sensitive, before or world.sensitive
                computed[key] = (result, sensitive)
            world.sensitive = world.sensitive or sensitive
            if result is not None and len(getattr(result, "more", ())) != len(shapes) - 1:
                result = None  # a layer with several outputs whose rule does not say what each is
        if result is None:  # its outputs as opaque new storages; what it saves is not counted
            out.not_counted.setdefault(name, row.type)
            for i, shape in enumerate(shapes):
                storages[own((name, i))] = (product(shape), "float")
                values[f"{name}:{i}" if i else name] = _Value(own((name, i)), channels_last(len(shape)), shape)
            return None
        output_key = sources[result.alias].key if result.alias is not None else own((name, 0))
        if result.alias is None:
            storages[output_key] = (product(shapes[0]) if result.storage is None else result.storage, "float")
        values[name] = _Value(output_key, result.layout or channels_last(len(shapes[0])), shapes[0])
        output_keys = [output_key]
        more_layouts = getattr(result, "more_layouts", ())
        for i, (item, shape) in enumerate(zip(getattr(result, "more", ()), shapes[1:], strict=True), 1):
            # outputs 1, 2, ... (return_state): output j's storage, a view of an input, or a tensor of its own
            layout = more_layouts[i - 1] if i <= len(more_layouts) and more_layouts[i - 1] else None
            if item.tensor == "output":
                key = output_keys[item.index]
            elif item.tensor == "input":
                key = sources[item.index].key
            else:
                key = own((name, "new", item.tag))
                storages[key] = (item.elements, item.dtype)
            output_keys.append(key)
            values[f"{name}:{i}"] = _Value(key, layout or channels_last(len(shape)), shape)
        kept: list[tuple[sympy.Expr, str]] = []
        if not requires[name]:
            return kept
        for item in result.saved:
            if item.tensor == "input":
                key = sources[item.index].key
            elif item.tensor == "output":
                key = output_keys[item.index]
            else:
                key = own((name, "new", item.tag))
                storages[key] = (item.elements, item.dtype)
            if key not in seen:
                seen.add(key)
                kept.append(storages[key])
        return kept

    repeats = symbolic_repeats(report)

    def walk(rows: list[tuple[str, Any]], copy: tuple[int, ...], feeds: dict[str, str]) -> dict[str, Kept | None]:
        """Each row's saves in one copy of the repeats enclosing `rows`; a block repeated t times (a symbol) inside
        them, one row per layer, walked in copies 1, 2 and 3 (copy 2 reading copy 1's output, copy 3 checking that
        copy 2 is every later one): copy 1's saves + (t - 1) copy 2's. Nested repeats apply this at each level."""
        kept: dict[str, Kept | None] = {}
        i = 0
        while i < len(rows):
            name, row = rows[i]
            chain = repeat_chain(name)
            if len(chain) == len(copy):
                kept[name] = visit(name, row, copy, feeds)
                i += 1
                continue
            prefix = chain[len(copy)]
            j = i
            while j < len(rows) and prefix in repeat_chain(rows[j][0]):
                j += 1
            run, repeat = rows[i:j], repeats[prefix]
            if repeat.input is None or repeat.end is None:
                for n, r in run:
                    visit(n, r, copy, feeds, opaque=True)
                    kept[n] = None
                i = j
                continue
            source = repeat.input.partition(":")[0]
            copies = [walk(run, (*copy, c), feeds if c == 1 else {**feeds, source: repeat.end}) for c in (1, 2, 3)]
            for n, _ in run:
                first, second, third = (each[n] for each in copies)
                if first is None or second is None or third is None:
                    kept[n] = None
                elif second != third:
                    out.not_counted[n] = REPEATED
                    kept[n] = None
                else:
                    kept[n] = first + [(e * (repeat.times - 1), d) for e, d in second]
            i = j
        return kept

    for name, kept in walk(list(report.layers.items()), (), {}).items():
        if kept is not None and report.layers[name].type != INPUT_LAYER:
            out.saved[name] = kept
    return out


@dataclass(frozen=True)
class Repeat:
    """A block instance repeated a symbolic number of times: `times` copies of its rows (names `PREFIX.each.*`),
    copy 1 reading `input`, copy k + 1 the `end` row of copy k; None where that wiring does not hold."""

    times: sympy.Expr
    input: str | None
    end: str | None


def repeat_chain(name: str) -> list[str]:
    """The symbolic repeats a row is in, outermost first: 'a.each.b.each.c' -> ['a', 'a.each.b']."""
    parts = name.split(".each.")
    return [".each.".join(parts[:i]) for i in range(1, len(parts))]


def symbolic_repeats(report: Any) -> dict[str, Repeat]:
    """Every block instance repeated a symbolic number of times in the report, by its name prefix."""
    rows = report.layers
    chains = {name: repeat_chain(name) for name in rows}
    out: dict[str, Repeat] = {}
    for prefix in sorted({p for chain in chains.values() for p in chain}, key=lambda p: p.count(".each.")):
        members = {n for n, chain in chains.items() if prefix in chain}
        direct = next((n for n in members if chains[n][-1] == prefix), None)
        outer = sympy.Mul(*(out[p].times for p in repeat_chain(prefix + ".each.x")[:-1]))
        times = rows[direct].multiplier / outer if direct is not None else None
        refs = {ref.removesuffix(":0") for n in members for ref in rows[n].inputs}
        inputs = {ref for ref in refs if ref.partition(":")[0] not in members}
        ends = [n for n in members if n not in {ref.partition(":")[0] for ref in refs}]
        ok = times is not None and len(inputs) == 1 and len(ends) == 1
        out[prefix] = Repeat(times if times is not None else sympy.Integer(1),
                              next(iter(inputs)) if ok else None, ends[0] if ok else None)
    return out


def _per_layer(walk: _Walk, unit: int) -> tuple[dict[str, sympy.Expr], dict[str, sympy.Expr]]:
    """(bytes, elements) per layer."""
    def size(dtype: str) -> int:
        return unit if dtype == "float" else FIXED_BYTES[dtype]

    return ({name: sympy.Add(*(e * size(d) for e, d in kept)) for name, kept in walk.saved.items()},
            {name: sympy.Add(*(e for e, _ in kept)) for name, kept in walk.saved.items()})


def _saved(step: StepLike, dtype: str, walked: tuple[_Walk, World] | None = None,
           ) -> tuple[dict[str, sympy.Expr], dict[str, sympy.Expr], _Walk]:
    """Per layer, saved bytes and elements (B = 1's where torch's view-or-copy choice depends on it), and the walk
    (`walked`: the walk at B >= 2 and its world, when done already)."""
    unit = compute_bytes(dtype)
    if walked is None:
        world = World()
        walked = (_walk(step, world), world)
    walk, world = walked
    bytes_, elements = _per_layer(walk, unit)
    if world.sensitive:
        batch = step.report.symbol("B").symbol
        one_bytes, one_elements = _per_layer(_walk(step, World(batch_one=True)), unit)
        general = sympy.Min(batch - 1, 1)  # 0 at B = 1, 1 for B >= 2

        def blend(at_two: sympy.Expr, at_one: sympy.Expr) -> sympy.Expr:
            return at_two if at_two == at_one else at_two * general + at_one.subs(batch, 1) * (1 - general)

        bytes_ = {n: blend(v, one_bytes[n]) for n, v in bytes_.items()}
        elements = {n: blend(v, one_elements[n]) for n, v in elements.items()}
    return bytes_, elements, walk


def _saved_totals(walk: _Walk, unit: int) -> tuple[sympy.Expr, sympy.Expr]:
    """(elements, bytes) of every layer's saves, each storage object counted with its multiplicity: a stack's layers
    keep the same few shape objects, so the total is a sum of a few multiples instead of one sum per layer."""
    counted: dict[tuple[int, str], list[Any]] = {}
    for kept in walk.saved.values():
        for elements, dtype in kept:
            entry = counted.setdefault((id(elements), dtype), [elements, dtype, 0])
            entry[2] += 1
    items = list(counted.values())
    total = sum_of([e if n == 1 else n * e for e, _, n in items])
    size = {d: unit if d == "float" else FIXED_BYTES[d] for _, d, _ in items}
    return total, sum_of([(n * size[d]) * e for e, d, n in items])


def saved_activations(step: StepLike, dtype: str = "float32") -> dict[str, sympy.Expr]:
    """Bytes each layer's backward keeps from the forward (a storage two layers keep counted for the first), in
    graph order; the layers not counted (step_memory's note names their types) are left out."""
    return _saved(step, dtype)[0]


def _not_counted_note(walk: _Walk) -> str:
    types = sorted(set(walk.not_counted.values()) - {REPEATED})
    parts = [f"not counted for {', '.join(types)}"] if types else []
    if REPEATED in walk.not_counted.values():
        parts.append(f"not counted {REPEATED}")
    return "; ".join(parts)


def step_memory(step: StepLike, dtype: str = "float32") -> list[MemoryLine]:
    """The memory a training step holds, in elements and bytes: weights, gradients, (master weights,) optimizer
    state, saved activations, and the peak (docs/conventions.md#training, Memory)."""
    report = step.report
    unit = compute_bytes(dtype)
    params, trainable = report.total.params, step.total("trainable_params")
    state = OPTIMIZER_STATE[step.optimizer] * trainable
    counter = "; a step count per tensor" if step.optimizer in ("adam", "adamw") else ""
    if dtype in MIXED_PRECISION:
        moving = report.total.non_trainable_params
        lines = [MemoryLine("weights", params, 2 * (params - moving) + 4 * moving,
                            f"{MIXED_PRECISION[dtype]} copy" + ("; moving statistics float32" if moving != 0 else "")),
                 MemoryLine("gradients", trainable, 2 * trainable, MIXED_PRECISION[dtype]),
                 MemoryLine("master_weights", trainable, 4 * trainable, "fp32 master copy"),
                 MemoryLine("optimizer_state", state, 4 * state, "float32" + counter)]
    else:
        lines = [MemoryLine("weights", params, unit * params), MemoryLine("gradients", trainable, unit * trainable),
                 MemoryLine("optimizer_state", state, unit * state, counter.removeprefix("; "))]
    world = World()
    walk = _walk(step, world)
    if world.sensitive:  # the B = 1 blend is per layer
        per_layer, per_layer_elements, walk = _saved(step, dtype, (walk, world))
        saved_elements, saved_bytes = sum_of(per_layer_elements.values()), sum_of(per_layer.values())
    else:
        saved_elements, saved_bytes = _saved_totals(walk, unit)
    note = _not_counted_note(walk)
    lines.append(MemoryLine("saved_activations", saved_elements, saved_bytes, note))
    # gradients in flight: the largest layer's dL/d(output) and dL/d(input), at the report's values
    flight, where = ZERO, ""
    if walk.grads:
        where = max(walk.grads, key=lambda n: sum(report.value(g) for g in walk.grads[n]))
        flight = sympy.Add(*walk.grads[where])
    peak_note = f"all of the above + gradients in flight at {where}" if where else "all of the above"
    lines.append(MemoryLine("peak", sum_of([*(line.elements for line in lines), flight]),
                            sum_of([*(line.bytes for line in lines), unit * flight]),
                            peak_note + (f"; saved activations {note}" if note else "")))
    return lines
