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

Sizes that still fit once lifted (the old AMC DAE's Dense(2*L) saved as Dense(256)) look like constants in
one file. Given the same model saved at other sizes (--other-size), fit_other_sizes fits each
integer that differs between the files as an affine function of the symbols; in one file,
size_hints only points at the sizes that might follow a symbol (docs/importers.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy
from pydantic_core import PydanticUndefined

from analyzer.graph import analyze_spec
from analyzer.importers.document import ModelImportError, SpecDocument, SymbolDoc, flow
from analyzer.importers.keras_config import spec_field_default
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


# ---- exact mode: the same architecture saved at other sizes (--other-size) ----------------------
#
# One file cannot tell a size that follows L but still fits (the old AMC DAE's Dense(2*L) saved as Dense(256) at
# L = 128) from a true constant. Two files can: every integer that differs between them is fitted as
# an affine function of the lifted symbols; one that is equal stays a constant.


@dataclass
class OtherSize:
    """The same model saved at other input sizes: its file and converted (unlifted) document."""

    file: str
    document: SpecDocument


def fit_other_sizes(doc: SpecDocument, others: list[OtherSize]) -> tuple[list[dict[sympy.Symbol, int]], list[Finding]]:
    """Write into `doc` (already bound to its symbols) every integer field that differs in the `others`,
    as a1*S1 + ... + ak*Sk + b of the lifted symbols S; return each other file's symbol values and one
    finding per changed field. Refuses (ModelImportError) a structure that differs, sizes the symbols
    cannot explain, and a field no affine function fits."""
    main = doc.source or "the model"
    values_by_file = [_input_values(doc, other) for other in others]
    named = set().union(*values_by_file)
    missing = [(other.file, name) for other, values in zip(others, values_by_file, strict=True)
               for name in named if name not in values]
    if missing:
        file, name = missing[0]
        raise ModelImportError(f"--other-size {file}: the input dimension named {name} is open there (no size); "
                               "both files must give it a size")
    symbols = [s for s in doc.symbols if s.name in named]
    if not symbols:
        raise ModelImportError(f"--other-size: no input dimension named by --symbol has a size in {main} and in "
                               f"{others[0].file}, so there is nothing to fit sizes against",
                               hint="name the input dimension that differs between the files: --symbol L=INPUT:AXIS")
    points = [{s.symbol: s.default for s in symbols}]
    points += [{s.symbol: values[s.name] for s in symbols} for values in values_by_file]
    basis = _basis(points, symbols)
    if len(basis) < len(symbols) + 1:
        files = [main, *(o.file for o in others)]
        sizes = "; ".join(f"{f}: {_point_text(p)}" for f, p in zip(files, points, strict=True))
        need = ("another file at a different size" if len(symbols) == 1 else
                f"{len(symbols)} other files, each changing the sizes in a new direction (e.g. one symbol at a time)")
        raise ModelImportError(f"--other-size: the files do not tell how sizes depend on {_names(symbols)} ({sizes}); "
                               f"fitting a*{symbols[0].name} + b{' per symbol' if len(symbols) > 1 else ''} needs {need}")
    for other in others:
        _check_structure(doc, other)
    fitter = _Fitter(main, [o.file for o in others], symbols, points, basis)
    findings: list[Finding] = []
    for index, layer in enumerate(doc.layers):
        layer_docs = [layer, *(o.document.layers[index] for o in others)]
        where = f"layer '{layer.name}' ({layer.type})"
        changed: list[str] = []
        for key in _keys(layer_docs):
            values = [_field(d, key, where) for d in layer_docs]
            fitted = fitter.fit(values, f"{where}: {key}")
            if not _has_expression(fitted):
                continue
            layer.fields[key] = fitted
            changed.append(f"{key} {flow(values[0])}")
            others_text = ", ".join(f"{flow(v)} at {_point_text(p)} in {f}"
                                    for v, p, f in zip(values[1:], points[1:], fitter.others, strict=True))
            fraction = ("; its coefficients are fractions: check it with one more size"
                        if any(not c.is_Integer for c in _coefficients(fitted)) else "")
            findings.append(Finding(layer.name, layer.type, f"{key} {flow(values[0])} becomes {flow(fitted)} "
                                    f"(fitted to {others_text}){fraction}", True))
        if changed:
            layer.comment = f"the model has {'; '.join(changed)} at {_point_text(points[0])}"
    return points[1:], findings


def check_other_sizes(doc: SpecDocument, others: list[OtherSize], points: list[dict[sympy.Symbol, int]]) -> None:
    """The lifted document, at each other file's sizes, must give that file's sizes: this checks
    what lift() rewrote after the fit (a Reshape solved from its input's shape)."""
    for other, point in zip(others, points, strict=True):
        for layer, theirs in zip(doc.layers, other.document.layers, strict=True):
            where = f"layer '{layer.name}' ({layer.type})"
            for key, value in layer.fields.items():
                if not _has_expression(value):
                    continue
                at_point = _substitute(value, point)
                expected = _field(theirs, key, where)
                if not _same(at_point, expected):
                    raise ModelImportError(
                        f"--other-size {other.file}: {where}: the lifted {key} {flow(value)} is {flow(at_point)} at "
                        f"{_point_text(point)}, but that file has {flow(expected)}", hint="write this size by hand")


def _input_values(doc: SpecDocument, other: OtherSize) -> dict[str, int]:
    """The size each symbol of `doc`'s inputs has in the other file; its other input sizes must be equal."""
    theirs = other.document.inputs
    if len(theirs) != len(doc.inputs):
        raise ModelImportError(f"--other-size {other.file}: {len(theirs)} inputs, where {doc.source} has "
                               f"{len(doc.inputs)}: not the same architecture")
    values: dict[str, int] = {}
    for x, y in zip(doc.inputs, theirs, strict=True):
        if len(x.shape) != len(y.shape):
            raise ModelImportError(f"--other-size {other.file}: input '{y.name}' has {len(y.shape)} axes, where "
                                   f"'{x.name}' of {doc.source} has {len(x.shape)}: not the same architecture")
        for axis, (ours, other_dim) in enumerate(zip(x.shape, y.shape, strict=True)):
            ours, other_dim = _plain_dim(ours), _plain_dim(other_dim)
            model_axis = x.model_axes[axis] if x.model_axes else axis
            if isinstance(ours, str) and isinstance(other_dim, int):
                if values.setdefault(ours, other_dim) != other_dim:
                    raise ModelImportError(f"--other-size {other.file}: the dimensions named {ours} differ in size "
                                           f"there ({values[ours]} and {other_dim} at input '{y.name}' axis {model_axis})")
            elif isinstance(ours, int) and isinstance(other_dim, int):
                if ours != other_dim:
                    raise ModelImportError(
                        f"--other-size {other.file}: input '{y.name}' axis {model_axis} is {other_dim} there and "
                        f"{ours} in {doc.source}, and no --symbol names it",
                        hint=f"name every input dimension that differs between the files: --symbol NAME={x.name}:{model_axis}")
            elif sympy.expand(sympy.sympify(ours) - sympy.sympify(other_dim)) != 0:
                raise ModelImportError(f"--other-size {other.file}: input '{y.name}' axis {model_axis} is "
                                       f"{_show(other_dim)} there and {_show(ours)} in {doc.source}")
    return values


def _check_structure(doc: SpecDocument, other: OtherSize) -> None:
    """Same layers (by position), types and wiring; names may differ (Keras numbers them per session)."""
    theirs = other.document
    ours_at, theirs_at = _positions(doc), _positions(theirs)
    for index, (a, b) in enumerate(zip(doc.layers, theirs.layers, strict=False)):
        if a.type != b.type:
            raise ModelImportError(f"--other-size {other.file}: layer {index + 1} is '{a.name}' ({a.type}) in "
                                   f"{doc.source} but '{b.name}' ({b.type}) there: not the same architecture")
        wired = [_wire(ours_at, n) for n in _sources(doc, index)], [_wire(theirs_at, n) for n in _sources(theirs, index)]
        if wired[0] != wired[1]:
            raise ModelImportError(f"--other-size {other.file}: layer '{a.name}' ({a.type}) takes "
                                   f"{_sources(doc, index)} in {doc.source} but '{b.name}' takes "
                                   f"{_sources(theirs, index)} there: not the same wiring")
    if len(doc.layers) != len(theirs.layers):
        raise ModelImportError(f"--other-size {other.file}: {len(theirs.layers)} layers, where {doc.source} has "
                               f"{len(doc.layers)}: not the same architecture")
    if [_wire(ours_at, n) for n in doc.outputs] != [_wire(theirs_at, n) for n in theirs.outputs]:
        raise ModelImportError(f"--other-size {other.file}: the outputs are {theirs.outputs} there and {doc.outputs} in "
                               f"{doc.source}: not the same architecture")


def _positions(doc: SpecDocument) -> dict[str, tuple[str, int]]:
    return {**{x.name: ("input", i) for i, x in enumerate(doc.inputs)},
            **{layer.name: ("layer", i) for i, layer in enumerate(doc.layers)}}


def _wire(positions: dict[str, tuple[str, int]], ref: str) -> tuple[str, int, str]:
    """Where a reference points: (input or layer, position, output), 'name:output' for a layer's other outputs."""
    name, _, output = ref.partition(":")
    return (*positions[name], output)


def _sources(doc: SpecDocument, index: int) -> list[str]:
    layer = doc.layers[index]
    if layer.inputs is not None:
        return list(layer.inputs)
    return [doc.layers[index - 1].name if index else doc.inputs[0].name]


def _keys(layers: list[Any]) -> list[str]:
    keys: list[str] = []
    for layer in layers:
        keys.extend(k for k in layer.fields if k not in keys)
    return keys


def _field(layer: Any, key: str, where: str) -> Any:
    """A layer field, or the default the converter left out (it writes only what differs from it)."""
    if key in layer.fields:
        return layer.fields[key]
    default = spec_field_default(layer.type, key)
    if default is PydanticUndefined:
        raise ModelImportError(f"{where}: field '{key}' is in one file and not in the other: not the same architecture")
    return default


class _Fitter:
    """Fits the values a size takes in the files (main first) as an affine function of the symbols."""

    def __init__(self, main: str, others: list[str], symbols: list[SymbolDoc],
                 points: list[dict[sympy.Symbol, int]], basis: list[int]) -> None:
        self.files = [main, *others]
        self.others = others
        self.symbols = [s.symbol for s in symbols]
        self.points = points
        self.basis = basis
        self.matrix = sympy.Matrix([[p[s] for s in self.symbols] + [1] for p in (points[i] for i in basis)])

    def fit(self, values: list[Any], where: str) -> Any:
        values = [int(v) if isinstance(v, sympy.Integer) else v for v in values]
        if all(_is_size(v) for v in values):
            return self.affine([int(v) for v in values], where)
        if any(isinstance(v, list) for v in values) and all(isinstance(v, list) or _is_size(v) for v in values):
            length = max(len(v) for v in values if isinstance(v, list))
            lists = [v if isinstance(v, list) else [v] * length for v in values]  # a broadcast size: 3 is [3, 3]
            if any(len(v) != length for v in lists):
                raise self.differ(values, where)
            return [self.fit([v[i] for v in lists], f"{where}[{i}]") for i in range(length)]
        if all(isinstance(v, dict) for v in values):
            kind = values[0].get("type")
            keys = [k for v in values for k in v]
            result = {}
            for key in dict.fromkeys(keys):
                if any(key not in v for v in values):
                    default = spec_field_default(str(kind), key)
                    if default is PydanticUndefined:
                        raise self.differ(values, where)
                    values_here = [v.get(key, default) for v in values]
                else:
                    values_here = [v[key] for v in values]
                result[key] = self.fit(values_here, f"{where}.{key}")
            return result
        if all(_same(values[0], v) for v in values[1:]):
            return values[0]
        raise self.differ(values, where)

    def affine(self, sizes: list[int], where: str) -> Any:
        if all(x == sizes[0] for x in sizes):
            return sizes[0]
        solution = self.matrix.LUsolve(sympy.Matrix([sizes[i] for i in self.basis]))
        expr = sympy.Add(*(c * s for c, s in zip(solution, self.symbols, strict=False)), solution[-1])
        wrong = [j for j, p in enumerate(self.points) if evaluate(expr, p) != sizes[j]]
        if wrong:
            seen = ", ".join(f"{x} at {_point_text(p)} ({f})" for x, p, f in zip(sizes, self.points, self.files, strict=True))
            form = " + ".join(f"a{i + 1}*{s}" if len(self.symbols) > 1 else f"a*{s}" for i, s in enumerate(self.symbols))
            raise ModelImportError(f"{self.files[wrong[0]]}: {where} is {seen}: no {form} + b gives them all "
                                   "(a size that is not affine in the symbols)", hint="write this size by hand")
        return expr

    def differ(self, values: list[Any], where: str) -> ModelImportError:
        seen = "; ".join(f"{flow(v)} in {f}" for v, f in zip(values, self.files, strict=True))
        return ModelImportError(f"--other-size: {where} is {seen}: only integer sizes may differ between the files "
                                "(not the same architecture)")


def _basis(points: list[dict[sympy.Symbol, int]], symbols: list[SymbolDoc]) -> list[int]:
    """Indices of files whose sizes (with a 1 for the constant) are linearly independent, main first."""
    chosen: list[int] = []
    for i in range(len(points)):
        rows = [[points[j][s.symbol] for s in symbols] + [1] for j in [*chosen, i]]
        if sympy.Matrix(rows).rank() == len(chosen) + 1:
            chosen.append(i)
        if len(chosen) == len(symbols) + 1:
            break
    return chosen


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _has_expression(value: Any) -> bool:
    if isinstance(value, sympy.Basic):
        return bool(value.free_symbols)
    if isinstance(value, list):
        return any(_has_expression(v) for v in value)
    if isinstance(value, dict):
        return any(_has_expression(v) for v in value.values())
    return False


def _coefficients(value: Any) -> list[sympy.Rational]:
    if isinstance(value, sympy.Basic) and value.free_symbols:
        return list(sympy.Poly(value, *sorted(value.free_symbols, key=str)).coeffs())
    if isinstance(value, list):
        return [c for v in value for c in _coefficients(v)]
    if isinstance(value, dict):
        return [c for v in value.values() for c in _coefficients(v)]
    return []


def _substitute(value: Any, point: dict[sympy.Symbol, int]) -> Any:
    if isinstance(value, sympy.Basic):
        result = evaluate(value, point)
        return int(result) if result.is_Integer else result
    if isinstance(value, list):
        return [_substitute(v, point) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, point) for k, v in value.items()}
    return value


def _same(a: Any, b: Any) -> bool:
    """Equal, reading a broadcast size (3) as the list it stands for ([3, 3])."""
    if isinstance(a, list) and _is_size(b):
        return all(_same(x, b) for x in a)
    if isinstance(b, list) and _is_size(a):
        return all(_same(a, y) for y in b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, sympy.Basic) or isinstance(b, sympy.Basic):
        return sympy.expand(sympy.sympify(a) - sympy.sympify(b)) == 0
    return (type(a) is type(b) and a == b) or (_is_size(a) and _is_size(b) and a == b)


def _point_text(point: dict[sympy.Symbol, int]) -> str:
    return ", ".join(f"{s.name} = {v}" for s, v in point.items())


def _names(symbols: list[SymbolDoc]) -> str:
    return ", ".join(s.name for s in symbols)


# ---- single-file mode: hints at sizes that might follow a symbol --------------------------------

HINT_FACTORS = (1, 2, 3, 4)  # k*S and S/k for these k count as "a simple multiple" of a symbol's size


def size_hints(report: Report, doc: SpecDocument, lifted: set[str]) -> list[str]:
    """Sizes that equal a simple multiple of a lifted symbol's size and make a fixed, non-feature axis.

    Only axes before the last are looked at: the last is the features / channels axis, where a
    width that happens to equal L (SCNN's 128 filters at L = 128) is the rule, not a sign. An
    axis before the last that is a fixed size though the data upstream depends on the symbol
    (RepeatVector(3) at T = 3, a Reshape to (128, 2) at L = 128) is where a size that follows
    the symbol hides. A hint names the layer fields that hold the size; a layer that only passes
    on such an axis (a Softmax after the RepeatVector) gets none."""
    values = {s.symbol: s.default for s in doc.symbols if s.name in lifted}
    depends: dict[str, set[sympy.Symbol]] = {}
    hints: list[str] = []
    for row in report.layers.values():
        upstream: set[sympy.Symbol] = set()
        for source in row.inputs:
            upstream |= depends.get(source, set())
        depends[row.name] = upstream | {s for d in row.output_shape for s in sympy.sympify(d).free_symbols}
        if row.spec is None:
            continue
        for axis, dim in enumerate(row.output_shape[:-1]):
            dim = sympy.sympify(dim)
            if dim.free_symbols or int(dim) < 2:
                continue
            for symbol in sorted(upstream & set(values), key=lambda s: s.name):
                relation = _multiple(int(dim), symbol, values[symbol])
                if relation is None:
                    continue
                fields = [path for path, leaf in _leaves(doc.layer(row.name).fields, "") if leaf == int(dim)]
                if not fields:
                    break  # the layer passes on a fixed axis it got: the hint goes where a field sets it
                what = " and ".join(f"{path} = {int(dim)}" for path in fields)
                shape = "(" + ", ".join(render(d) for d in row.output_shape) + ")"
                hints.append(f"layer '{row.name}' ({row.type}): {what} is {relation} at {symbol.name} = "
                             f"{values[symbol]} and fixes axis {axis} of the output {shape}; if it should follow "
                             f"{symbol.name}, also give the model saved at another size: --other-size MODEL")
                break
    return hints


def _multiple(size: int, symbol: sympy.Symbol, value: int) -> str | None:
    for k in HINT_FACTORS:
        if size == k * value:
            return symbol.name if k == 1 else f"{k}*{symbol.name}"
        if size * k == value:
            return f"{symbol.name}/{k}"
    return None


def _leaves(value: Any, path: str) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, f"{path}[{i}]")]
    return [(path, value)] if _is_size(value) else []
