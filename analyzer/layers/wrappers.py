"""Wrappers: Bidirectional (around SimpleRNN, LSTM or GRU) and TimeDistributed
(around any one-input layer). The wrapped layer is written inline:
`layer: {type: LSTM, units: 64}`, and is counted by its own handler.

Bidirectional: a forward and a backward copy, so twice the inner layer's params
and costs; the two outputs merge by merge_mode: concat (last axis 2H, free),
sum or mul (1 FLOP per output element, 'other'), ave (2: add, halve).
merge_mode None: two outputs, forward and backward (free). With the wrapped
layer's return_state, the states of the forward copy then of the backward one
follow, as in Keras: [output, forward_state_h, forward_state_c, backward_state_h,
backward_state_c] (LSTM; `forward_state` and `backward_state` for GRU and
SimpleRNN), or [forward, backward, forward_..., backward_...] with merge_mode None.
An initial state is the forward copy's states then the backward copy's.

TimeDistributed: the inner layer applied to each of the T slices of the input
(T, ...): its params once, its costs T times; output (T, *inner output).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any, Literal

import sympy
from pydantic import BeforeValidator, ValidationError, ValidationInfo

from analyzer.errors import did_you_mean
from analyzer.layers import backward as train
from analyzer.layers import saved
from analyzer.layers import tool_rules as tools
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, Construct, Ref
from analyzer.layers.recurrent import (
    RECURRENT_TYPES,
    InputNeeds,
    dropout_forward,
    input_needs,
    require_state_shapes,
    rnn_backward,
    torch_rnn_backward,
)
from analyzer.layers.recurrent_saved import Outputs, make_loop, module_saves
from analyzer.layers.registry import LAYERS, SAVES, TORCH_TRAINING, TRAINING, counted_as, register, saves_as, trains_as
from analyzer.symbolic import ZERO, product

if TYPE_CHECKING:
    from analyzer.export.plan import LayerPlan
    from analyzer.report import LayerRow

MERGE_FLOPS = {"concat": 0, "sum": 1, "mul": 1, "ave": 2}


def _wrapped_layer(value: Any, info: ValidationInfo) -> LayerSpec:
    """Validate the inline `layer: {type: ..., ...}` with its own type's model."""
    if isinstance(value, LayerSpec):
        return value
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise ValueError("layer must be a mapping with a 'type', e.g. {type: LSTM, units: 64}")
    kind = LAYERS.get(value["type"])
    if kind is None:
        raise ValueError(f"unknown layer type {value['type']!r}")
    if "inputs" in value:
        raise ValueError("a wrapped layer takes the wrapper's input: remove its 'inputs'")
    try:
        return kind.spec_model.model_validate(value, context=info.context)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            if err["type"] == "missing":
                problems.append(f"missing required field '{where}'")
            elif err["type"] == "extra_forbidden":
                hint = did_you_mean(where, kind.spec_model.model_fields)
                problems.append(f"unknown field '{where}'" + (f" ({hint})" if hint else ""))
            else:
                message = str(err["ctx"]["error"]) if "error" in err.get("ctx", {}) else err["msg"].removeprefix("Value error, ")
                problems.append(f"{where}: {message}" if where else message)
        raise ValueError(f"in the wrapped {value['type']}: " + "; ".join(problems)) from None


WrappedLayer = Annotated[LayerSpec, BeforeValidator(_wrapped_layer)]


def inner_result(inner: LayerSpec, shape: Shape, ctx: LayerContext) -> LayerResult:
    """The wrapped layer's result on `shape`, with its params moved to non-trainable if it says trainable: false."""
    result = LAYERS[inner.type].handler(inner, [shape], ctx)
    if not inner.trainable:
        result.non_trainable_params = result.non_trainable_params + result.trainable_params
        result.trainable_params = ZERO
    return result


def scaled(result: LayerResult, factor: Any, output_shape: Shape, other: Any = ZERO, params_factor: Any = 1) -> LayerResult:
    return LayerResult(
        output_shape,
        trainable_params=params_factor * result.trainable_params,
        non_trainable_params=params_factor * result.non_trainable_params,
        macs=factor * result.macs,
        dot=factor * result.dot,
        bias=factor * result.bias,
        activation=factor * result.activation,
        other=factor * result.other + other,
    )


class Bidirectional(LayerSpec):
    type: Literal["Bidirectional"]
    layer: WrappedLayer
    merge_mode: Literal["concat", "sum", "mul", "ave"] | None = "concat"

    def _states(self) -> tuple[str, ...]:
        inner = self.layer
        return inner.state_input_names() if isinstance(inner, RECURRENT_TYPES) else ()

    def output_names(self) -> tuple[str, ...]:
        outputs = ("output",) if self.merge_mode is not None else ("forward", "backward")
        if not getattr(self.layer, "return_state", False):
            return outputs
        return (*outputs, *(f"forward_{s}" for s in self._states()), *(f"backward_{s}" for s in self._states()))

    def state_input_names(self) -> tuple[str, ...]:
        return (*(f"forward_{s}" for s in self._states()), *(f"backward_{s}" for s in self._states()))


@register(Bidirectional)
def bidirectional(layer: Bidirectional, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    shape, states = inputs[0], inputs[1:]
    if not isinstance(layer.layer, RECURRENT_TYPES):
        ctx.fail(f"wraps a recurrent layer (SimpleRNN, LSTM, GRU), got {layer.layer.type}", "layer")
    one = inner_result(layer.layer, shape, ctx)
    if states:
        require_state_shapes(layer.state_input_names(), states, layer.layer.units, ctx)
    out = one.output_shape
    if layer.merge_mode == "concat":
        out = (*out[:-1], 2 * out[-1])
    merge = MERGE_FLOPS[layer.merge_mode] * product(out) if layer.merge_mode is not None else ZERO
    result = scaled(one, 2, out, other=merge, params_factor=2)
    forward_outputs = (out,) if layer.merge_mode is not None else (out, out)
    result.more_outputs = (*forward_outputs[1:], *one.more_outputs, *one.more_outputs)  # each copy's states
    return result


class TimeDistributed(LayerSpec):
    type: Literal["TimeDistributed"]
    layer: WrappedLayer


@register(TimeDistributed)
def time_distributed(layer: TimeDistributed, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    if len(shape) < 2:
        ctx.fail(f"expects an input of rank 2 or more (timesteps, ...), got rank {len(shape)}")
    if type(layer.layer).arity != 1:
        ctx.fail(f"wraps a layer with one input, got {layer.layer.type}", "layer")
    steps = shape[0]
    one = inner_result(layer.layer, shape[1:], ctx)
    return scaled(one, steps, (steps, *one.output_shape))

# -- what each counting tool counts on the torch export: the wrapped layer's module(s), by the wrapped layer's rule --

MERGE_MODE_OPS = {None: (), "concat": (), "sum": ("aten::add",), "mul": ("aten::mul",), "ave": ("aten::add", "aten::div")}


def wrapped_row(row: LayerRow, input_shape: tuple, output_shape: tuple, share: sympy.Expr, **changes: object) -> LayerRow:
    """The wrapped layer as a row of its own: its spec and type, the shapes of one call, `share` of the counts."""
    inner = row.spec.layer
    if changes:
        inner = inner.model_copy(update=changes)
    return replace(row, type=inner.type, spec=inner, input_shapes=(input_shape,), output_shape=output_shape,
                   counts=row.counts.scaled(share))


def bidirectional_rows(row: LayerRow) -> tuple[LayerRow, LayerRow]:
    """torch_modules' Bidirectional: the forward module and the backward one (go_backwards flipped), each on the whole
    input; concat halves the last output axis. The merge is the * + / operators or torch.cat, outside both modules."""
    out = row.output_shape
    if row.spec.merge_mode == "concat":
        out = (*out[:-1], out[-1] / 2)
    half = sympy.Rational(1, 2)
    inner = row.spec.layer
    return (wrapped_row(row, row.input_shapes[0], out, half),
            wrapped_row(row, row.input_shapes[0], out, half, go_backwards=not inner.go_backwards))


def time_distributed_row(row: LayerRow) -> tuple[sympy.Expr, LayerRow]:
    """torch_modules' TimeDistributed: the wrapped module called once on (batch·T, ...): (T, the call at batch 1)."""
    steps = row.input_shapes[0][0]
    return steps, wrapped_row(row, row.input_shapes[0][1:], row.output_shape[1:], sympy.Integer(1) / steps)


def fvcore_bidirectional_merge(row: LayerRow) -> tools.Outcome:
    """Bidirectional's merge: concat is aten::cat (ignored); sum, mul, ave are aten::add, aten::mul, aten::add and
    aten::div: unsupported."""
    text = tools.fvcore_unsupported(MERGE_MODE_OPS[row.spec.merge_mode])
    return tools.fvcore_outcome(ZERO, f"merge: {text}" if text else "")


def wrapper_rules(profile: str, merge: tools.Rule, native_gru: bool = True) -> dict[str, tools.Rule]:
    """The Bidirectional and TimeDistributed rules of a tool profile: the wrapped layer counted by the profile's own rule
    for it (looked up when a layer is counted, so a wrapper inside a wrapper works too), as the export calls it;
    `merge` counts Bidirectional's merge (outside both modules)."""

    def bidirectional(row: LayerRow) -> tools.Outcome:
        """Bidirectional -> torch_modules' Bidirectional: the wrapped layer's rule for its forward module and for its
        backward one (go_backwards flipped; the flips move data only), plus the merge_mode's rule (concat: torch.cat;
        sum, mul, ave: the + * / operators)."""
        forward, backward = bidirectional_rows(row)
        return tools.combine([(1, tools.rule_for(profile, forward, native_gru)(forward)),
                              (1, tools.rule_for(profile, backward, native_gru)(backward)), (1, merge(row))])

    def time_distributed(row: LayerRow) -> tools.Outcome:
        """TimeDistributed -> torch_modules' TimeDistributed: the wrapped module called once on (batch·T, ...), which
        every module hook and op formula counts T times over (they scale with the batch): T · the wrapped layer's rule."""
        steps, inner = time_distributed_row(row)
        return tools.combine([(steps, tools.rule_for(profile, inner, native_gru)(inner))])

    return {"Bidirectional": bidirectional, "TimeDistributed": time_distributed}


MERGE_RULES = {"torch": tools.torch_merge_free, "thop": tools.thop_merge_free, "ptflops": tools.ptflops_merge_free,
               "fvcore": fvcore_bidirectional_merge}
for _type in ("Bidirectional", "TimeDistributed"):
    counted_as(_type, **{p: wrapper_rules(p, merge)[_type] for p, merge in MERGE_RULES.items()},
               loop_gru={p: wrapper_rules(p, merge, native_gru=False)[_type] for p, merge in MERGE_RULES.items()})


# -- training (one optimizer step, whole batch; docs/conventions.md#training) --

MERGE_BACKWARD = {None: 0, "concat": 0, "sum": 0, "mul": 2, "ave": 1}  # per element of one copy's output


def _inner_rule(table: dict[str, train.TrainingRule], row: LayerRow) -> train.TrainingRule:
    rule = table.get(row.type)
    if rule is None:
        raise train.NoBackwardRule(f"no training rule for the wrapped layer type {row.type!r} yet", layer=row.name,
                                   layer_type=row.type)
    return rule


def _bidirectional_step(row: LayerRow, batch: sympy.Symbol, needs: train.Needs, torch: bool) -> train.Backward:
    """Both copies' steps, each on its own row (the whole input, half the counts) with its own initial states (the
    forward copy's first), added."""
    inputs = input_needs(row, needs)
    half = len(inputs.states) // 2
    backward = torch_rnn_backward if torch else rnn_backward
    # the outputs: the sequence (two with merge_mode None), then the forward copy's states, then the backward's
    inner = row.spec.layer
    per_copy = len(inner.cell.states) if getattr(inner, "return_state", False) else 0
    first = 2 if row.spec.merge_mode is None else 1
    read = [tuple(needs.output_needs(first + j * per_copy + i) for i in range(per_copy)) for j in (0, 1)]
    copies = [backward(copy, batch, needs.weights, InputNeeds(inputs.sequence, states),
                       **({} if torch else {"states_read": states_read}))
              for copy, states, states_read in zip(bidirectional_rows(row), (inputs.states[:half], inputs.states[half:]),
                                                   read, strict=True)]
    forward = None
    if not torch and any(c.forward is not None for c in copies):
        forward = batch * row.counts.flops + sum((dropout_forward(c, batch) for c in bidirectional_rows(row)), ZERO)
    return train.Backward(*(sum((getattr(c, part) for c in copies), ZERO)
                            for part in ("grad_input", "grad_weight", "grad_other")), forward=forward)


def train_bidirectional(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """The wrapped layer's rule (recurrent.rnn_backward) for the forward copy and for the backward one (go_backwards
    flipped: the flips move data only), both reading x: dL/dx = the sum of theirs, B·T·I adds. The merge's backward
    per element N of one copy's output: concat and sum 0 (the gradient goes to both as it is), mul 2 (g·y_rev,
    g·y), ave 1 (g/2, then to both); merge_mode None 0. Training mode: B times the inference forward (and the
    copies' dropout masks)."""
    step = _bidirectional_step(row, batch, needs, torch=False)
    merge_input = batch * product(row.input_shapes[0]) if input_needs(row, needs).sequence else ZERO
    elements = batch * product(bidirectional_rows(row)[0].output_shape)
    return replace(step, grad_input=step.grad_input + merge_input,
                   grad_other=step.grad_other + MERGE_BACKWARD[row.spec.merge_mode] * elements)


def torch_train_bidirectional(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """torch_modules' Bidirectional: the wrapped layer's FlopCounterMode rule (recurrent.torch_rnn_backward) for each
    copy; the merge (torch.cat, the + * / operators) and the sum of the two dL/dx have no formula."""
    return _bidirectional_step(row, batch, needs, torch=True)


def time_distributed_training_row(row: LayerRow) -> tuple[sympy.Expr, LayerRow]:
    """(T, the wrapped layer's row for one slice), its parameters whole (a rule may count them; time_distributed_row
    shares every count out over the T slices)."""
    steps, inner = time_distributed_row(row)
    counts = replace(inner.counts, trainable_params=row.counts.trainable_params,
                     non_trainable_params=row.counts.non_trainable_params)
    return steps, replace(inner, counts=counts)


def train_time_distributed(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """Keras (and the export) run the wrapped layer once on the (B·T, ...) slices: its own rule with B·T samples,
    its training-mode forward included (a BatchNormalization's statistics over B·T·...)."""
    steps, inner = time_distributed_training_row(row)
    return _inner_rule(TRAINING, inner)(inner, batch * steps, needs)


def torch_train_time_distributed(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """torch_modules' TimeDistributed calls the wrapped module once on (B·T, ...): its FlopCounterMode rule with
    B·T samples."""
    steps, inner = time_distributed_training_row(row)
    return _inner_rule(TORCH_TRAINING, inner)(inner, batch * steps, needs)


trains_as("Bidirectional", rule=train_bidirectional, torch=torch_train_bidirectional)
trains_as("TimeDistributed", rule=train_time_distributed, torch=torch_train_time_distributed)


# -- export: the wrapped layer's own builder, inside the framework's wrapper --

def _torch_wrapped(plan: LayerPlan, input_shape: tuple[int, ...], output_shape: tuple[int, ...], **changes: Any) -> Construct:
    return TORCH_BUILDERS.build(plan.wrapped(input_shape, output_shape, **changes))


@TORCH_BUILDERS.register("Bidirectional")
def torch_bidirectional(layer: Bidirectional, plan: LayerPlan) -> Construct:
    """Two copies of the wrapped recurrent layer's module, the backward one with go_backwards flipped (as Keras)."""
    inner = layer.layer
    return Construct.of(
        "Bidirectional",
        forward_layer=_torch_wrapped(plan, plan.input_shapes[0], plan.output_shape),
        backward_layer=_torch_wrapped(plan, plan.input_shapes[0], plan.output_shape, go_backwards=not inner.go_backwards),
        merge_mode=layer.merge_mode if layer.merge_mode is not None else Ref("None"),
        return_sequences=inner.return_sequences,
        trainable=None if inner.trainable else False,
        return_state=inner.return_state or None,
    )


@TORCH_BUILDERS.register("TimeDistributed")
def torch_time_distributed(layer: TimeDistributed, plan: LayerPlan) -> Construct:
    """The wrapped layer's module on (batch·T, ...): its costs T times, its params once."""
    return Construct.of("TimeDistributed", layer=_torch_wrapped(plan, plan.input_shape[1:], plan.output_shape[1:]),
                        trainable=None if layer.layer.trainable else False)


def _keras_wrapped(plan: LayerPlan, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> Construct:
    """The wrapped layer's own construct (a keras.layers object given to the wrapper), trainable: false kept."""
    construct = KERAS_BUILDERS.build(plan.wrapped(input_shape, output_shape))
    if not plan.spec.layer.trainable:
        construct = Construct(construct.cls, {**construct.kwargs, "trainable": False}, construct.call)
    return construct


@KERAS_BUILDERS.register("Bidirectional")
def keras_bidirectional(layer: Bidirectional, plan: LayerPlan) -> Construct:
    if layer.layer.go_backwards:
        raise plan.error("Keras 3's Bidirectional refuses a wrapped layer with go_backwards: true (it builds the "
                         "backward copy with the same go_backwards)", hint="drop go_backwards from the wrapped layer")
    return Construct.of("Bidirectional", layer=_keras_wrapped(plan, plan.input_shapes[0], plan.output_shape),
                        merge_mode=layer.merge_mode if layer.merge_mode is not None else Ref("None"))


@KERAS_BUILDERS.register("TimeDistributed")
def keras_time_distributed(layer: TimeDistributed, plan: LayerPlan) -> Construct:
    return Construct.of("TimeDistributed", layer=_keras_wrapped(plan, plan.input_shape[1:], plan.output_shape[1:]))


# -- saved for the backward (docs/conventions.md#training, Memory) --

def _copy_saved(item: saved.Saved, side: str, state_offset: int, output: saved.Saved) -> saved.Saved:
    """One copy's Saved as the Bidirectional's: its states' inputs shifted past the forward copy's, its own tensors
    named by side, its output `output`."""
    if item.tensor == "input":
        return saved.Saved.input(item.index + state_offset if item.index else 0)
    if item.tensor == "output":
        return output
    return saved.Saved.new(f"{side} {item.tag}", item.elements, item.dtype)


def saves_bidirectional(ctx: saved.SaveContext) -> saved.Saves:
    """torch_modules' Bidirectional: the wrapped module's rule (recurrent_saved) for the forward copy, and for the
    backward one with go_backwards flipped (its x.flip(1) a copy of its own; the two copies' own tensors apart,
    x itself counted once), each on its own initial states. With return_sequences the backward output is flipped
    back, a copy no op keeps. The merge: concat, sum and ave keep nothing (the halving divides by a number); mul
    keeps each side's output when the other needs a gradient (the flipped copy on the backward side; a native GRU's
    last-step output is a view of its whole sequence output, B·T·H). merge_mode None: the outputs are the forward
    output and the (flipped) backward one; then each copy's states with return_state."""
    spec, inner = ctx.spec, ctx.spec.layer
    x, states = ctx.inputs[0], ctx.inputs[1:]
    half = len(states) // 2
    steps = ctx.row.input_shapes[0][0]
    out_elements = ctx.batch * (steps * inner.units if inner.return_sequences else inner.units)
    kept: list[saved.Saved] = []
    sides = []
    for side, own_states, backwards in (("forward", states[:half], inner.go_backwards),
                                        ("backward", states[half:], not inner.go_backwards)):
        loop = make_loop(inner, ctx.row.input_shapes[0], ctx.batch, (x, *own_states), ctx.trains, backwards)
        result = module_saves(loop)
        storage = result.storage if result.storage is not None else out_elements
        output = saved.OUTPUT if side == "forward" and spec.merge_mode is None else \
            saved.Saved.new(f"{side} output", storage)
        offset = 0 if side == "forward" else half
        kept += [_copy_saved(item, side, offset, output) for item in result.saved]
        grad = ctx.trains or x.requires_grad or any(s.requires_grad for s in own_states)
        sides.append((result, output, [_copy_saved(item, side, offset, output) for item in result.states], grad))
    (forward, y, forward_states, y_grad), (backward, y_rev, backward_states, y_rev_grad) = sides
    if inner.return_sequences:  # flip keeps the layout (a native GRU's time-major one too)
        y_rev = saved.Saved.new("backward flipped", out_elements)
    states_out = (*forward_states, *backward_states) if inner.return_state else ()
    if spec.merge_mode is None:
        return Outputs(tuple(kept), forward.layout, storage=forward.storage, more=(y_rev, *states_out),
                       more_layouts=(backward.layout,))
    if spec.merge_mode == "mul":
        kept += [y_rev] if y_grad else []
        kept += [y] if y_rev_grad else []
    # sum, mul, ave: elementwise, in the operands' layout (TensorIterator); torch.cat allocates a contiguous one
    layout = forward.layout if spec.merge_mode != "concat" and forward.storage is None else None
    return Outputs(tuple(kept), layout, more=states_out)


def saves_time_distributed(ctx: saved.SaveContext) -> saved.Saves:
    """torch_modules' TimeDistributed: the wrapped layer's own rule on x.reshape(B·T, ...) (a view when the batch and
    time axes merge, else a copy, which is what the wrapped layer then keeps of its input), with B·T as its batch;
    y.reshape(B, T, ...) splits an axis, always a view of the wrapped layer's output (of the folded copy, when the
    wrapped layer's output is a view of its input)."""
    steps, inner_row = time_distributed_row(ctx.row)
    LAYERS[inner_row.type]  # imports the wrapped type's module, which declares its rule
    rule = SAVES.get(inner_row.type)
    if rule is None:
        raise saved.NotCounted(f"TimeDistributed around {inner_row.type}: no saved-activation rule for it")
    x = ctx.inputs[0]
    view = x.mergeable((0, 1))
    if view:  # axes 0 and 1 lie together in memory (or one is of size 1): the merged axis takes the other's place
        gone = 0 if x.world.batch_one or x.shape[0] == 1 else 1
        order = tuple(a - 1 if a > 1 else 0 for a in x.layout.order if a != gone)
        layout = saved.Layout(order, frozenset(a - 1 for a in x.layout.partial if a > 1),
                              frozenset(a - 1 for a in x.layout.broadcast if a > 1))
    else:
        layout = saved.channels_last(x.rank - 1)
    # the merged axis B·T is 1 only at B = T = 1: with T > 1, no decision inside depends on B = 1
    world = x.world if steps == 1 else saved.World()
    folded = saved.Tensor((ctx.batch * steps, *x.shape[2:]), layout, x.requires_grad, world)
    result = rule(saved.SaveContext(inner_row, ctx.batch * steps, (folded,), ctx.trains))
    if getattr(result, "more", ()):
        raise saved.NotCounted(f"TimeDistributed around a {inner_row.type} with several outputs")
    inner_layout = result.layout
    if inner_layout is not None and 0 in inner_layout.broadcast:
        raise saved.NotCounted(f"TimeDistributed around {inner_row.type}: an output broadcast on its batch axis")
    out_layout = None
    if inner_layout is not None:  # split axis 0 into (0, 1), the others one on; a narrowed axis 0 stays outermost
        order = tuple(b for a in inner_layout.order for b in ((0, 1) if a == 0 else (a + 1,)))
        out_layout = saved.Layout(order, frozenset(a + 1 if a else 0 for a in inner_layout.partial),
                                  frozenset(a + 1 for a in inner_layout.broadcast))

    if view:
        return saved.Saves(result.saved, out_layout, result.alias, result.storage)
    # the folded copy is a tensor of the wrapper's own; an output that is a view of it (Flatten) has it as storage
    copy = saved.OUTPUT if result.alias is not None else saved.Saved.new("folded input", x.elements)
    kept = tuple(copy if item.tensor == "input" else item for item in result.saved)
    if result.alias is not None:
        return saved.Saves(kept, out_layout, storage=x.elements)
    return saved.Saves(kept, out_layout, storage=result.storage)


saves_as("Bidirectional", rule=saves_bidirectional)
saves_as("TimeDistributed", rule=saves_time_distributed)
