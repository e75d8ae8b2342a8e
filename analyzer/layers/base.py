"""What every layer module builds on: the spec base model, the result a handler
returns, and the context a handler uses to state requirements.

A handler is a plain function `(layer_spec, input_shapes, ctx) -> LayerResult`.
Shapes exclude the batch axis and are channels-last, as in Keras.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, NoReturn

import sympy
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator

from analyzer.constraints import Constraint, Kind, Note, always_or_never, failure
from analyzer.errors import Location, ShapeError
from analyzer.symbolic import ZERO, SizeSymbol, render

Shape = tuple[sympy.Expr, ...]
ShapeCheck = Callable[[Sequence[Shape]], None]


class LayerSpec(BaseModel):
    """Fields every layer has. Subclasses add Keras' own argument names."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, defer_build=True)

    type: str
    name: StrictStr | None = Field(default=None, pattern=r"^[A-Za-z0-9_.\-/]+$", max_length=200)
    inputs: list[StrictStr] | None = None
    trainable: StrictBool = True  # False moves all of the layer's params to non-trainable, as in Keras
    description: StrictStr | None = None

    # How many input tensors the layer takes: an int, or None for "two or more".
    arity: ClassVar[int | None] = 1

    @field_validator("inputs", mode="before")
    @classmethod
    def _one_input_as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def output_names(self) -> tuple[str, ...]:
        """The layer's outputs in Keras' order; a spec refers to output i as `LAYER:i` or `LAYER:NAME`."""
        return ("output",)

    def state_input_names(self) -> tuple[str, ...]:
        """Inputs the layer may take after its first, as its initial state (Keras' `initial_state`)."""
        return ()


@dataclass
class LayerResult:
    """Output shape and counts of one layer. Counts are sympy expressions.

    macs: multiply-accumulates of dot products (conv, dense, recurrent kernels).
    dot: 2n-1 per output of an n-term dot product; bias: 1 per biased output;
    activation: fused or standalone activations; other: normalization,
    elementwise, pooling and gate arithmetic. flops = dot + bias + activation + other.
    """

    output_shape: Shape
    trainable_params: sympy.Expr = ZERO
    non_trainable_params: sympy.Expr = ZERO
    macs: sympy.Expr = ZERO
    dot: sympy.Expr = ZERO
    bias: sympy.Expr = ZERO
    activation: sympy.Expr = ZERO
    other: sympy.Expr = ZERO
    more_outputs: tuple[Shape, ...] = ()  # the shapes of outputs 1, 2, ... of a layer with several (return_state)
    cached: sympy.Expr = ZERO  # past tokens read from a key/value cache (a causal attention under --phase decode)
    inactive_params: sympy.Expr = ZERO  # params one token does not use (a mixture of experts' unchosen experts)

    @property
    def output_shapes(self) -> tuple[Shape, ...]:
        return (self.output_shape, *self.more_outputs)


@dataclass
class LayerContext:
    """Per-layer services for handlers: the bias switch and requirement checks."""

    layer: str
    layer_type: str
    location: Location | None
    defaults: dict[sympy.Symbol, int]
    bias_mode: str = "spec"  # spec | on | off
    constraints: list[Constraint] = field(default_factory=list)
    field_locations: dict[str, Location | None] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    kv_cache: sympy.Expr | None = None  # --phase decode: the P past tokens a causal attention reads from its cache

    def use_bias(self, declared: bool) -> bool:
        """Whether the layer has a bias: as the spec says, or forced by --bias on/off."""
        return {"on": True, "off": False}.get(self.bias_mode, declared)

    def fail(self, message: str, field: str | None = None, hint: str | None = None) -> NoReturn:
        location = self.field_locations.get(field, self.location) if field else self.location
        raise ShapeError(message, location=location or self.location, layer=self.layer, layer_type=self.layer_type, hint=hint)

    def require(self, kind: Kind, lhs: sympy.Expr, rhs: sympy.Expr, rule: str, field: str | None = None,
                violation: str | None = None) -> None:
        """State `lhs >= rhs` (ge), `lhs == rhs` (eq) or `lhs is an integer` (int).

        `rule` says what must hold ("needs input length L >= kernel length 5"); `violation`
        what is wrong when it does not ("kernel length 5 exceeds input length L").
        """
        lhs, rhs = sympy.sympify(lhs), sympy.sympify(rhs)
        verdict = always_or_never(kind, lhs, rhs)
        if verdict is True:
            return
        location = self.field_locations.get(field, self.location) if field else self.location
        constraint = Constraint(kind, lhs, rhs, rule, self.layer, self.layer_type, location or self.location, violation)
        if verdict is None and constraint.holds(self.defaults):
            self.constraints.append(constraint)
            return
        if verdict is None:
            symbols = [SizeSymbol(s, int(v)) for s, v in self.defaults.items()]
            self.fail(failure(constraint, symbols, self.defaults, at_defaults=True), field)
        names = sorted(s.name for s in constraint.symbols)
        for_all = f" (at every value of {', '.join(names)})" if names else ""
        self.fail((violation or f"requirement not met: {rule}") + for_all, field)

    def require_at_least(self, value: sympy.Expr, minimum: sympy.Expr | int, rule: str, field: str | None = None,
                         violation: str | None = None) -> None:
        self.require("ge", value, sympy.sympify(minimum), rule, field, violation)

    def require_equal(self, a: sympy.Expr, b: sympy.Expr, rule: str, field: str | None = None,
                      violation: str | None = None) -> None:
        self.require("eq", a, b, rule, field, violation)

    def note(self, amount: sympy.Expr, text: str, field: str | None = None) -> None:
        """Something the user should know that is not an error, shown where `amount` is not 0
        at the report's symbol values; `text` may use {amount}."""
        amount = sympy.sympify(amount)
        if amount.is_zero:
            return
        location = self.field_locations.get(field, self.location) if field else self.location
        self.notes.append(Note(amount, text, self.layer, self.layer_type, location or self.location))


def shape_str(shape: Shape) -> str:
    return "(" + ", ".join(render(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def normalize_axis(axis: int, rank: int, ctx: LayerContext, field: str = "axis") -> int:
    """Keras axes count the batch axis as 0; shapes here exclude it."""
    full_rank = rank + 1
    resolved = axis + full_rank if axis < 0 else axis
    if not 1 <= resolved < full_rank:
        ctx.fail(f"axis {axis} is out of range for an input of rank {rank} (plus the batch axis)", field)
    return resolved - 1
