"""The only place sympy symbols are created, plus the few expression helpers
the layers share.

Design rules (see docs/conventions.md):
* every size symbol is `integer=True, positive=True`, so sympy can drop floors
  such as floor(L/1) and knows conv outputs are integers;
* `sympy.simplify` is never called: its cost doubles per stride-2 layer. Floors
  are folded by `floor_div` instead, which sympy itself never does.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache, reduce
from typing import Any

import sympy
from sympy.core.sorting import default_sort_key
from sympy.printing.str import StrPrinter

Expr = sympy.Expr
ZERO = sympy.Integer(0)
ONE = sympy.Integer(1)


@dataclass(frozen=True)
class SizeSymbol:
    """A declared spec symbol: the sympy symbol, its default and its lower bound."""

    symbol: sympy.Symbol
    default: int
    minimum: int = 1
    description: str | None = None

    @property
    def name(self) -> str:
        return self.symbol.name


def make_symbol(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, integer=True, positive=True)


def integer(value: int) -> Expr:
    return sympy.Integer(value)


class IdentityMemo:
    """Values remembered by the objects they were computed from (by identity, not equality).

    Looking sympy expressions up by equality compares whole trees, and on deep stride-2 stacks their
    hashes collide (2**k and 2**(k + 61) hash alike), so equality-keyed caches grew superlinear
    (issue 9). Each entry keeps its objects alive, so their ids stay theirs; full, the memo starts over."""

    def __init__(self, size: int = 65_536) -> None:
        self.size = size
        self.entries: dict[tuple[int, ...], tuple[tuple[Any, ...], Any]] = {}

    def get(self, *objects: Any) -> Any:
        """The value remembered for these objects, or None."""
        hit = self.entries.get(tuple(map(id, objects)))
        if hit is not None and all(a is b for a, b in zip(hit[0], objects, strict=True)):
            return hit[1]
        return None

    def put(self, objects: tuple[Any, ...], value: Any) -> Any:
        if len(self.entries) >= self.size:
            self.entries.clear()
        self.entries[tuple(map(id, objects))] = (objects, value)
        return value


def product(factors: Iterable[Expr | int]) -> Expr:
    factors = tuple(factors)
    hit = _PRODUCTS.get(*factors)
    if hit is not None:
        return hit
    return _PRODUCTS.put(factors, reduce(operator.mul, (sympy.Integer(f) if isinstance(f, int) else f for f in factors), ONE))


# Products by their factors' objects: a layer's output shape is multiplied out again and again
# (activations, memory, the JSON), and consecutive layers share one shape tuple. The same object
# back also lets render() and Report.value() find it by identity.
_PRODUCTS = IdentityMemo()


def floor_div(numerator: Expr | int, denominator: Expr | int) -> Expr:
    """floor(numerator / denominator), folding a nested floor.

    floor(y) + k == floor(y + k) for an integer k, and floor(floor(z)/n) ==
    floor(z/n) for a positive integer n, so floor((floor(y) + k)/n) is written
    floor((y + k)/n): stacked strided layers give one floor, not a tower.
    """
    numerator = sympy.sympify(numerator) if isinstance(numerator, int) else numerator
    denominator = sympy.sympify(denominator) if isinstance(denominator, int) else denominator
    if denominator == 1:
        return sympy.floor(numerator) if numerator.is_integer is not True else numerator
    if denominator.is_Integer and denominator > 0:
        terms = sympy.Add.make_args(sympy.expand(numerator))
        floors = [t for t in terms if isinstance(t, sympy.floor)]
        if len(floors) == 1:
            rest = sympy.Add(*(t for t in terms if t is not floors[0]))
            if rest.is_integer:
                return sympy.floor((floors[0].args[0] + rest) / denominator)
    return sympy.floor(numerator / denominator)


def ceil_div(numerator: Expr | int, denominator: int) -> Expr:
    """ceil(n/d) for a positive integer d, written as a floor so it folds too."""
    return floor_div(sympy.sympify(numerator) + (denominator - 1), denominator)


def free_symbols(expr: Expr) -> set[sympy.Symbol]:
    return set(getattr(expr, "free_symbols", set()))


class _NeedsSympy(Exception):
    """The expression holds something `_value` does not compute (a symbol without a value, a
    fractional power, a function other than floor / ceiling / Mod / Min / Max): substitute in sympy."""


def _value(expr: Expr, values: Mapping[sympy.Symbol, int]) -> int | Fraction:
    """Exact value of `expr` with Python ints and Fractions, walking the tree once.

    Substituting in sympy (xreplace) rebuilds every node through sympy's constructors and
    caches; on large specs that was most of the cost of showing numbers, and superlinear: the
    hashes of 2**k and 2**(k + 61) are equal, so the deep stride-2 stacks' coefficients collide
    in sympy's caches (issue 9)."""
    if expr.is_Integer:
        return int(expr)
    if expr.is_Rational:
        return Fraction(int(expr.p), int(expr.q))
    if expr.is_Symbol:
        if expr not in values:
            raise _NeedsSympy
        return int(values[expr])
    if expr.is_Add:
        total: int | Fraction = 0
        for arg in expr.args:
            total += _value(arg, values)
        return total
    if expr.is_Mul:
        result: int | Fraction = 1
        for arg in expr.args:
            result *= _value(arg, values)
        return result
    if expr.is_Pow:
        if not expr.exp.is_Integer:
            raise _NeedsSympy
        base, exponent = _value(expr.base, values), int(expr.exp)
        return base**exponent if exponent >= 0 else Fraction(base) ** exponent  # an int to a negative power is a float
    if isinstance(expr, sympy.floor):
        return math.floor(_value(expr.args[0], values))
    if isinstance(expr, sympy.ceiling):
        return math.ceil(_value(expr.args[0], values))
    if isinstance(expr, sympy.Mod):  # sympy's Mod, like Python's %, takes the sign of the divisor
        return _value(expr.args[0], values) % _value(expr.args[1], values)
    if isinstance(expr, (sympy.Min, sympy.Max)):
        return (min if isinstance(expr, sympy.Min) else max)(_value(a, values) for a in expr.args)
    raise _NeedsSympy


def exact_value(expr: Expr | int, values: Mapping[sympy.Symbol, int]) -> int | Fraction:
    """Exact value of `expr` at `values` as a Python int, or a Fraction when it is not an integer.

    ValueError (as `evaluate`) when a symbol has no value or the value is undefined (a division by zero)."""
    if isinstance(expr, int):
        return int(expr)
    try:
        result = _value(expr, values)
    except (_NeedsSympy, ZeroDivisionError):  # sympy decides: a value, or the error message
        value = _substitute(expr, values)
        return int(value.p) if value.is_Integer else Fraction(int(value.p), int(value.q))
    if isinstance(result, Fraction) and result.denominator == 1:
        return result.numerator
    return result


def _substitute(expr: Expr, values: Mapping[sympy.Symbol, int]) -> sympy.Rational:
    result = expr.xreplace({s: sympy.Integer(v) for s, v in values.items()})
    if not result.is_Rational:
        missing = sorted(s.name for s in free_symbols(result))
        raise ValueError(f"cannot evaluate {expr} (no value for {', '.join(missing) or '?'})")
    return result


def evaluate(expr: Expr | int, values: Mapping[sympy.Symbol, int]) -> sympy.Rational:
    """Exact value of `expr` at `values` (a sympy Rational; never a float)."""
    value = exact_value(expr, values)
    return sympy.Integer(value) if isinstance(value, int) else sympy.Rational(value.numerator, value.denominator)


def evaluate_int(expr: Expr | int, values: Mapping[sympy.Symbol, int]) -> int:
    result = exact_value(expr, values)
    if not isinstance(result, int):
        raise ValueError(f"{expr} is {result} (not an integer)")
    return result


def _degree(term: Expr) -> int:
    """Total degree of a product, counting a floor or ceiling as one factor."""
    _, rest = term.as_coeff_Mul()
    if rest is ONE:
        return 0
    return sum(int(e) if e.is_Integer else 1 for e in rest.as_powers_dict().values())


class _FormulaPrinter(StrPrinter):
    """sympy's str printer, with sums ordered by a cheap key (highest degree first,
    constants last) instead of sympy's `as_ordered_terms`, which costs milliseconds per
    formula and made printing dominate on large specs.

    Powers and functions (floor(...)**2, the shapes of deep layers) are printed once per object,
    and a term's sort key is built from its monomial's, once per object: a report's formulas and
    totals are made of the same few of them (issue 9)."""

    def __init__(self) -> None:
        super().__init__()
        self._printed = IdentityMemo()
        self._keys = IdentityMemo()

    def _as_ordered_terms(self, expr: Expr, order: str | None = None) -> list[Expr]:
        return sorted(expr.args, key=self._term_key)

    def _term_key(self, term: Expr) -> tuple[Any, ...]:
        """(term.is_Number, -_degree(term), default_sort_key(term)), the latter from the monomial's:
        sympy's Expr.sort_key of c*m is m's with c as its last entry."""
        if term.is_Number:
            return (True, 0, default_sort_key(term))
        coefficient, monomial = term.as_coeff_Mul()
        hit = self._keys.get(monomial)
        if hit is None:
            hit = self._keys.put((monomial,), (_degree(monomial), default_sort_key(monomial)))
        degree, key = hit
        return (False, -degree, (*key[:3], coefficient))

    def _print(self, expr: Any, **kwargs: Any) -> str:
        if kwargs or not isinstance(expr, (sympy.Pow, sympy.Function)):
            return super()._print(expr, **kwargs)
        hit = self._printed.get(expr)  # printing a node does not depend on its parent
        return hit if hit is not None else self._printed.put((expr,), super()._print(expr))


_PRINTER = _FormulaPrinter()


@lru_cache(maxsize=65_536)
def _render_cached(expr: Expr) -> str:
    return _PRINTER.doprint(_expanded_sum(expr) if expr.is_Add else sympy.expand(expr))


def _expanded(expr: Expr) -> Expr:
    """sympy.expand(expr), remembered by object: the terms of a report's totals share their
    factors (the shape of a group of layers, squared) across quantities."""
    hit = _EXPANDED.get(expr)
    return hit if hit is not None else _EXPANDED.put((expr,), sympy.expand(expr))


_EXPANDED = IdentityMemo()


def _expanded_sum(expr: Expr) -> Expr:
    """sympy.expand of a sum, for printing: each term expanded on its own (c * X as c times the
    remembered expansion of X) and like terms collected as Add.flatten collects them.

    Equal to sympy.expand(expr) term for term (tests/test_symbolic.py), but the Add is left
    unsorted (the printer orders the terms itself) and expand's second pass over the whole sum
    is skipped: on a 10,000-layer spec, expanding and re-sorting the totals grew faster than
    the spec (issue 9)."""
    constant = ZERO
    collected: dict[Expr, Expr] = {}
    for arg in expr.args:
        coefficient, rest = arg.as_coeff_Mul()
        for term in sympy.Add.make_args(_expanded(rest)):
            if not term.is_commutative or (term.is_Number and not term.is_Rational):
                return sympy.expand(expr)  # beyond the counts' arithmetic: sympy's own rules
            if term.is_Number:
                constant += coefficient * term
                continue
            c, key = term.as_coeff_Mul()
            c = coefficient * c
            collected[key] = collected[key] + c if key in collected else c
    terms = [] if constant.is_zero else [constant]
    for key, c in collected.items():  # as Add.flatten builds c*s
        if c.is_zero:
            continue
        if c is ONE:
            terms.append(key)
        elif key.is_Mul:
            terms.append(key._new_rawargs(c, *key.args))
        elif key.is_Add:
            terms.append(sympy.Mul(c, key, evaluate=False))
        else:
            terms.append(sympy.Mul(c, key))
    if len(terms) <= 1:
        return terms[0] if terms else ZERO
    return sympy.Add._from_args(terms)


# Rendered formulas by object identity, in front of the cache by equality: a report renders the
# same few expression objects many times (the 1,000-layer conv stack: 13,000 calls, 224 objects).
_RENDERED = IdentityMemo()


def render(expr: Expr | int) -> str:
    """A stable, readable string for a formula: expanded, never simplified."""
    if isinstance(expr, int):
        return str(expr)
    hit = _RENDERED.get(expr)
    return hit if hit is not None else _RENDERED.put((expr,), _render_cached(expr))
