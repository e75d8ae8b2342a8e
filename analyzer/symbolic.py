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
from sympy.printing.precedence import PRECEDENCE, precedence
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
        if hit is None:
            return None
        for a, b in zip(hit[0], objects):  # the same ids, and still the same objects (the entry keeps them alive)
            if a is not b:
                return None
        return hit[1]

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
    expanded = _expanded(expr)
    printed = _polynomial_str(expanded)
    return printed if printed is not None else _PRINTER.doprint(expanded)


_MUL_PRECEDENCE = PRECEDENCE["Mul"]


def _polynomial_str(expr: Expr) -> str | None:
    """What _PRINTER prints for an expanded sum of rational multiples of monomials without denominators, built
    from each monomial's printed factors: sympy's printer spends most of its time deciding precedences and
    signs anew for every term (issue 16: the training step prints 7 formulas per layer). None for anything else
    (sympy prints it); tests/test_symbolic.py checks both print alike."""
    terms = sorted(expr.args, key=_PRINTER._term_key) if expr.is_Add else [expr]
    out: list[str] = []
    for term in terms:
        printed = _term_str(term)
        if printed is None:
            return None
        if printed.startswith("-"):
            out += ["-", printed[1:]]
        else:
            out += ["+", printed]
    sign = out.pop(0)
    return ("" if sign == "+" else sign) + " ".join(out)


def _term_str(term: Expr) -> str | None:
    if term.is_Rational:
        return str(term)  # sympy prints p/q as p/q
    coefficient, monomial = term.as_coeff_Mul()
    if not coefficient.is_Rational or monomial.is_Number:
        return None
    factors = _monomial_str(monomial)
    if factors is None:
        return None
    sign = "-" if coefficient < 0 else ""
    p, q = abs(int(coefficient.p)), int(coefficient.q)
    return f"{sign}{'' if p == 1 else f'{p}*'}{factors}{'' if q == 1 else f'/{q}'}"


def _monomial_str(monomial: Expr) -> str | None:
    """The factors of a monomial as _print_Mul joins them (sorted, each parenthesized for a product), remembered
    by the factors' objects; None where _print_Mul takes another branch (a denominator, a number or an
    unevaluated integer power among the factors, a factor of no higher precedence than a product, which
    _print_Mul parenthesizes or not by the sign of the term)."""
    factors = monomial.args if monomial.is_Mul else (monomial,)
    hit = _MONOMIALS.get(*factors)
    if hit is not None:
        return hit or None
    printed = ""
    ordered = monomial.as_ordered_factors() if monomial.is_Mul else [monomial]
    if all(_plain_factor(f) for f in ordered):
        printed = "*".join(_PRINTER._print(f) for f in ordered)
    _MONOMIALS.put(factors, printed)
    return printed or None


def _plain_factor(factor: Expr) -> bool:
    if factor.is_Number or factor.is_Add or not factor.is_commutative or precedence(factor) <= _MUL_PRECEDENCE:
        return False
    if factor.is_Pow:
        return not (factor.exp.as_coeff_Mul()[0] < 0 or all(a.is_Integer for a in factor.args))
    return True


_MONOMIALS = IdentityMemo()


def _expanded(expr: Expr) -> Expr:
    """sympy.expand(expr), remembered by object: the terms of a report's totals share their
    factors (the shape of a group of layers, squared) across quantities."""
    hit = _EXPANDED.get(expr)
    if hit is not None:
        return hit
    if expr.is_Add:
        value = _expanded_sum(expr)
    elif expr.is_Mul or (expr.is_Pow and expr.exp.is_Integer and expr.exp > 1 and expr.base.is_Add):
        value = _expanded_product(expr)
    else:
        value = sympy.expand(expr)
    return _EXPANDED.put((expr,), value)


_EXPANDED = IdentityMemo()


class _BeyondCounts(Exception):
    """A term outside the counts' arithmetic (a float, a non-commutative or a negative power): sympy.expand
    decides."""


Coefficient = int | Fraction


def _number(value: Expr) -> Coefficient:
    if value.is_Integer:
        return int(value)
    if value.is_Rational:
        return Fraction(int(value.p), int(value.q))
    raise _BeyondCounts


def _sympy_number(value: Coefficient) -> Expr:
    if isinstance(value, Fraction):
        return sympy.Integer(value.numerator) if value.denominator == 1 else sympy.Rational(value.numerator, value.denominator)
    return sympy.Integer(value)


def _terms(expr: Expr) -> tuple[tuple[Coefficient, Expr], ...]:
    """The expanded terms of expr as (coefficient, monomial) pairs, the coefficient a Python int or Fraction (sympy's
    Rational arithmetic is most of the cost of collecting a total's terms), remembered by object."""
    hit = _TERMS.get(expr)
    if hit is not None:
        return hit
    pairs = []
    for term in sympy.Add.make_args(_expanded(expr)):
        if not term.is_commutative:
            raise _BeyondCounts
        if term.is_Number:
            pairs.append((_number(term), ONE))
            continue
        c, m = term.as_coeff_Mul()
        pairs.append((_number(c), m))
    return _TERMS.put((expr,), tuple(pairs))


_TERMS = IdentityMemo()


def _expanded_product(expr: Expr) -> Expr:
    """sympy.expand of a product (or a positive integer power of a sum), multiplied out from the
    remembered expansions of its factors: the training step's formulas are B times a layer's
    forward shapes, and sympy's own expand walks each of them through its hint machinery anew
    (issue 16: most of the time --training added on the 1,000-layer specs)."""
    factors = [expr.base] * int(expr.exp) if expr.is_Pow else list(expr.args)
    for factor in factors:
        if factor.is_Pow and not (factor.exp.is_Integer and factor.exp > 0):
            return sympy.expand(expr)  # a denominator: expand's rules for it are its own
    try:
        pairs: list[tuple[Coefficient, Expr]] = [(1, ONE)]
        for factor in factors:
            if factor.is_Number:
                number = _number(factor)
                pairs = [(c * number, m) for c, m in pairs]
                continue
            terms = _terms(factor)
            pairs = [(c1 * c2, m2 if m1 is ONE else m1 if m2 is ONE else m1 * m2)
                     for c1, m1 in pairs for c2, m2 in terms]
    except _BeyondCounts:
        return sympy.expand(expr)
    return _collected(pairs)


def _collected(pairs: Iterable[tuple[Coefficient, Expr]]) -> Expr:
    """The sum of coefficient * monomial over pairs, like terms collected as Add.flatten collects them; the Add is
    left unsorted (the printer orders the terms itself)."""
    constant: Coefficient = 0
    collected: dict[Expr, Coefficient] = {}
    for c, key in pairs:
        if key is ONE:
            constant += c
            continue
        if key.is_Mul and key.args[0].is_Number:  # m1 * m2 folded a number: 2**(1/2) * 2**(1/2)
            c2, key = key.as_coeff_Mul()
            c = c * _number(c2)
        if key.is_Number:
            constant += c * _number(key)
            continue
        collected[key] = collected.get(key, 0) + c
    terms = [] if constant == 0 else [_sympy_number(constant)]
    for key, c in collected.items():  # as Add.flatten builds c*s
        if c == 0:
            continue
        if c == 1:
            terms.append(key)
        elif key.is_Mul:
            terms.append(key._new_rawargs(_sympy_number(c), *key.args))
        elif key.is_Add:
            terms.append(sympy.Mul(_sympy_number(c), key, evaluate=False))
        else:
            terms.append(sympy.Mul(_sympy_number(c), key))
    if len(terms) <= 1:
        return terms[0] if terms else ZERO
    return sympy.Add._from_args(terms)


def _expanded_sum(expr: Expr) -> Expr:
    """sympy.expand of a sum, for printing: each term expanded on its own (c * X as c times the
    remembered expansion of X) and like terms collected as Add.flatten collects them.

    Equal to sympy.expand(expr) term for term (tests/test_symbolic.py), but the Add is left
    unsorted (the printer orders the terms itself) and expand's second pass over the whole sum
    is skipped: on a 10,000-layer spec, expanding and re-sorting the totals grew faster than
    the spec (issue 9)."""
    try:
        pairs = [pair for arg in expr.args for pair in _scaled_terms(arg)]
    except _BeyondCounts:
        return sympy.expand(expr)  # beyond the counts' arithmetic: sympy's own rules
    return _collected(pairs)


def _scaled_terms(arg: Expr) -> list[tuple[Coefficient, Expr]]:
    coefficient, rest = arg.as_coeff_Mul()
    number = _number(coefficient)
    if rest is ONE:
        return [(number, ONE)]
    return [(number * c, m) for c, m in _terms(rest)]


def sum_of(parts: Iterable[Expr]) -> Expr:
    """sympy.Add(*parts), with its expansion for render() collected from the parts' own (remembered) expansions,
    which the parts' rows make anyway: a total over 1,000 layers printed from the Add re-expands every term
    Add has merged into a new object (issue 16: the training step's totals and per-layer sums)."""
    parts = [p for p in (sympy.Integer(p) if isinstance(p, int) else p for p in parts) if p is not ZERO]
    if len(parts) <= 1:
        return parts[0] if parts else ZERO
    hit = _SUMS.get(*parts)
    if hit is not None:
        return hit
    try:
        pairs = [pair for part in parts for pair in _terms(part)]
    except _BeyondCounts:
        return _SUMS.put(tuple(parts), sympy.Add(*parts))
    total = sympy.Add(*parts)  # as the parts' own sum would be built: the API's objects keep their form
    _EXPANDED.put((total,), _collected(pairs))
    return _SUMS.put(tuple(parts), total)


# Sums by their parts' objects: a stack's repeated layers have the same forward and gradient objects, so
# their backward and step sums are the same few (the 1,000-layer conv stack: 2,000 sums, about 300 distinct).
_SUMS = IdentityMemo()


# Rendered formulas by object identity, in front of the cache by equality: a report renders the
# same few expression objects many times (the 1,000-layer conv stack: 13,000 calls, 224 objects).
_RENDERED = IdentityMemo()


def render(expr: Expr | int) -> str:
    """A stable, readable string for a formula: expanded, never simplified."""
    if isinstance(expr, int):
        return str(expr)
    hit = _RENDERED.get(expr)
    return hit if hit is not None else _RENDERED.put((expr,), _render_cached(expr))
