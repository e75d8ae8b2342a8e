"""How a count grows with one symbol: its dominant term and order.

For a symbol s (the others held at their chosen values), floors and ceilings are
dropped (floor(a*s + b) ~ a*s as s grows) and the leading term of the resulting
polynomial in s is the dominant term: FLOPs ~ 141,068*L, O(L). A count that does
not grow with s is O(1) and its exact value is shown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import sympy

from analyzer.symbolic import evaluate

if TYPE_CHECKING:
    from analyzer.report import Report


@dataclass(frozen=True)
class Growth:
    symbol: str
    degree: int | None  # None: not polynomial in the symbol
    coefficient: sympy.Rational | None

    @property
    def order(self) -> str:
        if self.degree is None:
            return "not polynomial"
        if self.degree == 0:
            return "O(1)"
        return f"O({self.symbol})" if self.degree == 1 else f"O({self.symbol}^{self.degree})"

    def dominant(self, grouping: bool = True) -> str:
        """'69,329*L'; without grouping '69329*L' (as in JSON, parseable by sympy)."""
        if self.degree is None or self.coefficient is None:
            return "?"
        c = _number(self.coefficient)
        if not grouping:
            c = c.replace(",", "")
        if self.degree == 0:
            return c
        power = self.symbol if self.degree == 1 else f"{self.symbol}^{self.degree}"
        return power if self.coefficient == 1 else f"{c}*{power}"

    def __str__(self) -> str:
        return f"~ {self.dominant()}  ({self.order})"


def _number(value: sympy.Rational) -> str:
    if value.is_Integer:
        return f"{int(value):,}"
    return f"{int(value.p):,}/{int(value.q):,}"


def _drop_rounding(expr: sympy.Expr) -> sympy.Expr:
    return expr.replace(sympy.floor, lambda a: a).replace(sympy.ceiling, lambda a: a)


Polynomial = dict[int, Fraction]  # {degree: coefficient}


def _times(a: Polynomial, b: Polynomial) -> Polynomial:
    product: Polynomial = {}
    for da, ca in a.items():
        for db, cb in b.items():
            product[da + db] = product.get(da + db, Fraction(0)) + ca * cb
    return product


def _coefficients(expr: sympy.Expr, symbol: sympy.Symbol) -> dict[int, sympy.Rational] | None:
    """{degree: coefficient} of expr without its rounding as a polynomial in symbol, or None if it is not one."""
    fast = _polynomial_at(expr, symbol, {}, {})
    if fast is not None:
        return {d: sympy.Rational(c.numerator, c.denominator) for d, c in fast.items()}
    smooth = sympy.expand(_drop_rounding(expr))  # anything else (e.g. a symbol left as a divisor): sympy decides
    if not smooth.is_polynomial(symbol):
        return None
    return {degree: c for (degree,), c in sympy.Poly(smooth, symbol).as_dict().items()}


def _polynomial_at(expr: sympy.Expr, symbol: sympy.Symbol, values: Mapping[sympy.Symbol, int],
                   seen: dict[int, Polynomial | None]) -> Polynomial | None:
    """expr without its rounding as a polynomial in symbol ({degree: coefficient}), the other symbols at their
    `values`, or None if it is not one. Walked once per distinct object with exact Fractions: sympy's expand of a
    whole total (nested floors dropped into long products) grows faster than the number of layers, and
    substituting the values first (xreplace) rebuilds every node. A floor of numbers is taken, one with the
    symbol in it dropped; a symbol without a value makes it None (growth() then lets sympy decide)."""
    key = id(expr)
    if key in seen:
        return seen[key]
    result: Polynomial | None = None
    if expr is symbol:
        result = {1: Fraction(1)}
    elif expr.is_Symbol:
        result = {0: Fraction(values[expr])} if expr in values else None
    elif expr.is_Rational:
        result = {0: Fraction(int(expr.p), int(expr.q))}
    elif isinstance(expr, (sympy.floor, sympy.ceiling)):
        inner = _polynomial_at(expr.args[0], symbol, values, seen)
        if inner is not None and set(inner) <= {0}:
            rounding = math.floor if isinstance(expr, sympy.floor) else math.ceil
            result = {0: Fraction(rounding(inner.get(0, Fraction(0))))}
        else:
            result = inner
    elif expr.is_Add or expr.is_Mul:
        parts = [_polynomial_at(arg, symbol, values, seen) for arg in expr.args]
        if all(part is not None for part in parts):
            result = {}
            for part in parts:
                if expr.is_Add:
                    for degree, coefficient in part.items():
                        result[degree] = result.get(degree, Fraction(0)) + coefficient
                else:
                    result = _times(result, part) if result else part
    elif expr.is_Pow and expr.exp.is_Integer and int(expr.exp) <= 64:
        base = _polynomial_at(expr.base, symbol, values, seen)
        if base is not None and int(expr.exp) >= 0:
            result = {0: Fraction(1)}
            for _ in range(int(expr.exp)):
                result = _times(result, base)
        elif base is not None and set(base) <= {0} and base.get(0, Fraction(0)) != 0:
            result = {0: base[0] ** int(expr.exp)}
    seen[key] = result
    return result


def growth(expr: sympy.Expr, symbol: sympy.Symbol, values: Mapping[sympy.Symbol, int]) -> Growth:
    fast = _polynomial_at(sympy.sympify(expr), symbol, values, {})
    if fast is not None:
        degree = max((d for d, c in fast.items() if c != 0), default=0)
        if degree <= 0:
            return Growth(symbol.name, 0, evaluate(expr, values))
        return Growth(symbol.name, degree, sympy.Rational(fast[degree].numerator, fast[degree].denominator))
    others = {s: sympy.Integer(v) for s, v in values.items() if s != symbol}
    fixed = sympy.sympify(expr).xreplace(others)
    if symbol not in fixed.free_symbols:
        return Growth(symbol.name, 0, evaluate(fixed, {}))
    coefficients = _coefficients(fixed, symbol)
    if coefficients is None:
        return Growth(symbol.name, None, None)
    degree = max((d for d, c in coefficients.items() if c != 0), default=0)
    if degree <= 0:
        return Growth(symbol.name, 0, evaluate(fixed, {symbol: values[symbol]}))
    return Growth(symbol.name, degree, sympy.Rational(coefficients[degree]))


GROWTH_QUANTITIES = {"params": "params", "macs": "MACs", "flops": "FLOPs"}  # JSON key -> display label


def report_growth(report: Report) -> dict[str, dict[str, Growth]]:
    """For each symbol of the report (the others held at the report's values), the growth of
    the total params, MACs and FLOPs: {symbol: {"params" | "macs" | "flops": Growth}}."""
    total = report.total
    return {s.name: {q: growth(total.quantity(q), s.symbol, report.values) for q in GROWTH_QUANTITIES}
            for s in report.symbols}


def growth_dict(report: Report) -> dict[str, dict[str, dict[str, str]]]:
    """The JSON "asymptotics" object: {symbol: {quantity: {"dominant": "2*L", "order": "O(L)"}}}."""
    return {name: {q: {"dominant": g.dominant(grouping=False), "order": g.order} for q, g in per.items()}
            for name, per in report_growth(report).items()}


def growth_lines(report: Report) -> list[str]:
    """Table footer lines: 'L: params ~ 2*L (O(L)); MACs ~ 69,329*L (O(L)); FLOPs ~ ...'."""
    return [f"{name}: " + "; ".join(f"{GROWTH_QUANTITIES[q]} ~ {g.dominant()} ({g.order})" for q, g in per.items())
            for name, per in report_growth(report).items()]
