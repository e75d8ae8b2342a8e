"""How a count grows with one symbol: its dominant term and order.

For a symbol s (the others held at their chosen values), floors and ceilings are
dropped (floor(a*s + b) ~ a*s as s grows) and the leading term of the resulting
polynomial in s is the dominant term: FLOPs ~ 141,068*L, O(L). A count that does
not grow with s is O(1) and its exact value is shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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


def growth(expr: sympy.Expr, symbol: sympy.Symbol, values: Mapping[sympy.Symbol, int]) -> Growth:
    others = {s: sympy.Integer(v) for s, v in values.items() if s != symbol}
    fixed = sympy.sympify(expr).xreplace(others)
    if symbol not in fixed.free_symbols:
        return Growth(symbol.name, 0, evaluate(fixed, {}))
    smooth = sympy.expand(_drop_rounding(fixed))
    if not smooth.is_polynomial(symbol):
        return Growth(symbol.name, None, None)
    poly = sympy.Poly(smooth, symbol)
    if poly.degree() <= 0:
        return Growth(symbol.name, 0, evaluate(fixed, {symbol: values[symbol]}))
    return Growth(symbol.name, poly.degree(), sympy.Rational(poly.LC()))


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
