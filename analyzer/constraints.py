"""Conditions a spec's sizes must meet, and the domain of symbol values they allow.

Layers state requirements (a valid convolution needs input >= kernel, a Reshape
needs equal element counts, a size expression must stay a positive integer).
A requirement that holds for every value is dropped, one that can never hold is
an error at once, and the rest are kept: they define where the formulas are
valid ("valid for L >= 12") and are checked again for every `--set`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import sympy

from analyzer.errors import DomainError, Location
from analyzer.symbolic import SizeSymbol, exact_value, render

Kind = Literal["ge", "eq", "int"]
_SEARCH_LIMIT = 2**64

MAX_VALUE_BITS = 10_000
"""No size or count may exceed 2**MAX_VALUE_BITS (about 3,000 digits): Python refuses to turn
integers of over 4,300 digits into text, and no network comes near (docs/errors.md, caps)."""


def _value_text(expr: sympy.Expr, values: Mapping[sympy.Symbol, int]) -> str:
    try:
        return number_text(exact_value(expr, values))
    except ValueError:
        return "undefined (a division by zero)"


def number_text(value: sympy.Rational | Fraction | int) -> str:
    """An exact number for a message, or its size when it is too long to print."""
    value = sympy.Rational(value) if isinstance(value, sympy.Basic) else Fraction(value)
    p, q = (value.p, value.q) if isinstance(value, sympy.Rational) else (value.numerator, value.denominator)
    if max(abs(p), q).bit_length() > MAX_VALUE_BITS:
        return f"a number of more than {MAX_VALUE_BITS} bits"
    return str(value)


@dataclass(frozen=True)
class Constraint:
    """`lhs >= rhs`, `lhs == rhs`, or `lhs is an integer`, stated by one layer."""

    kind: Kind
    lhs: sympy.Expr
    rhs: sympy.Expr
    rule: str  # the requirement in words, e.g. "input height L - 7 >= kernel height 5"
    layer: str | None = None
    layer_type: str | None = None
    location: Location | None = None
    violation: str | None = None  # the rule broken, in words: "kernel height 5 exceeds input height L - 7"

    def holds(self, values: Mapping[sympy.Symbol, int]) -> bool:
        try:  # Python ints and Fractions: the domain search calls this many times per constraint
            left = exact_value(self.lhs, values)
            right = exact_value(self.rhs, values)
        except ValueError:  # undefined there: a division by zero
            return False
        if self.kind == "int":
            return isinstance(left, int)
        return left >= right if self.kind == "ge" else left == right

    @property
    def symbols(self) -> set[sympy.Symbol]:
        return set(self.lhs.free_symbols) | set(self.rhs.free_symbols)

    def condition(self) -> str:
        if self.kind == "int":
            return f"{render(self.lhs)} is an integer"
        op = ">=" if self.kind == "ge" else "=="
        return f"{render(self.lhs - self.rhs)} {op} 0" if self.rhs.free_symbols else f"{render(self.lhs)} {op} {render(self.rhs)}"


@dataclass(frozen=True)
class Note:
    """Not an error, but worth telling: shown where `amount` is non-zero at the report's values.

    `text` may use {amount}; e.g. a strided 'valid' convolution whose stride does not divide
    its input leaves the last {amount} input positions unread (floor semantics, as in Keras).
    """

    amount: sympy.Expr
    text: str
    layer: str | None = None
    layer_type: str | None = None
    location: Location | None = None

    def at(self, values: Mapping[sympy.Symbol, int]) -> str | None:
        try:
            amount = exact_value(self.amount, values)
        except ValueError:  # undefined there; the constraints refuse such values
            return None
        if amount == 0:
            return None
        where = f"{self.location}: " if self.location else ""
        who = f"layer '{self.layer}' ({self.layer_type}): " if self.layer else ""
        return where + who + self.text.replace("{amount}", number_text(amount))


def always_or_never(kind: Kind, lhs: sympy.Expr, rhs: sympy.Expr) -> bool | None:
    """True if the requirement holds for all symbol values, False if for none, None if it depends."""
    if kind == "int":
        if lhs.is_Rational:
            return bool(lhs.is_Integer)
        if _divides_by_a_symbol(lhs):
            # sympy cannot tell d·kv/h an integer for every positive d, kv, h (it is not), and asking it costs tens
            # of milliseconds per expression (an LLM config's head sizes, at every cold start): it depends
            return None
        return True if lhs.is_integer else None

    difference = sympy.expand(lhs - rhs)
    if difference.is_Number:
        return bool(difference >= 0) if kind == "ge" else bool(difference == 0)
    if kind == "ge" and difference.is_nonnegative:
        return True
    return None


def _divides_by_a_symbol(expr: sympy.Expr) -> bool:
    """Does expr hold a negative power of something with a symbol in it (outside a floor's argument, whose value is
    an integer whatever it holds)."""
    if isinstance(expr, (sympy.floor, sympy.ceiling)) or expr.is_Atom:
        return False
    if expr.is_Pow and expr.exp.is_negative and expr.base.free_symbols:
        return True
    return any(_divides_by_a_symbol(arg) for arg in expr.args)


def symbol_bound(constraint: Constraint, symbol: SizeSymbol, values: Mapping[sympy.Symbol, int]) -> str | None:
    """For a one-symbol constraint, the allowed values of that symbol in words ("L >= 12").

    Shapes never shrink when an input grows (floors of increasing linear maps), so a
    `>=` constraint is monotone in its symbol: search its smallest valid value.
    """
    s = symbol.symbol
    if constraint.symbols != {s}:
        return None
    if constraint.kind == "eq":
        difference = sympy.expand(constraint.lhs - constraint.rhs)
        poly = sympy.Poly(difference, s) if difference.is_polynomial(s) else None
        if poly is not None and poly.degree() == 1:
            root = -poly.all_coeffs()[1] / poly.all_coeffs()[0]
            if root.is_Integer and root >= symbol.minimum:
                return f"{s.name} == {root}"
            return f"no integer {s.name} >= {symbol.minimum}" if root.is_Integer else f"no integer {s.name}"
        return None
    if constraint.kind == "int":
        return None
    bound = lower_bound(constraint, symbol, values)
    if bound is None:
        return None
    return f"no {s.name} up to 2**64" if bound > _SEARCH_LIMIT else f"{s.name} >= {bound}"


def lower_bound(constraint: Constraint, symbol: SizeSymbol, values: Mapping[sympy.Symbol, int]) -> int | None:
    """The smallest value of `symbol` meeting a one-symbol `>=` constraint (None: every value does).

    Shapes never shrink when an input grows (floors of increasing linear maps), so
    such a constraint is monotone in its symbol: double, then bisect.
    """
    s = symbol.symbol
    if constraint.kind != "ge" or constraint.symbols != {s}:
        return None

    def ok(v: int) -> bool:
        return constraint.holds({**values, s: v})

    low = symbol.minimum
    if ok(low):
        return None
    high = max(low + 1, 2 * low)
    while not ok(high):
        if high > _SEARCH_LIMIT:
            return high
        low, high = high, 2 * high
    while high - low > 1:  # invariant: not ok(low), ok(high)
        middle = (low + high) // 2
        low, high = (low, middle) if ok(middle) else (middle, high)
    return high


def _implied_by_minimum(constraint: Constraint, symbols: Sequence[SizeSymbol]) -> bool:
    """A one-symbol `>=` constraint that holds at the symbol's declared minimum holds above it too."""
    if constraint.kind != "ge" or len(constraint.symbols) != 1:
        return False
    (symbol,) = [s for s in symbols if s.symbol in constraint.symbols]
    return constraint.holds({symbol.symbol: symbol.minimum})


def domain(constraints: Sequence[Constraint], symbols: Sequence[SizeSymbol], values: Mapping[sympy.Symbol, int]) -> list[str]:
    """The allowed values in a few lines: per symbol its tightest lower bound, with the rule
    that sets it, then every constraint that is not a one-symbol lower bound."""
    tightest: dict[sympy.Symbol, tuple[int, Constraint]] = {}
    others = []
    for constraint in constraints:
        bounds = [(s, b) for s in symbols if (b := lower_bound(constraint, s, values)) is not None]
        if not bounds and _implied_by_minimum(constraint, symbols):
            continue
        if not bounds:
            others.append(describe(constraint, symbols, values))
            continue
        symbol, bound = bounds[0]
        if symbol.symbol not in tightest or bound > tightest[symbol.symbol][0]:
            tightest[symbol.symbol] = (bound, constraint)
    lines = [describe(constraint, symbols, values) for _, constraint in tightest.values()]
    declared = [f"{s.name} >= {s.minimum}  [declared minimum of {s.name}]"
                for s in symbols if s.minimum > 1 and s.symbol not in tightest]
    return declared + lines + others


def describe(constraint: Constraint, symbols: Sequence[SizeSymbol], values: Mapping[sympy.Symbol, int]) -> str:
    """One line for reports: the allowed values, then the rule and who states it."""
    bound = None
    for symbol in symbols:
        bound = bound or symbol_bound(constraint, symbol, values)
    who = f"layer '{constraint.layer}' ({constraint.layer_type}): " if constraint.layer else ""
    head = bound or constraint.condition()
    return f"{head}  [{who}{constraint.rule}]"


def failure(constraint: Constraint, symbols: Sequence[SizeSymbol], values: Mapping[sympy.Symbol, int],
            at_defaults: bool = False) -> str:
    """Why `constraint` fails at `values`, in words, with the values involved and the valid range.

    e.g. "kernel height 5 exceeds input height L - 7 at L=11 (L - 7 = 4); valid only for L >= 12"
    """
    message = constraint.violation or f"requirement not met: {constraint.rule}"
    used = [s for s in symbols if s.symbol in constraint.symbols]
    if not used:
        return message
    at = ", ".join(f"{s.name}={values[s.symbol]}" for s in used)
    message += f" at the default {at}" if at_defaults else f" at {at}"
    sides = (constraint.lhs,) if constraint.kind == "int" else (constraint.lhs, constraint.rhs)
    shown = [f"{render(e)} = {_value_text(e, values)}" for e in sides if e.free_symbols and not e.is_Symbol]
    if shown:
        message += f" ({', '.join(shown)})"
    bounds = [b for s in symbols if (b := symbol_bound(constraint, s, values))]
    if bounds:
        message += f"; {bounds[0]} satisfies it" if bounds[0].startswith("no ") else f"; valid only for {bounds[0]}"
    return message


def check(constraints: Sequence[Constraint], symbols: Sequence[SizeSymbol], values: Mapping[sympy.Symbol, int]) -> None:
    """Raise DomainError for the first constraint that fails at `values`."""
    for constraint in constraints:
        if constraint.holds(values):
            continue
        raise DomainError(failure(constraint, symbols, values), location=constraint.location, layer=constraint.layer,
                          layer_type=constraint.layer_type)
