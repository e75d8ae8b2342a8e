"""The only place sympy symbols are created, plus the few expression helpers
the layers share.

Design rules (see docs/conventions.md):
* every size symbol is `integer=True, positive=True`, so sympy can drop floors
  such as floor(L/1) and knows conv outputs are integers;
* `sympy.simplify` is never called: its cost doubles per stride-2 layer. Floors
  are folded by `floor_div` instead, which sympy itself never does.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache, reduce

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


def product(factors: Iterable[Expr | int]) -> Expr:
    return reduce(operator.mul, (sympy.Integer(f) if isinstance(f, int) else f for f in factors), ONE)


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


def evaluate(expr: Expr | int, values: Mapping[sympy.Symbol, int]) -> sympy.Rational:
    """Exact value of `expr` at `values` (a sympy Rational; never a float)."""
    if isinstance(expr, int):
        return sympy.Integer(expr)
    result = expr.xreplace({s: sympy.Integer(v) for s, v in values.items()})
    if not result.is_Rational:
        missing = sorted(s.name for s in free_symbols(result))
        raise ValueError(f"cannot evaluate {expr} (no value for {', '.join(missing) or '?'})")
    return result


def evaluate_int(expr: Expr | int, values: Mapping[sympy.Symbol, int]) -> int:
    result = evaluate(expr, values)
    if not result.is_Integer:
        raise ValueError(f"{expr} is {result} (not an integer)")
    return int(result)


def _degree(term: Expr) -> int:
    """Total degree of a product, counting a floor or ceiling as one factor."""
    _, rest = term.as_coeff_Mul()
    if rest is ONE:
        return 0
    return sum(int(e) if e.is_Integer else 1 for e in rest.as_powers_dict().values())


class _FormulaPrinter(StrPrinter):
    """sympy's str printer, with sums ordered by a cheap key (highest degree first,
    constants last) instead of sympy's `as_ordered_terms`, which costs milliseconds per
    formula and made printing dominate on large specs."""

    def _as_ordered_terms(self, expr: Expr, order: str | None = None) -> list[Expr]:
        return sorted(expr.args, key=lambda t: (t.is_Number, -_degree(t), default_sort_key(t)))


_PRINTER = _FormulaPrinter()


@lru_cache(maxsize=65_536)
def _render_cached(expr: Expr) -> str:
    return _PRINTER.doprint(sympy.expand(expr))


def render(expr: Expr | int) -> str:
    """A stable, readable string for a formula: expanded, never simplified."""
    if isinstance(expr, int):
        return str(expr)
    return _render_cached(expr)
