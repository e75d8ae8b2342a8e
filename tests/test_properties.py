"""Property tests (hypothesis).

(a) Random valid specs -- stacks and small branches of the core layers (Dense, Conv1D/2D,
    SeparableConv1D, pooling, GRU, BatchNormalization, Activation, Lambda, Dropout, Flatten,
    Reshape, Add/Subtract/Multiply, Concatenate), with sizes that are integers or expressions in
    the symbols L and C -- analyze without error, and every formula
    (each layer's output shape and counts, and the totals) evaluated at random symbol values
    equals a purely numeric re-analysis of the same spec with those values written in as
    integers. The symbolic domain check (`Report.at`) must also agree with the numeric analysis
    on whether the values are valid at all.
(b) Random mutations of valid specs (a field deleted, a value replaced by junk, a layer type
    swapped, a junk key inserted, the YAML text broken) either analyze or raise NNSpecError --
    never any other exception -- and every output format renders what analyzes.

The generator computes sizes in the test's own integer arithmetic (Fraction, floor division):
the numeric spec contains plain integers only, nothing derived from nnspec's formulas.

CI runs a fixed, derandomized budget. A longer local run:
    NNSPEC_HYPOTHESIS_EXAMPLES=20000 .venv/bin/python -m pytest -q tests/test_properties.py
(random seeds then; hypothesis prints a reproducing seed on failure).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import sympy
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.errors import NNSpecError
from analyzer.formats import FORMATS, render_report
from analyzer.graph import analyze_spec
from analyzer.layers import LAYERS
from analyzer.report import FLOP_KINDS, QUANTITIES, Report
from analyzer.spec.loader import parse_spec

LONG_RUN = int(os.environ.get("NNSPEC_HYPOTHESIS_EXAMPLES", "0"))


def budget(ci_examples: int) -> settings:
    return settings(
        max_examples=LONG_RUN or ci_examples,
        derandomize=not LONG_RUN,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# ---------------------------------------------------------------- sizes as small expressions


@dataclass(frozen=True)
class Form:
    """A size: its text in the symbolic spec, and its exact value at given symbol values."""

    text: str
    fn: Callable[[dict[str, int]], Fraction]

    def __call__(self, env: dict[str, int]) -> Fraction:
        return self.fn(env)

    @property
    def symbolic(self) -> bool:
        return any(c.isalpha() for c in self.text)


def const(n: int) -> Form:
    return Form(str(n), lambda env: Fraction(n))


def sym(name: str) -> Form:
    return Form(name, lambda env: Fraction(env[name]))


def add(a: Form, b: Form) -> Form:
    return Form(f"({a.text} + {b.text})", lambda env: a(env) + b(env))


def sub(a: Form, b: Form) -> Form:
    return Form(f"({a.text} - {b.text})", lambda env: a(env) - b(env))


def mul(a: Form, b: Form) -> Form:
    return Form(f"{a.text} * {b.text}", lambda env: a(env) * b(env))


def floordiv(a: Form, n: int | Form) -> Form:
    if isinstance(n, Form):
        return Form(f"({a.text}) // ({n.text})", lambda env: Fraction(math.floor(a(env) / n(env))))
    return Form(f"({a.text}) // {n}", lambda env: Fraction(math.floor(a(env) / n)))


def exactdiv(a: Form, n: int) -> Form:
    return Form(f"({a.text}) / {n}", lambda env: a(env) / n)


def product(forms: list[Form]) -> Form:
    out = forms[0]
    for f in forms[1:]:
        out = mul(out, f)
    return out


L, C = sym("L"), sym("C")


def plain(value: Any, env: dict[str, int] | None) -> Any:
    """The spec document: Forms as their text (symbolic) or as integers at `env` (numeric)."""
    if isinstance(value, Form):
        if env is None:
            return int(value.text) if value.text.isdigit() else value.text
        v = value(env)
        return int(v) if v.denominator == 1 else f"{v.numerator}/{v.denominator}"
    if isinstance(value, dict):
        return {k: plain(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v, env) for v in value]
    return value


# ---------------------------------------------------------------- random valid specs


@dataclass
class Tensor:
    name: str
    shape: tuple[Form, ...]


class Builder:
    """Draws layers that are valid at the default symbol values `env0`."""

    def __init__(self, draw: Any, env0: dict[str, int]) -> None:
        self.draw = draw
        self.env0 = env0
        self.layers: list[dict[str, Any]] = []

    def at0(self, form: Form) -> Fraction:
        return form(self.env0)

    def add_layer(self, layer: dict[str, Any], shape: tuple[Form, ...]) -> Tensor:
        layer = {"name": f"l{len(self.layers)}", **layer}
        self.layers.append(layer)
        return Tensor(layer["name"], shape)

    def size(self) -> Form:
        """A positive integer size at the defaults: a constant, or an expression in C or L."""
        d = self.draw
        choice = d(st.integers(0, 9))
        if choice <= 3:
            return const(d(st.integers(1, 24)))
        if choice == 4:
            return C
        if choice == 5:
            return mul(const(d(st.integers(2, 4))), C)
        if choice == 6:
            return add(C, const(d(st.integers(1, 5))))
        k = d(st.integers(2, 16))
        if choice == 7 and self.env0["L"] // k >= 1:
            return floordiv(L, k)
        if choice == 8 and self.env0["L"] // k >= 1:
            return floordiv(add(L, const(d(st.integers(1, 7)))), k)
        if choice == 9 and self.env0["L"] % k == 0:
            return exactdiv(L, k)
        if choice == 9 and self.env0["L"] // self.env0["C"] >= 1:
            return floordiv(L, C)
        return const(d(st.integers(1, 8)))

    def strides_and_dilation(self, rank: int) -> tuple[list[int], list[int]]:
        """Keras refuses strides > 1 together with dilation_rate > 1: draw one or the other."""
        ones = [1] * rank
        if self.draw(st.booleans()):
            return [C if self.draw(st.integers(0, 5)) == 0 else self.draw(st.integers(1, 3)) for _ in range(rank)], ones
        return ones, [self.draw(st.integers(1, 3)) for _ in range(rank)]

    def conv_axis(self, n: Form, padding: str, stride: int | Form, dilation: int) -> tuple[int | Form, Form]:
        """A kernel size valid at the defaults (sometimes an expression in L), and the output length (Keras' formula)."""
        if padding == "valid":
            max_kernel = (int(self.at0(n)) - 1) // dilation + 1
            m = self.draw(st.integers(2, 32))
            kernel: int | Form = self.draw(st.integers(1, max(1, min(7, max_kernel))))
            if self.draw(st.integers(0, 4)) == 0 and self.env0["L"] // m + 1 <= max_kernel:
                kernel = add(floordiv(L, m), const(1))
            k = kernel if isinstance(kernel, Form) else const(kernel)
            effective = add(mul(const(dilation), sub(k, const(1))), const(1))
            return kernel, add(floordiv(sub(n, effective), stride), const(1))
        return self.draw(st.integers(1, 7)), add(floordiv(sub(n, const(1)), stride), const(1))

    def activation(self) -> str | None:
        return self.draw(st.sampled_from([None, "linear", "relu", "sigmoid", "tanh", "softmax"]))

    def extra(self, layer: dict[str, Any]) -> dict[str, Any]:
        act = self.activation()
        if act is not None:
            layer["activation"] = act
        if self.draw(st.booleans()):
            layer["use_bias"] = self.draw(st.booleans())
        return layer

    def step(self, x: Tensor) -> Tensor:
        d = self.draw
        rank = len(x.shape)
        kinds = ["Dense", "BatchNormalization", "Activation", "Lambda", "Dropout", "Flatten", "Reshape", "Merge",
                 "Concatenate"]
        if rank == 2:
            kinds += ["Conv1D"] * 6 + ["SeparableConv1D"] * 2 + ["GRU"] * 2 + ["MaxPooling1D", "AveragePooling1D"]
        if rank == 3:
            kinds += ["Conv2D"] * 6 + ["MaxPooling2D", "AveragePooling2D"]
        kind = d(st.sampled_from(kinds))
        inputs = [x.name]
        if kind == "Dense":
            units = self.size()
            return self.add_layer(self.extra({"type": "Dense", "units": units, "inputs": inputs}), (*x.shape[:-1], units))
        if kind in ("Conv1D", "SeparableConv1D", "Conv2D"):
            spatial = rank - 1
            filters = self.size()
            paddings = ["valid", "same", *(["causal"] if kind == "Conv1D" else [])]
            padding = d(st.sampled_from(paddings))
            strides, dilations = self.strides_and_dilation(spatial)
            axes = [self.conv_axis(n, padding, s, dl) for n, s, dl in zip(x.shape[:-1], strides, dilations, strict=True)]
            kernels = [a[0] for a in axes]
            layer: dict[str, Any] = {"type": kind, "filters": filters, "padding": padding, "inputs": inputs,
                                     "kernel_size": kernels[0] if spatial == 1 else kernels}
            if strides != [1] * spatial or d(st.booleans()):
                layer["strides"] = strides[0] if spatial == 1 and d(st.booleans()) else strides
            if dilations != [1] * spatial:
                layer["dilation_rate"] = dilations
            if kind == "SeparableConv1D" and d(st.booleans()):
                layer["depth_multiplier"] = d(st.integers(1, 3))
            if kind != "SeparableConv1D" and d(st.integers(0, 3)) == 0:
                channels0, filters0 = int(self.at0(x.shape[-1])), int(self.at0(filters))
                layer["groups"] = d(st.sampled_from([g for g in range(1, 9) if channels0 % g == 0 and filters0 % g == 0]))
            return self.add_layer(self.extra(layer), (*(a[1] for a in axes), filters))
        if kind.endswith(("Pooling1D", "Pooling2D")):
            padding = d(st.sampled_from(["valid", "same"]))
            pools, strides, out = [], [], []
            for n in x.shape[:-1]:
                pool = d(st.integers(1, 4 if padding == "same" else max(1, min(4, int(self.at0(n))))))
                stride = d(st.sampled_from([None, 1, 2, 3]))
                s = stride or pool
                pools.append(pool)
                strides.append(stride)
                window = pool if padding == "valid" else 1
                out.append(add(floordiv(sub(n, const(window)), s), const(1)))
            layer = {"type": kind, "pool_size": pools, "padding": padding, "inputs": inputs}
            if all(s is not None for s in strides):
                layer["strides"] = strides
            else:  # Keras: strides default to the pool size
                out = [add(floordiv(sub(n, const(p if padding == "valid" else 1)), p), const(1))
                       for n, p in zip(x.shape[:-1], pools, strict=True)]
            return self.add_layer(layer, (*out, x.shape[-1]))
        if kind == "GRU":
            units = self.size() if d(st.booleans()) else const(d(st.integers(1, 8)))
            sequences = d(st.booleans())
            layer = {"type": "GRU", "units": units, "return_sequences": sequences, "reset_after": d(st.booleans()),
                     "inputs": inputs}
            if d(st.booleans()):
                layer["dropout"] = d(st.sampled_from([0, 0.1, 0.25, 0.5]))
            return self.add_layer(layer, (x.shape[0], units) if sequences else (units,))
        if kind == "BatchNormalization":
            axis = d(st.sampled_from([-1, *range(1, rank + 1), *range(-rank, 0)]))
            layer = {"type": "BatchNormalization", "axis": axis, "center": d(st.booleans()), "scale": d(st.booleans()),
                     "momentum": d(st.sampled_from([0.9, 0.99])), "epsilon": d(st.sampled_from([1e-3, 1e-5])), "inputs": inputs}
            return self.add_layer(layer, x.shape)
        if kind == "Activation":
            name = d(st.sampled_from(["linear", "relu", "sigmoid", "tanh", "softmax"]))
            return self.add_layer({"type": "Activation", "activation": name, "inputs": inputs}, x.shape)
        if kind == "Lambda":
            function = d(st.sampled_from(["cos", "sin", "exp", "log", "sqrt", "abs", "square", "negative"]))
            return self.add_layer({"type": "Lambda", "function": function, "inputs": inputs}, x.shape)
        if kind == "Dropout":
            rate = d(st.sampled_from([0, 0.1, 0.5, 0.9]))
            return self.add_layer({"type": "Dropout", "rate": rate, "inputs": inputs}, x.shape)
        if kind == "Flatten":
            return self.add_layer({"type": "Flatten", "inputs": inputs}, (product(list(x.shape)),))
        if kind == "Reshape":
            total = product(list(x.shape))
            choice = d(st.integers(0, 3))
            if choice == 0:
                return self.add_layer({"type": "Reshape", "target_shape": [-1], "inputs": inputs}, (total,))
            if choice == 1:
                return self.add_layer({"type": "Reshape", "target_shape": [-1, 1], "inputs": inputs}, (total, const(1)))
            if choice == 2 and rank >= 2 and all(len(f.text) < 60 for f in x.shape):
                dims = list(reversed(x.shape))
                return self.add_layer({"type": "Reshape", "target_shape": dims, "inputs": inputs}, tuple(dims))
            return self.add_layer({"type": "Reshape", "target_shape": [1, -1], "inputs": inputs}, (const(1), total))
        if kind == "Merge":
            merge = d(st.sampled_from(["Add", "Subtract", "Multiply"]))
            units = self.size()
            a = self.add_layer({"type": "Dense", "units": units, "inputs": inputs}, (*x.shape[:-1], units))
            other = units if d(st.booleans()) else const(1)
            b = self.add_layer({"type": "Dense", "units": other, "inputs": inputs}, (*x.shape[:-1], other))
            return self.add_layer({"type": merge, "inputs": [a.name, b.name]}, a.shape)
        # Concatenate on the last axis (or another axis of equal shapes)
        units = self.size()
        a = self.add_layer({"type": "Dense", "units": units, "inputs": inputs}, (*x.shape[:-1], units))
        if d(st.booleans()):
            return self.add_layer({"type": "Concatenate", "inputs": [x.name, a.name]},
                                  (*x.shape[:-1], add(x.shape[-1], units)))
        b = self.add_layer({"type": "Dense", "units": units, "inputs": inputs}, a.shape)
        axis = d(st.integers(1, rank))
        shape = list(a.shape)
        shape[axis - 1] = add(shape[axis - 1], shape[axis - 1])
        return self.add_layer({"type": "Concatenate", "axis": axis, "inputs": [a.name, b.name]}, tuple(shape))

@st.composite
def valid_specs(draw: Any) -> tuple[dict[str, Any], dict[str, int]]:
    """A spec document (with Forms inside) and the symbol defaults at which it is valid."""
    env0 = {"L": draw(st.integers(1, 300)), "C": draw(st.integers(1, 8))}
    builder = Builder(draw, env0)
    rank = draw(st.sampled_from([2, 2, 3, 3, 1]))
    if rank == 1:
        shape: tuple[Form, ...] = (draw(st.sampled_from([L, C, mul(L, C), const(draw(st.integers(1, 40)))])),)
    elif rank == 2:
        shape = (L, draw(st.sampled_from([C, const(1), const(2), const(draw(st.integers(1, 12)))])))
    else:
        width = draw(st.sampled_from([const(1), const(2), C, const(draw(st.integers(1, 9)))]))
        shape = (L, width, draw(st.sampled_from([C, const(1), const(3)])))
    x = Tensor("x", shape)
    for _ in range(draw(st.integers(1, 8))):
        x = builder.step(x)
    document = {
        "name": "random",
        "symbols": {"L": env0["L"], "C": env0["C"]},
        "inputs": [{"name": "x", "shape": list(shape)}],
        "layers": builder.layers,
        "outputs": [x.name],
    }
    return document, env0


def symbolic_text(document: dict[str, Any]) -> str:
    return yaml.safe_dump(plain(document, None), sort_keys=False)


def numeric_text(document: dict[str, Any], env: dict[str, int]) -> str:
    numeric = plain({k: v for k, v in document.items() if k != "symbols"}, env)
    return yaml.safe_dump(numeric, sort_keys=False)


def analyze_text(text: str) -> Report:
    return analyze_spec(parse_spec(text, "random.yaml"))


def numbers(report: Report) -> dict[str, Any]:
    """Every shape and count of every row and the totals, as exact integers at the report's values."""
    out: dict[str, Any] = {}
    for name, row in report.layers.items():
        out[name, "shape"] = tuple(report.value(d) for d in row.output_shape)
        for q in (*QUANTITIES, *FLOP_KINDS):
            out[name, q] = report.value(row.counts.quantity(q))
    for q in (*QUANTITIES, *FLOP_KINDS):
        out["TOTAL", q] = report.value(report.total.quantity(q))
    return out


def no_floats(report: Report) -> None:
    for row in report.layers.values():
        for q in (*QUANTITIES, *FLOP_KINDS):
            expr = sympy.sympify(row.counts.quantity(q))
            assert not expr.atoms(sympy.Float), (row.name, q, expr)
        for dim in row.output_shape:
            assert not sympy.sympify(dim).atoms(sympy.Float), (row.name, dim)


values = st.fixed_dictionaries({"L": st.one_of(st.integers(1, 40), st.integers(1, 700)), "C": st.integers(1, 16)})


@budget(ci_examples=100)
@given(valid_specs(), st.lists(values, min_size=1, max_size=3))
def test_formulas_equal_numeric_reanalysis(generated, valuations):
    document, env0 = generated
    report = analyze_text(symbolic_text(document))  # a valid spec analyzes without error
    no_floats(report)
    for env in [env0, *valuations]:
        try:
            at = report.at(**env)
        except NNSpecError:
            at = None
        try:
            numeric = analyze_text(numeric_text(document, env))
        except NNSpecError as error:
            assert at is None, f"numeric analysis at {env} fails ({error}) but the symbolic domain admits it"
            continue
        assert at is not None, f"symbolic domain refuses {env}, but the numeric analysis succeeds"
        assert numbers(at) == numbers(numeric), env


# ---------------------------------------------------------------- mutations never crash

JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
    st.sampled_from(["", "L", "L/3", "L//0", "-1", "1.5", "2**2**2**30", "__import__('os')", "x.y", "L -", "((L)",
                     "relu", "valid", "same", "causal", "Dense", "l0", "x", "max(L)", "min(L, 2)", "ceil(L/7)",
                     "10**300 * L**200", "(L+1)**256", "C - 100", "0", "-5", "sqrt(L)", "lambda: 1", "L // -2", "L**0",
                     "é", "\t", "${L}", "{L}", "*", "&a"]),
    st.lists(st.integers(-2, 5), max_size=4), st.lists(st.sampled_from(["L", "C", -1, 0, "x", "l0"]), max_size=4),
    st.dictionaries(st.sampled_from(["a", "type", "default", "min", "name"]), st.integers(-2, 3), max_size=2),
    st.text(max_size=12),
)


PLAUSIBLE = st.one_of(
    st.integers(1, 300), st.sampled_from(["L", "C", "L // 2", "L - 5", "2 * C", "L / 4", "(L + 1) // 3", "C - 1", "L - 200",
                                          "max(L, 8)", "min(L, C)", "ceil(L / 3)", "floor(L / 5)", "L ** 2", -1, 0, 1, 2,
                                          "L // (L - 100)", "C / (C - 1)", "L // (C - 1)", "L // C"]),
    st.lists(st.sampled_from([1, 2, 3, 5, "L", "C", -1, "L // 4"]), min_size=1, max_size=3),
    st.sampled_from(["valid", "same", "causal", "relu", "softmax", "tanh", True, False, 0.5, -1, 1, 2, 3, "l0", "l1", "x"]),
)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths(v, (*prefix, i))
    return out


def get(document: Any, path: tuple) -> Any:
    for p in path:
        document = document[p]
    return document


@st.composite
def mutated_texts(draw: Any) -> str:
    document, _ = draw(valid_specs())
    data = plain(document, None)
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        candidates = paths(data)[1:] or [()]
        in_layers = [p for p in candidates if len(p) >= 3 and p[0] == "layers"]
        where = draw(st.sampled_from(in_layers if in_layers and draw(st.booleans()) else candidates))
        action = draw(st.sampled_from(["delete", "replace", "plausible", "plausible", "plausible", "swap_type", "insert",
                                       "duplicate"]))
        if not where:
            data = draw(JUNK)
            continue
        parent = get(data, where[:-1])
        key = where[-1]
        if action == "delete":
            del parent[key]
        elif action == "replace":
            parent[key] = draw(JUNK)
        elif action == "plausible":
            parent[key] = draw(PLAUSIBLE)
        elif action == "swap_type":
            layers = data.get("layers") if isinstance(data, dict) else None
            if isinstance(layers, list) and layers and isinstance(layers[0], dict):
                layer = draw(st.sampled_from([x for x in layers if isinstance(x, dict)] or [{}]))
                layer["type"] = draw(st.sampled_from(sorted(LAYERS)))
        elif action == "insert" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["junk", "type", "inputs", "units", "name", "shape", "axis", "L", "block"]))] = draw(JUNK)
        elif action == "insert" and isinstance(parent, list):
            parent.insert(draw(st.integers(0, len(parent))), draw(JUNK))
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(parent[key])
        if not isinstance(data, dict):
            break
    text = yaml.safe_dump(data, sort_keys=False)
    if draw(st.integers(0, 7)) == 0:  # break the YAML text itself
        position = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["insert", "delete", "truncate"]))
        if edit == "insert":
            junk = draw(st.sampled_from(["\t", ":", "- ", "{", "]", "&a ", "*a", "!!python/none ", "'", "\n  ", "?", "%", "@",
                                         "010", "!!binary ", "<<: 1\n", "\x00", "\ufeff", "\u2028"]))
            text = text[:position] + junk + text[position:]
        elif edit == "delete":
            text = text[:position] + text[position + 1:]
        else:
            text = text[:position]
    return text


@budget(ci_examples=300)
@given(mutated_texts(), values)
def test_mutations_raise_only_nnspec_errors(text, env):
    try:
        report = analyze_text(text)
        for fmt in FORMATS:
            render_report(report, fmt)
        names = {s.name for s in report.symbols}
        at = report.at(**{k: v for k, v in env.items() if k in names})
        render_report(at, "table")
        render_report(at, "json")
    except NNSpecError:
        pass
