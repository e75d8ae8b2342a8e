"""Recurrent layers exported as Python loops, which torch.onnx unrolls: the input kernel (a MatMul,
maybe a bias Add: a Dense over the whole sequence, xs) then, per time step t, a Gather of xs[:, t],
a MatMul of the previous state by the recurrent kernel (of a constant zero state at t = 0), the
gates' Slices, activations and elementwise ops, and at the end the last state or a Concat of every
step's state (return_sequences). torch's flip before the kernel is go_backwards.

While the loop runs, its values are `Step`s: nothing is written to the spec; the loop records what
it computes (the recurrent MatMuls, recurrent bias Adds, activations). Where a step value leaves
the loop (a node of another module, or an op that is not elementwise) the loop is checked to be
exactly one SimpleRNN, GRU or LSTM over every step, and that layer replaces the kernel's Dense.
Anything else in a loop is refused, naming the node.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import sympy

from analyzer.importers.onnx.loop_states import initial_state_inputs, is_cell_state, same_size, state_output
from analyzer.importers.onnx.loop_values import Loop, Step
from analyzer.importers.onnx.recurrent import RNN_ACTIVATIONS
from analyzer.importers.onnx.values import BATCH, Const, Data, norm_axis

if TYPE_CHECKING:
    from analyzer.importers.onnx.context import ImportContext

ELEMENTWISE = {"Add", "Sub", "Mul", "Div"}
PASSING = {"Identity", "Cast", "Dropout"}


def scope_of(node: Any) -> str:
    return "/".join((node.name or "").split("/")[:-1])


def is_step_node(imp: ImportContext) -> bool:
    """Whether the current node is part of an unrolled loop (it reads a step value, or multiplies the
    zero initial state by a recurrent kernel)."""
    node = imp.node
    values = [imp.values.get(i) for i in node.input if i]
    if any(isinstance(v, Step) for v in values):
        return True
    if not (node.op_type in ("MatMul", "Gemm") and len(values) >= 2 and isinstance(values[1], Const)
            and values[1].weight and len(values[1].dims) == 2):
        return False
    if isinstance(values[0], Data):  # another layer's output as the initial state of a loop at its first step
        return first_step_loop(imp) is not None
    return isinstance(values[0], Const) and not values[0].weight


def first_step_loop(imp: ImportContext) -> int | None:
    """The open loop, at its first step, whose module holds the current node (a recurrent kernel reading an
    initial state that another layer computed)."""
    where = scope_of(imp.node) + "/"
    for loop_id in reversed(range(len(imp.loops))):
        loop = imp.loops[loop_id]
        if loop.layer is None and loop.scope and where.startswith(loop.scope + "/") and loop.steps == {0}:
            return loop_id
    return None


def start_step(imp: ImportContext, x: Data, axis: int) -> bool:
    """Gather(xs, t, axis=1) of an input kernel's output: step t of a loop over xs. False if not one."""
    index = imp.const(imp.node.input[1], "index")
    doc = next((d for d in imp.doc.layers if d.name == x.layer), None)
    if (index.ndim != 0 or doc is None or doc.type != "Dense" or x.rank != 3 or x.batch != 0 or x.axes != (1, 2)
            or norm_axis(axis, 3) != 1 or x.sequence_of is not None):
        return False
    t = int(index.item())
    loop_id = next((i for i, loop in enumerate(imp.loops) if loop.kernel.layer == x.layer), None)
    if loop_id is None:
        imp.loops.append(Loop(x, scope_of(imp.node)))
        loop_id = len(imp.loops) - 1
    loop = imp.loops[loop_id]
    if loop.layer is not None:
        raise imp.error(f"reads a step of '{x.layer}' after its loop ended")
    steps = x.shape[0]
    t = t + steps if t < 0 else t
    loop.steps.add(t)
    imp.set_output(Step(loop_id, x.shape[1], t))
    return True


def step_op(imp: ImportContext) -> bool:
    """One node of a loop; a node that takes a step value out of the loop closes it first. False when the node
    is then not the loop's: the driver (importer.py) gives it to its op's handler."""
    node = imp.node
    loops = {v.loop for i in node.input if i and isinstance(v := imp.values.get(i), Step) and v.loop is not None}
    inside = node.op_type in ELEMENTWISE | PASSING | {"MatMul", "Gemm", "Slice", "Split", "Shape", "Unsqueeze", "Concat"} \
        or node.op_type in RNN_ACTIVATIONS
    leaving = {i for i in loops if not inside
               or (imp.loops[i].scope and not (scope_of(node) + "/").startswith(imp.loops[i].scope + "/"))}
    if leaving:  # the values of a loop read outside it (another module, or an op no loop has): it is over
        for name in node.input:
            if name and isinstance(value := imp.values.get(name), Step) and (not inside or value.loop in leaving):
                imp.values[name] = close(imp, name)
        if not inside or not is_step_node(imp):  # inside: another loop may start from what this one ended with
            return False
    values = [imp.values.get(i) if i else None for i in node.input]
    steps = [v for v in values if isinstance(v, Step)]
    op = node.op_type
    if op in PASSING:
        imp.set_output(values[0])
    elif op == "Shape":
        (x,) = steps
        imp.set_const(imp.np.array([BATCH, 1, x.width] if x.stacked else [BATCH, x.width], dtype=object))
    elif op in ("MatMul", "Gemm"):
        matmul(imp, values)
    elif op in ELEMENTWISE:
        combine(imp, values, list(node.input))
    elif op in RNN_ACTIVATIONS:
        (x,) = steps
        loop = bound(imp, x)
        absorb(loop, x.pending)
        loop.activations[op] += 1
        imp.set_output(x)
    elif op in ("Slice", "Split"):
        split(imp, steps[0])
    elif op == "Unsqueeze":
        axes = [norm_axis(a, 3) for a in imp.axes_input(1)]
        if axes != [1] or steps[0].stacked:
            raise imp.error("an Unsqueeze of a step value other than the stack of the states (axis 1)")
        imp.set_output(Step(steps[0].loop, steps[0].width, steps[0].last, True, steps[0].pending))
    else:  # Concat
        stack(imp, values)
    return True


def bound(imp: ImportContext, x: Step) -> Loop:
    if x.loop is None:
        raise imp.error("computes on the zero initial state of a loop before any step of it")
    return imp.loops[x.loop]


def matmul(imp: ImportContext, values: list[Any]) -> None:
    """The state times the recurrent kernel: MatMul, or Gemm (with the recurrent bias) as torch writes a Linear."""
    state, weight, bias = [*values, None][:3]
    attrs = imp.attrs()
    if (not isinstance(weight, Const) or not weight.weight or len(weight.dims) != 2
            or (isinstance(state, Const) and state.weight) or attrs.get("transA", 0)
            or (bias is not None and not (isinstance(bias, Const) and bias.weight))):
        raise imp.error("a MatMul in a loop that is not a state times a recurrent kernel (a weight matrix)")
    dims = tuple(reversed(weight.dims)) if attrs.get("transB", 0) else tuple(weight.dims)
    node = imp.node.name or imp.node.output[0]
    pending = [(node, "matmul", dims)] + ([(node + "+bias", "bias", int(sympy.prod(bias.dims)))] if bias else [])
    if isinstance(state, Data):  # step 0 from another layer's output: the initial state h
        tensor = imp.node.input[0]
        if len(imp.data(tensor).shape) != 1 or not same_size(state.shape[0], dims[0]):
            raise imp.error(f"a recurrent kernel of {dims[0]} units reads '{tensor}' of shape "
                            f"{tuple(map(str, state.shape))} as the initial state")
        pending.append(("initial:" + tensor, "initial_h", tensor))
        imp.set_output(Step(None, dims[1], 0, pending=tuple(pending)))
    elif isinstance(state, Step):
        if state.stacked:
            raise imp.error("a MatMul of a stacked step value")
        absorb(bound(imp, state), pending)
        imp.set_output(Step(state.loop, dims[1], state.last))
    else:  # the zero initial state times the kernel (step 0): counted once it meets the loop
        imp.set_output(Step(None, dims[1], 0, pending=tuple(pending)))


def absorb(loop: Loop, pending: list[tuple[str, str, Any]] | tuple[tuple[str, str, Any], ...]) -> None:
    for node, kind, value in pending:
        if node not in loop.absorbed:
            loop.absorbed.add(node)
            if kind.startswith("initial"):
                loop.initial.append((kind, value))
            else:
                (loop.matmuls if kind == "matmul" else loop.biases).append(value)


def combine(imp: ImportContext, values: list[Any], names: list[str]) -> None:
    steps = [v for v in values if isinstance(v, Step)]
    others = [v for v in values if not isinstance(v, Step)]
    outside = [(name, v) for name, v in zip(names, values, strict=False) if isinstance(v, Data)]
    if outside and (any(s.last != 0 for s in steps) or imp.node.op_type not in ("Add", "Mul")):
        raise imp.error("combines a step value of a loop with an activation from outside it (only an initial "
                        "state, read at the first step, is)")
    loop_ids = {s.loop for s in steps if s.loop is not None}
    if len(loop_ids) > 1:
        raise imp.error("combines the values of two loops")
    pending = [entry for s in steps for entry in s.pending]
    for name, v in outside:  # an initial state: an LSTM's c (f * c), or a GRU's h (z * h, r * h)
        if len(v.shape) != 1 or not same_size(v.shape[0], steps[0].width):
            raise imp.error(f"combines a step value of width {steps[0].width} with '{name}' of shape "
                            f"{tuple(map(str, v.shape))}: not an initial state")
        imp.data(name)
        pending.append(("initial:" + name, "initial", name))
    for v in others:
        if isinstance(v, Const) and v.weight:
            if imp.node.op_type != "Add":
                raise imp.error(f"{imp.node.op_type} of a step value by a weight: only a recurrent bias Add is read")
            pending.append((imp.node.name or imp.node.output[0], "bias", int(sympy.prod(v.dims))))
    widths = {sympy.sympify(s.width) for s in steps}
    if len(widths) != 1:
        raise imp.error(f"combines step values of widths {sorted(map(str, widths))}")
    loop_id = next(iter(loop_ids), None)
    if loop_id is None:  # still on the zero initial state (t = 0): what it computed waits for the loop
        imp.set_output(Step(None, steps[0].width, 0, pending=tuple(pending)))
        return
    absorb(imp.loops[loop_id], pending)
    imp.set_output(Step(loop_id, steps[0].width, max(s.last for s in steps), any(s.stacked for s in steps)))


def split(imp: ImportContext, x: Step) -> None:
    """A gate: Slice (or Split) of a step value along its last axis."""
    node = imp.node
    if x.stacked:
        raise imp.error("a Slice of a stacked step value")
    if node.op_type == "Slice":
        starts = [sympy.sympify(v) for v in imp.const(node.input[1], "starts").reshape(-1)]
        ends = [sympy.sympify(v) for v in imp.const(node.input[2], "ends").reshape(-1)]
        axes = [norm_axis(int(a), 2) for a in imp.const(node.input[3], "axes").reshape(-1)] if imp.optional_input(3) \
            else list(range(len(starts)))
        steps = [int(v) for v in imp.const(node.input[4], "steps").reshape(-1)] if imp.optional_input(4) else [1]
        if axes != [1] or steps != [1]:
            raise imp.error("a Slice of a step value other than a gate (a range of its last axis)")
        end = sympy.Min(ends[0], x.width)
        imp.set_output(Step(x.loop, end - starts[0], x.last, pending=x.pending))
        return
    attrs = imp.attrs()
    if norm_axis(attrs.get("axis", 0), 2) != 1:
        raise imp.error("a Split of a step value other than into gates (its last axis)")
    outputs = [o for o in node.output]
    if imp.optional_input(1):
        sizes = [sympy.sympify(v) for v in imp.const(node.input[1], "split").reshape(-1)]
    elif "split" in attrs:
        sizes = [sympy.sympify(v) for v in attrs["split"]]
    else:
        sizes = [sympy.sympify(x.width) / len(outputs)] * len(outputs)
    for index, size in enumerate(sizes):
        imp.set_output(Step(x.loop, size, x.last, pending=x.pending), index)


def stack(imp: ImportContext, values: list[Any]) -> None:
    """Concat(Unsqueeze(h_0, 1), ..., Unsqueeze(h_T-1, 1), axis=1): the sequence of states."""
    if norm_axis(imp.attrs()["axis"], 3) != 1 or not all(isinstance(v, Step) and v.stacked for v in values):
        raise imp.error("a Concat of step values other than the stack of every step's state (axis 1)")
    if [v.last for v in values] != list(range(len(values))) or len({v.loop for v in values}) != 1:
        raise imp.error("a Concat of step values that are not each step's state, in order")
    name = imp.node.output[0]
    imp.values[name] = values[-1]
    imp.set_output(close(imp, name, sequence=len(values)))


def close(imp: ImportContext, value_name: str, sequence: int | None = None) -> Data:
    """A step value of a loop is read outside it: the first time, check that the loop is one recurrent layer over
    every step and write it in place of the input kernel's Dense; then give the output the value is (the sequence,
    the last output, or a final state: return_state, loop_states.py)."""
    x = imp.values[value_name]
    loop = bound(imp, x)
    where = f"the loop over '{loop.kernel.layer}' (unrolled by the exporter)"
    if loop.layer is None:
        write_layer(imp, loop, x, where, sequence)
    elif sequence is not None:
        raise imp.error(f"{where}: stacks every step's state after its last state was read: the exporter writes the "
                        "sequence first")
    if x.last != len(loop.steps) - 1:
        raise imp.error(f"{where}: a value of step {x.last} is read outside the loop: only the last step's are")
    assert loop.layer is not None
    if sequence is not None:
        return loop.layer
    name = loop.layer.layer
    if loop.type_name == "LSTM" and is_cell_state(imp, value_name, loop.scope):
        return state_output(imp, name, 2, loop.units)
    if loop.layer.sequence_of is not None:  # the last h of a layer that returns the sequence: its state
        return state_output(imp, name, 1, loop.units)
    return loop.layer


def write_layer(imp: ImportContext, loop: Loop, x: Step, where: str, sequence: int | None) -> None:
    """Check that the loop is one recurrent layer over every step; write it in place of the input kernel's Dense."""
    kernel = loop.kernel
    steps = kernel.shape[0]
    if not sympy.sympify(steps).is_Integer:
        raise imp.error(f"{where} has {len(loop.steps)} steps, written for a time axis of {steps} at export: the "
                        "file computes that many steps at any length", hint="export with a fixed sequence length")
    count = int(steps)
    if loop.steps != set(range(count)) or x.last != count - 1:
        raise imp.error(f"{where} reads steps {sorted(loop.steps)[:5]}... of {count}, not every step in order")
    dense = imp.doc.layer(kernel.layer)
    if imp.spec_uses[kernel.layer]:
        raise imp.error(f"{where}: the input kernel '{kernel.layer}' is read outside the loop too")
    gates_units = int(kernel.shape[1])
    shapes = Counter(loop.matmuls)
    units = int(x.width) if sympy.sympify(x.width).is_Integer else None
    if units is None or units <= 0:
        raise imp.error(f"{where} ends on a value of width {x.width}")
    fields: dict[str, Any] = {"units": units}
    per_step = {shape: n / count for shape, n in shapes.items()}
    if per_step == {(units, units): 1} and gates_units == units:
        type_name, recurrent, activation_slots = "SimpleRNN", 0, (1,)
    elif per_step == {(units, 3 * units): 1} and gates_units == 3 * units:
        type_name, recurrent, activation_slots = "GRU", 3 * units, (2, 1)
    elif per_step == {(units, 2 * units): 1, (units, units): 1} and gates_units == 3 * units:
        type_name, recurrent, activation_slots = "GRU", 0, (2, 1)
        fields["reset_after"] = False
    elif per_step == {(units, 4 * units): 1} and gates_units == 4 * units:
        type_name, recurrent, activation_slots = "LSTM", 4 * units, (3, 2)
    else:
        raise imp.error(f"{where}: recurrent MatMuls {dict(shapes)} over {count} steps with a kernel of {gates_units} "
                        f"units: not one SimpleRNN, GRU or LSTM of {units} units")
    kernel_bias = dense.fields.get("use_bias", True) is not False
    if loop.biases:
        if Counter(loop.biases) != Counter({recurrent: count}) or not recurrent or not kernel_bias:
            raise imp.error(f"{where}: weights added in the loop {dict(Counter(loop.biases))}: not a recurrent bias "
                            "per step of a layer with an input bias")
        if type_name == "LSTM":
            fields["cudnn_compatible"] = True  # two bias vectors, as nn.LSTM and CuDNNLSTM have
    elif type_name == "GRU" and recurrent and kernel_bias:
        raise imp.error(f"{where}: a GRU (reset_after) with an input bias and no recurrent bias: no spec GRU has that")
    if not kernel_bias:
        fields["use_bias"] = False
    fields.update(loop_activations(imp, where, type_name, loop.activations, activation_slots, count))
    if sequence is not None:
        fields["return_sequences"] = True
    if kernel.reversed_axis == 1:
        fields["go_backwards"] = True
    initial = initial_state_inputs(imp, where, type_name, units, loop.initial)
    source = imp.doc.layer(kernel.layer).inputs or []
    imp.doc.layers = [d for d in imp.doc.layers if d.name != kernel.layer]
    source_data = Data(source[0], imp.shapes[source[0]], (1, 2), 0, 3)
    name = imp.unique(loop.scope.strip("/").replace("/", ".") or type_name.lower())
    shape = imp.add_layer(type_name, name, fields, [source_data, *initial], description="a loop unrolled by the exporter")
    loop.type_name, loop.units = type_name, units
    if sequence is not None:
        loop.layer = Data(name, shape, (1, 2), 0, 3, sequence_of=name)
    else:
        loop.layer = Data(name, shape, (1,), 0, 2)


def loop_activations(imp: ImportContext, where: str, type_name: str, seen: Counter[str], slots: tuple[int, ...],
                     count: int) -> dict[str, str]:
    """The activations of the cell from how many of each the loop applied: per step, an LSTM applies its
    recurrent activation 3 times and its activation 2 times, a GRU 2 and 1, a SimpleRNN its activation once."""
    per_step = {op: n / count for op, n in seen.items()}
    names: list[str] | None = None
    if len(slots) == 1 and list(per_step.values()) == [slots[0]]:
        names = [next(iter(per_step))]
    elif len(slots) == 2 and len(per_step) == 1 and list(per_step.values()) == [sum(slots)]:
        names = [next(iter(per_step))] * 2
    elif len(slots) == 2 and sorted(per_step.values()) == sorted(slots) and len(set(slots)) == 2:
        by_count = {n: op for op, n in per_step.items()}
        names = [by_count[slots[0]], by_count[slots[1]]]
    if names is None:
        raise imp.error(f"{where}: activations {dict(seen)} over {count} steps do not fit a {type_name} cell")
    fields: dict[str, str] = {}
    if type_name == "SimpleRNN":
        if names[0] != "Tanh":
            fields["activation"] = RNN_ACTIVATIONS[names[0]]
        return fields
    if names[0] != "Sigmoid":
        fields["recurrent_activation"] = RNN_ACTIVATIONS[names[0]]
    if names[1] != "Tanh":
        fields["activation"] = RNN_ACTIVATIONS[names[1]]
    return fields
