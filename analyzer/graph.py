"""From a validated Spec to a Report: wire the layer graph, order it, propagate
shapes through each layer's handler, and collect the constraints on the symbols.
"""

from __future__ import annotations

import heapq

import sympy

from analyzer.constraints import Constraint, Note
from analyzer.errors import GraphError, did_you_mean
from analyzer.layers import LAYERS, LayerContext, LayerResult, Shape
from analyzer.report import Counts, LayerRow, Report
from analyzer.spec.blocks import SymbolicRepeat
from analyzer.spec.fields import PendingSize
from analyzer.spec.loader import LayerEntry, Spec
from analyzer.symbolic import render

BIAS_MODES = ("spec", "on", "off")


def analyze_spec(spec: Spec, bias: str = "spec", kv_cache: sympy.Expr | None = None) -> Report:
    """kv_cache: the cached tokens of --phase decode (analyzer/phases.py, which checks the spec first)."""
    if bias not in BIAS_MODES:
        raise ValueError(f"bias must be one of {BIAS_MODES}, got {bias!r}")
    wiring = _wire(spec)
    order = _topological_order(spec, wiring)
    _check_all_used(spec, wiring)
    defaults = spec.defaults
    shapes: dict[str, Shape] = {}
    rows: dict[str, LayerRow] = {}
    constraints: list[Constraint] = []
    notes: list[Note] = []
    for entry in spec.inputs:
        ctx = LayerContext(entry.name, "InputLayer", entry.location, defaults, bias)
        _require_pending_sizes(entry.pending, ctx)
        constraints.extend(ctx.constraints)
        shapes[entry.name] = entry.shape
        rows[entry.name] = LayerRow(entry.name, "InputLayer", (), entry.shape, Counts(), entry.location)
    for entry in order:
        ctx = LayerContext(entry.name, entry.type, entry.location, defaults, bias, field_locations=entry.field_locations,
                           kv_cache=kv_cache)
        _require_pending_sizes(entry.pending, ctx)
        _check_tied_to(entry.spec, rows, ctx)
        sources = wiring[entry.name]
        result: LayerResult = LAYERS[entry.type].handler(entry.spec, [shapes[s] for s in sources], ctx)
        several = len(result.output_shapes) > 1
        for i, shape in enumerate(result.output_shapes):
            which = f"output {i} " if several else "output "
            for axis, dim in enumerate(shape, start=1):
                if dim.is_Integer and dim >= 1:
                    continue
                text = render(dim)
                ctx.require_at_least(dim, 1, f"{which}axis {axis} ({text}) must be at least 1",
                                     violation=f"{which}axis {axis} ({text}) would be empty")
        constraints.extend(ctx.constraints)
        notes.extend(ctx.notes)
        for i, shape in enumerate(result.output_shapes):
            shapes[output_reference(entry.name, i)] = shape
        counts = Counts.from_result(result, trainable=entry.spec.trainable)
        if entry.multiplier != 1:
            counts = counts.scaled(entry.multiplier)
        rows[entry.name] = LayerRow(entry.name, entry.type, tuple(sources), result.output_shape, counts, entry.location,
                                    tuple(shapes[s] for s in sources), entry.spec, entry.groups, entry.multiplier,
                                    result.more_outputs, result.cached, result.inactive_params * entry.multiplier)
    for repeat in spec.symbolic_repeats:
        constraints.extend(_require_shape_kept(repeat, shapes, spec, bias))
    symbol_locations = {"": spec.source.key(("symbols",)) or spec.source.value(())}
    symbol_locations.update({s.name: spec.source.key(("symbols", s.name)) for s in spec.symbols})
    report = Report(spec.name, spec.file, tuple(spec.symbols), rows, tuple(_distinct(constraints)), bias, defaults,
                    notes=tuple(notes), symbol_locations=symbol_locations, outputs=tuple(model_outputs(spec)),
                    phase="prefill" if kv_cache is None else "decode")
    report.check_magnitudes(formulas=True)
    return report


def _check_tied_to(layer: object, rows: dict[str, LayerRow], ctx: LayerContext) -> None:
    """A tied LM head (`tied_to`) reads the table of an earlier embedding lookup of the same vocabulary and width:
    its params are counted there, and its gradient (training) trains only if that layer does."""
    tied_to = getattr(layer, "tied_to", None)
    if tied_to is None:
        return
    target = rows.get(tied_to)
    if target is None or target.type == "InputLayer":
        ctx.fail(f"tied_to '{tied_to}' names no earlier layer (the embedding whose table this head reads must come "
                 "before it)", "tied_to")
    if target.type != "ReversibleEmbedding" or target.spec.reverse:
        ctx.fail(f"tied_to '{tied_to}' is a {target.type}{' in reverse' if target.type == 'ReversibleEmbedding' else ''}"
                 ", not an embedding lookup (a ReversibleEmbedding without reverse) whose table this head could read",
                 "tied_to")
    for field in ("input_dim", "output_dim"):
        mine, theirs = getattr(layer, field), getattr(target.spec, field)
        if sympy.expand(sympy.sympify(mine) - sympy.sympify(theirs)) != 0:
            ctx.fail(f"{field} {render(mine)} differs from the {field} {render(theirs)} of '{tied_to}', whose table "
                     "this head reads", field)


def _distinct(constraints: list[Constraint]) -> list[Constraint]:
    """Drop restatements (conv 'kernel fits' and 'output >= 1' are the same inequality); keep the first."""
    seen = set()
    kept = []
    for c in constraints:
        key = (c.kind, sympy.expand(c.lhs - c.rhs) if c.kind != "int" else c.lhs)
        if key not in seen:
            seen.add(key)
            kept.append(c)
    return kept


def _require_shape_kept(repeat: SymbolicRepeat, shapes: dict[str, Shape], spec: Spec, bias: str) -> list[Constraint]:
    """A block repeated a symbolic number of times is counted as times x one copy: exact only if
    each copy's output has the shape of its input."""
    before, after = shapes[repeat.input], shapes[repeat.output]
    ctx = LayerContext(repeat.instance, f"block {repeat.block}", spec.source.value(repeat.path), spec.defaults, bias)
    rule = (f"is repeated {render(repeat.times)} times, so it must keep its input shape "
            f"({', '.join(map(render, before))}) but gives ({', '.join(map(render, after))})")
    if len(before) != len(after):
        ctx.fail(rule)
    for a, b in zip(before, after):
        ctx.require_equal(b, a, rule, violation=rule)  # the rule already says what is wrong
    return ctx.constraints


def _require_pending_sizes(pending: list[PendingSize], ctx: LayerContext) -> None:
    """Sizes written as expressions must stay integers >= their minimum at every value."""
    for size in pending:
        text = render(size.expr)
        ctx.require("int", size.expr, size.expr, f"{size.field} = {text} must be an integer", size.field,
                    violation=f"{size.field} = {text} is not an integer")
        ctx.require_at_least(size.expr, size.minimum, f"{size.field} = {text} must be at least {size.minimum}", size.field,
                             violation=f"{size.field} = {text} is less than {size.minimum}")


def _wire(spec: Spec) -> dict[str, list[str]]:
    """Each layer's input names (default: the previous layer), checked to exist and be unique."""
    known: dict[str, object] = {}
    for entry in [*spec.inputs, *spec.layers]:
        if entry.name in known:
            first = known[entry.name]
            line = f" at line {first.location.line}" if getattr(first, "location", None) else ""
            fields = getattr(entry, "field_locations", {})
            raise GraphError(f"duplicate name '{entry.name}': already used{line} by {_what(first)}",
                             location=fields.get("name") or entry.location, layer=entry.name, layer_type=_type(entry),
                             hint="every input and layer needs its own name")
        known[entry.name] = entry
    wiring: dict[str, list[str]] = {}
    for i, entry in enumerate(spec.layers):
        location = entry.field_locations.get("inputs") or entry.location
        if entry.spec.inputs is not None:
            sources = list(entry.spec.inputs)
        elif i > 0:
            sources = [spec.layers[i - 1].name]
        elif len(spec.inputs) == 1:
            sources = [spec.inputs[0].name]
        else:
            names = ", ".join(x.name for x in spec.inputs)
            raise GraphError(f"the first layer must name its 'inputs' when the model has several ({names})",
                             location=entry.location, layer=entry.name, layer_type=entry.type)
        resolved = []
        for source in sources:
            layer, _, _ = source.partition(":")
            if layer not in known:
                raise GraphError(f"input '{source}' is not a layer or model input of this spec", location=location,
                                 layer=entry.name, layer_type=entry.type,
                                 hint=did_you_mean(layer, [k for k in known if k != entry.name]))
            if layer == entry.name:
                raise GraphError("a layer cannot be its own input", location=location, layer=entry.name, layer_type=entry.type)
            resolved.append(_resolve(source, known, f"input '{source}'", location, entry))
        _check_input_count(entry, len(resolved), location)
        wiring[entry.name] = resolved
    for name, location in zip(spec.outputs, spec.output_locations):
        if name.partition(":")[0] not in known:
            raise GraphError(f"output '{name}' is not a layer of this spec", location=location, hint=did_you_mean(name, known))
        _resolve(name, known, f"output '{name}'", location, None)
    return wiring


def output_reference(layer: str, index: int) -> str:
    """The canonical reference to output `index` of `layer`: `layer` for the first, `layer:index` for the others."""
    return layer if index == 0 else f"{layer}:{index}"


def split_reference(reference: str) -> tuple[str, int]:
    """A canonical reference (`enc`, `enc:2`) as (layer, output index)."""
    layer, _, index = reference.partition(":")
    return layer, int(index) if index else 0


def model_outputs(spec: Spec) -> list[str]:
    """The spec's `outputs:` as canonical references (`enc:state_h` -> `enc:1`); call after the spec is analyzed."""
    known: dict[str, object] = {e.name: e for e in [*spec.inputs, *spec.layers]}
    return [_resolve(name, known, f"output '{name}'", location, None)
            for name, location in zip(spec.outputs, spec.output_locations)]


def _output_names(entry: object) -> tuple[str, ...]:
    return entry.spec.output_names() if isinstance(entry, LayerEntry) else ("output",)


def _resolve(reference: str, known: dict[str, object], what: str, location: object, reader: LayerEntry | None) -> str:
    """`LAYER`, `LAYER:INDEX` or `LAYER:OUTPUT` (Keras' order and names of the layer's outputs) as a canonical
    reference; LAYER is known. Layer names never hold ':', so the first one splits."""
    layer, colon, port = reference.partition(":")
    if not colon:
        return layer
    source = known[layer]
    names = _output_names(source)
    listing = ", ".join(f"{i} {n}" for i, n in enumerate(names))
    where = {"location": location, "layer": reader.name if reader else None, "layer_type": reader.type if reader else None}
    if port.isdigit():
        index = int(port)
        if index < len(names):
            return output_reference(layer, index)
        if len(names) == 1:
            raise GraphError(f"{what}: {_what(source)} has one output (refer to it as '{layer}')",
                             hint=_states_hint(source), **where)
        raise GraphError(f"{what}: {_what(source)} has {len(names)} outputs ({listing}): no output {index}", **where)
    if port in names:
        return output_reference(layer, names.index(port))
    if not port:
        raise GraphError(f"{what}: nothing after ':' (write {layer}:1 or {layer}:NAME, NAME one of its outputs: {listing})",
                         **where)
    hint = did_you_mean(port, names) or _states_hint(source)
    raise GraphError(f"{what}: {_what(source)} has no output '{port}' (its outputs: {listing})", hint=hint, **where)


def _states_hint(source: object) -> str | None:
    if isinstance(source, LayerEntry) and source.spec.state_input_names() and len(_output_names(source)) == 1:
        return "return_state: true gives a recurrent layer its final states as more outputs"
    return None


def _check_input_count(entry: LayerEntry, count: int, location: object) -> None:
    """Keras' arity, plus the initial state a recurrent layer may take after its sequence."""
    where = {"location": location, "layer": entry.name, "layer_type": entry.type}
    arity = type(entry.spec).arity
    states = entry.spec.state_input_names()
    if arity == 1 and states and count != 1:
        if count != 1 + len(states):
            names = ", ".join(states)
            raise GraphError(f"takes 1 input (the sequence), or {1 + len(states)} with its initial state "
                             f"(the sequence, then {names}), got {count}", **where)
        return
    if arity is not None and count != arity:
        raise GraphError(f"takes {arity} input{'s' if arity > 1 else ''}, got {count}", **where)
    if arity is None and count < 2:
        raise GraphError(f"takes two or more inputs, got {count}", hint="list them under 'inputs:'", **where)


def _topological_order(spec: Spec, wiring: dict[str, list[str]]) -> list[LayerEntry]:
    """Layers in dependency order, keeping file order where free (Kahn's algorithm)."""
    by_name = {e.name: e for e in spec.layers}
    layers_read = {name: list(dict.fromkeys(split_reference(s)[0] for s in sources)) for name, sources in wiring.items()}
    waiting = {name: sum(1 for s in sources if s in by_name) for name, sources in layers_read.items()}
    users: dict[str, list[str]] = {name: [] for name in by_name}
    for name, sources in layers_read.items():
        for s in sources:
            if s in by_name:
                users[s].append(name)
    ready = [e.index for e in spec.layers if waiting[e.name] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        entry = spec.layers[heapq.heappop(ready)]
        order.append(entry)
        for user in users[entry.name]:
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, by_name[user].index)
    if len(order) < len(spec.layers):
        stuck = [e.name for e in spec.layers if waiting[e.name] > 0]
        cycle = _find_cycle(stuck, layers_read)
        first = by_name[cycle[0]]
        raise GraphError("the layers form a cycle: " + " -> ".join([*cycle, cycle[0]]),
                         location=first.field_locations.get("inputs") or first.location, layer=first.name, layer_type=first.type)
    return order


def _find_cycle(stuck: list[str], wiring: dict[str, list[str]]) -> list[str]:
    """Every stuck layer waits on a stuck source, so walking sources must loop."""
    stuck_set = set(stuck)
    path: list[str] = []
    seen: dict[str, int] = {}
    node = stuck[0]
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = next(s for s in wiring[node] if s in stuck_set)
    return list(reversed(path[seen[node]:]))


def _check_all_used(spec: Spec, wiring: dict[str, list[str]]) -> None:
    """Every layer and input must feed an output: Keras would silently drop the rest."""
    used: set[str] = set()
    stack = [name.partition(":")[0] for name in spec.outputs]
    while stack:
        name = stack.pop()
        if name in used:
            continue
        used.add(name)
        stack.extend(split_reference(s)[0] for s in wiring.get(name, []))
    for entry in [*spec.inputs, *spec.layers]:
        if entry.name not in used:
            outputs = ", ".join(spec.outputs)
            raise GraphError(f"is not used: it does not lead to any output of the model ({outputs})",
                             location=entry.location, layer=entry.name, layer_type=_type(entry),
                             hint="connect it, list it under 'outputs:', or remove it")


def _type(entry: object) -> str:
    return entry.type if isinstance(entry, LayerEntry) else "InputLayer"


def _what(entry: object) -> str:
    return f"layer '{entry.name}' ({entry.type})" if isinstance(entry, LayerEntry) else f"model input '{entry.name}'"  # type: ignore[attr-defined]
