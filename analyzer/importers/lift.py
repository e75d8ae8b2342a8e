"""Lift a concrete model to a symbolic spec.

`--symbol L=input1:1` replaces the named input dimensions by the symbol L (default: the
size the model has there). Every size the model hard-codes stays as it is, so some of
them stop matching once L varies: a Reshape to (117, 25) after layers that give
(L - 11, 1, 25) holds only at L = 128. This module finds them by analyzing the lifted
spec (such a size shows up as an equality constraint on the symbols) and:

* rewrites a Reshape's target_shape when its expression is determinable: each target
  dimension equal (at the model's sizes) to a symbolic input dimension becomes that
  dimension, and if the element counts still differ, the one dimension that makes them
  equal for every value (an integer polynomial) is solved for;
* reports every other one, with the expression the hard-coded side should become.

Ambiguous cases (two different rewrites fit) are reported, not rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy

from analyzer.graph import analyze_spec
from analyzer.importers.document import ModelImportError, SpecDocument, SymbolDoc
from analyzer.importers.symbols import ImportOptions
from analyzer.report import Report
from analyzer.spec.loader import Spec, parse_spec
from analyzer.symbolic import evaluate, product, render

MAX_PASSES = 200


@dataclass
class Finding:
    """A hard-coded size that stops matching once the model is symbolic."""

    layer: str
    layer_type: str
    message: str
    rewritten: bool  # True: the converted spec holds the new expression

    def __str__(self) -> str:
        return f"layer '{self.layer}' ({self.layer_type}): {self.message}"


def bind_symbols(doc: SpecDocument, options: ImportOptions, notes: list[str]) -> None:
    """Replace the input dimensions named by --symbol with their symbols."""
    inputs = {x.name: x for x in doc.inputs}
    described = ", ".join(f"{x.name} {tuple(_show(d) for d in x.shape)}" for x in doc.inputs)
    for binding in options.bindings:
        sizes: dict[tuple[str, int], int] = {}
        spec_index: dict[tuple[str, int], int] = {}
        for input_name, axis in binding.dims:
            x = inputs.get(input_name)
            if x is None:
                raise ModelImportError(f"--symbol {binding}: the model has no input '{input_name}' (inputs: {described})")
            rank = len(x.shape)
            model_axis = axis + rank if axis < 0 else axis
            if not 0 <= model_axis < rank:
                raise ModelImportError(f"--symbol {binding}: input '{input_name}' has axes 0..{rank - 1} (without the "
                                       f"batch axis), no axis {axis}; its shape is {tuple(_show(d) for d in x.shape)}")
            index = x.spec_axis(model_axis)  # an ONNX input declared channels-last has its axes moved
            dim = _plain_dim(x.shape[index])
            if isinstance(dim, int):
                sizes[(input_name, model_axis)] = dim
                spec_index[(input_name, model_axis)] = index
            elif str(dim) != binding.name:
                raise ModelImportError(f"--symbol {binding}: axis {model_axis} of input '{input_name}' is already the "
                                       f"symbol {dim}")
        if not sizes:
            continue  # only open dimensions, already named
        values = set(sizes.values())
        if len(values) > 1:
            listed = ", ".join(f"{i}:{a} = {v}" for (i, a), v in sizes.items())
            raise ModelImportError(f"--symbol {binding}: the dimensions it names differ in size ({listed})")
        (default,) = values
        for (input_name, _axis), index in spec_index.items():
            inputs[input_name].shape[index] = binding.name
        if not any(s.name == binding.name for s in doc.symbols):
            where = ", ".join(f"{i} axis {a}" for i, a in sizes)
            doc.symbols.append(SymbolDoc(binding.name, default, f"{where} (lifted from the model's {default})"))
    bound = {(i, a) for b in options.bindings for i, a in b.dims}
    for s in doc.symbols:
        same = [(x.name, x.model_axes[axis] if x.model_axes else axis) for x in doc.inputs
                for axis, dim in enumerate(map(_plain_dim, x.shape))
                if isinstance(dim, int) and dim == s.default and dim > 1
                and (x.name, x.model_axes[axis] if x.model_axes else axis) not in bound]
        if same:
            named = [f"{i}:{a}" for b in options.bindings if b.name == s.name for i, a in b.dims]
            listed = ", ".join(f"'{i}' axis {a}" for i, a in same)
            notes.append(f"input {listed} {'is' if len(same) == 1 else 'are'} {s.default} too, as {s.name} is: if "
                         f"{'it is' if len(same) == 1 else 'they are'} the same size, name "
                         f"{'it' if len(same) == 1 else 'them'} with --symbol {s.name}="
                         + ",".join(named + [f"{i}:{a}" for i, a in same]))


def _plain_dim(dim: Any) -> Any:
    """An input dimension as a Python int when it is a number (importers may hold sympy Integers)."""
    return int(dim) if isinstance(dim, sympy.Integer) else dim


def _show(dim: Any) -> Any:
    return dim if isinstance(dim, (int, str)) else render(dim)


def lift(doc: SpecDocument, file: str) -> tuple[Spec, Report, list[Finding]]:
    """Fix the Reshapes of a spec document whose symbols make their hard-coded targets stop matching;
    report every size that still does not match. Returns the final spec, its report and the findings."""
    findings: list[Finding] = []
    unfixable: set[str] = set()
    for _ in range(MAX_PASSES):
        spec = parse_spec(doc.to_yaml(), file)
        report = analyze_spec(spec)
        if not doc.symbols:
            return spec, report, findings
        fixed = False
        for row in report.layers.values():
            if row.type != "Reshape" or row.name in unfixable:
                continue
            (shape,) = row.input_shapes
            target = [d for d in row.spec.target_shape]  # type: ignore[union-attr]
            if any(d == -1 for d in target) or sympy.expand(product(target) - product(shape)) == 0:
                continue
            result = fit_target(shape, [int(evaluate(d, report.values)) for d in target], report.values)
            layer = doc.layer(row.name)
            was = "(" + ", ".join(render(d) for d in target) + ")"
            if isinstance(result, tuple):
                layer.fields["target_shape"] = list(result)
                new = "(" + ", ".join(render(d) for d in result) + ")"
                where = _at(report.values, result)
                layer.comment = f"the model has {was}{where}"
                findings.append(Finding(row.name, row.type, f"target_shape {was} becomes {new} (written into the spec)", True))
                fixed = True
                break
            unfixable.add(row.name)
            findings.append(Finding(row.name, row.type, f"target_shape {was} holds only at {_values(report.values, shape)}: "
                                    f"the input is ({', '.join(render(d) for d in shape)}); {result}", False))
        if not fixed:
            break
    else:
        raise ModelImportError("internal: lifting did not settle")
    rewritten = {f.layer for f in findings}
    for c in report.constraints:
        if c.kind != "eq" or c.layer in rewritten or not c.symbols:
            continue
        lhs, rhs = sympy.expand(c.lhs), sympy.expand(c.rhs)
        suggestion = ""
        if rhs.is_Integer and lhs.free_symbols:
            suggestion = f"; the hard-coded {rhs} should become {render(lhs)}"
        elif lhs.is_Integer and rhs.free_symbols:
            suggestion = f"; the hard-coded {lhs} should become {render(rhs)}"
        findings.append(Finding(c.layer or "?", c.layer_type or "?",
                                f"{c.rule}: holds only at {_values(report.values, (c.lhs, c.rhs))}{suggestion}", False))
    return spec, report, findings


def _values(values: dict[sympy.Symbol, int], exprs: Any) -> str:
    used: set[sympy.Symbol] = set()
    for e in exprs:
        used |= set(sympy.sympify(e).free_symbols)
    return ", ".join(f"{s.name} = {values[s]}" for s in sorted(used, key=lambda s: s.name)) or "these sizes"


def _at(values: dict[sympy.Symbol, int], exprs: Any) -> str:
    text = _values(values, exprs)
    return f" at {text}" if text != "these sizes" else ""


def fit_target(shape: tuple[sympy.Expr, ...], target: list[int], values: dict[sympy.Symbol, int]) -> tuple[sympy.Expr, ...] | str:
    """A symbolic target_shape that equals `target` at `values` and holds the elements of `shape`
    for every value; or, when there is none or more than one, a message saying so.

    Solutions with integer coefficients are preferred; one with fractions (L/2) is taken only
    when it is the only one (the spec then states that L/2 must be an integer)."""
    total = product(shape)
    concrete = [int(evaluate(d, values)) for d in shape]
    whole: list[tuple[sympy.Expr, ...]] = []
    fractional: list[tuple[sympy.Expr, ...]] = []
    for ordered in (True, False):
        matched = _match(shape, concrete, target, ordered)
        if sympy.expand(product(matched) - total) == 0:
            whole.append(tuple(matched))
            continue
        for i, dim in enumerate(matched):
            if dim.free_symbols:
                continue
            rest = product(d for j, d in enumerate(matched) if j != i)
            solved = sympy.cancel(total / rest)
            kind = _polynomial_kind(solved)
            if kind is None or evaluate(solved, values) != target[i]:
                continue
            candidate = tuple(solved if j == i else d for j, d in enumerate(matched))
            if sympy.expand(product(candidate) - total) == 0:
                (whole if kind == "integer" else fractional).append(candidate)
        if whole:
            break
    for solutions in (whole, fractional):
        distinct = _distinct(solutions)
        if len(distinct) == 1:
            return distinct[0]
        if len(distinct) > 1:
            options = " or ".join("(" + ", ".join(render(d) for d in s) + ")" for s in distinct)
            return f"ambiguous: {options} all fit (write the right one by hand)"
    return "no target in terms of the input's sizes fits (write it by hand)"


def _distinct(solutions: list[tuple[sympy.Expr, ...]]) -> list[tuple[sympy.Expr, ...]]:
    distinct: list[tuple[sympy.Expr, ...]] = []
    for s in solutions:
        if not any(all(sympy.expand(a - b) == 0 for a, b in zip(s, d, strict=False)) for d in distinct):
            distinct.append(s)
    return distinct


def _match(shape: tuple[sympy.Expr, ...], concrete: list[int], target: list[int], ordered: bool) -> list[sympy.Expr]:
    """Each target dimension that equals an unused symbolic input dimension (at the model's sizes) becomes it."""
    used: set[int] = set()
    last = -1
    result: list[sympy.Expr] = []
    for value in target:
        chosen = None
        for j, dim in enumerate(shape):
            if j in used or not dim.free_symbols or concrete[j] != value or (ordered and j <= last):
                continue
            chosen = j
            break
        if chosen is None:
            result.append(sympy.Integer(value))
        else:
            used.add(chosen)
            last = chosen
            result.append(shape[chosen])
    return result


def _polynomial_kind(expr: sympy.Expr) -> str | None:
    """'integer' for a non-constant polynomial with integer coefficients, 'fraction' for one with
    rational coefficients, None otherwise (floors and ceilings count as variables)."""
    expr = sympy.expand(expr)
    if not expr.free_symbols:
        return None
    gens = sorted(expr.atoms(sympy.Symbol), key=str) + sorted(expr.atoms(sympy.floor, sympy.ceiling), key=str)
    try:
        poly = sympy.Poly(expr, *gens)
    except sympy.PolynomialError:
        return None
    coeffs = poly.coeffs()
    if all(c.is_Integer for c in coeffs):
        return "integer"
    return "fraction" if all(c.is_Rational for c in coeffs) else None
