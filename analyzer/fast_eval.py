"""Evaluate a formula at many symbol values at once, exactly, for sweeps.

`report.value()` substitutes into sympy, which is exact but slow for thousands of
points. Here the expression tree is walked once, each node computing the column
of its values over all points with Python ints; floor(E) with rational
coefficients is computed as (D*E) // D for the common denominator D, so no float
ever enters a count and no code is generated or evaluated.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from functools import reduce
from math import lcm

import sympy

Column = list[int | Fraction] | int | Fraction  # a scalar stands for a constant column


def _zip(op: Callable[[object, object], object], a: Column, b: Column, n: int) -> Column:
    if not isinstance(a, list) and not isinstance(b, list):
        return op(a, b)  # type: ignore[return-value]
    a_list = a if isinstance(a, list) else [a] * n
    b_list = b if isinstance(b, list) else [b] * n
    return [op(x, y) for x, y in zip(a_list, b_list)]  # type: ignore[misc]


def _map(fn: Callable[[object], object], a: Column) -> Column:
    return [fn(x) for x in a] if isinstance(a, list) else fn(a)  # type: ignore[return-value]


def _columns(expr: sympy.Expr, columns: Mapping[sympy.Symbol, list[int]], n: int) -> Column:
    if expr.is_Integer:
        return int(expr)
    if expr.is_Rational:
        return Fraction(int(expr.p), int(expr.q))
    if expr.is_Symbol:
        return columns[expr]
    if expr.is_Add or expr.is_Mul:
        op = operator.add if expr.is_Add else operator.mul
        parts = [_columns(a, columns, n) for a in expr.args]
        return reduce(lambda x, y: _zip(op, x, y, n), parts)
    if expr.is_Pow and expr.exp.is_Integer and expr.exp >= 0:
        exponent = int(expr.exp)
        return _map(lambda x: x**exponent, _columns(expr.base, columns, n))
    if isinstance(expr, (sympy.floor, sympy.ceiling)):
        inner = expr.args[0]
        rationals = inner.atoms(sympy.Rational)
        d = lcm(*(int(r.q) for r in rationals)) if rationals else 1
        scaled = _columns(sympy.expand(inner * d), columns, n)
        if isinstance(expr, sympy.floor):
            return _map(lambda x: int(x) // d if not isinstance(x, Fraction) else int(x // d), scaled)
        return _map(lambda x: -(int(-x) // d) if not isinstance(x, Fraction) else int(-((-x) // d)), scaled)
    if isinstance(expr, sympy.Mod):
        a, b = (_columns(x, columns, n) for x in expr.args)
        return _zip(operator.mod, a, b, n)
    if isinstance(expr, (sympy.Min, sympy.Max)):
        fn = min if isinstance(expr, sympy.Min) else max
        parts = [_columns(a, columns, n) for a in expr.args]
        return reduce(lambda x, y: _zip(lambda p, q: fn(p, q), x, y, n), parts)
    # Anything else: exact sympy substitution, point by point.
    symbols = sorted(expr.free_symbols, key=lambda s: s.name)
    values = [expr.xreplace({s: sympy.Integer(columns[s][i]) for s in symbols}) for i in range(n)]
    return [Fraction(int(v.p), int(v.q)) if v.is_Rational else _not_rational(expr, v) for v in values]


def _not_rational(expr: sympy.Expr, value: sympy.Expr) -> int:
    raise ValueError(f"{expr} does not evaluate to a number ({value})")


def evaluate_many(expr: sympy.Expr | int, columns: Mapping[sympy.Symbol, Sequence[int]]) -> list[int]:
    """Exact integer values of `expr` at points given column-wise: columns[symbol][i] is point i."""
    n = len(next(iter(columns.values()))) if columns else 1
    cols = {s: list(v) for s, v in columns.items()}
    result = _columns(sympy.sympify(expr), cols, n)
    out = result if isinstance(result, list) else [result] * n
    values = []
    for i, v in enumerate(out):
        if isinstance(v, Fraction):
            if v.denominator != 1:
                point = {s.name: cols[s][i] for s in cols}
                raise ValueError(f"{expr} is {v} at {point}, not an integer")
            v = v.numerator
        values.append(int(v))
    return values
