"""`analyze compare SPEC... [--set L=1024] [--phase prefill|decode] [--format table|markdown|csv|latex|json]`:
one row per spec with its params, trainable params, MACs and FLOPs (formula and value), how params and
FLOPs grow with one symbol (default L), and the layer with the most FLOPs.

Each argument is anything `analyze` reads: a spec (.yaml) or a model file (Keras .json / .keras / .h5, ONNX,
a Hugging Face config.json), converted by analyzer.importers as `analyze MODEL` converts it. Each is analyzed
on its own (`analyzer.api`'s pipeline in the --phase asked for, then `Report.at`):
* a `--set` symbol that a spec does not declare is ignored for that spec (and noted); one that no
  spec declares is an error (a typo);
* a value outside a spec's domain does not abort the table: that spec's row says
  "not valid at L=...: <reason>".

`--training` compares the specs' training steps instead (analyzer/compare_training.py).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import sympy

from analyzer.assignments import parse_assignments  # the same NAME=INTEGER rules as `analyze SPEC`
from analyzer.asymptotics import Growth, growth
from analyzer.command import run_guarded
from analyzer.errors import NNSpecError, UsageError, did_you_mean
from analyzer.graph import BIAS_MODES
from analyzer.report import LayerRow, Report
from analyzer.spec.loader import Spec, load_spec
from analyzer.symbolic import render

QUANTITIES = (("params", "Params"), ("trainable_params", "Trainable"), ("macs", "MACs"), ("flops", "FLOPs"))
GROWTHS = (("params", "Params"), ("flops", "FLOPs"))
SHOW = ("both", "values", "formulas")
SORT_KEYS = ("none", "name", "params", "macs", "flops")


@dataclass(frozen=True)
class Largest:
    name: str
    type: str
    flops: int
    share: Fraction  # of the model's FLOPs

    def text(self) -> str:
        return f"{self.name} ({self.type}) {float(self.share) * 100:.1f}%"


@dataclass(frozen=True)
class Row:
    """One spec of the comparison: its report at the chosen values, or why it is not valid there."""

    file: str
    name: str
    values: dict[str, int]  # the symbol values the row is at (the spec's defaults, overridden by --set)
    ignored: tuple[str, ...]  # --set symbols the spec does not declare
    report: Report | None  # None when the values are outside the spec's domain
    invalid: str | None = None
    order_symbol: str = "L"
    formulas: Report | None = None  # the symbolic report at the spec's defaults (formulas do not depend on values)

    @property
    def valid(self) -> bool:
        return self.report is not None

    def at_text(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.values.items()) or "no symbols"

    def expr(self, quantity: str) -> sympy.Expr:
        report = self.report or self.formulas
        assert report is not None
        return report.total.quantity(quantity)

    def value(self, quantity: str) -> int:
        assert self.report is not None
        return self.report.value(self.expr(quantity))

    def formula(self, quantity: str) -> str:
        return render(self.expr(quantity))

    def growth(self, quantity: str) -> Growth | None:
        """How the quantity grows with the order symbol (None: the spec has no such symbol)."""
        assert self.report is not None
        symbol = next((s.symbol for s in self.report.symbols if s.name == self.order_symbol), None)
        if symbol is None:
            return None
        return growth(self.expr(quantity), symbol, self.report.values)

    def order(self, quantity: str) -> str:
        g = self.growth(quantity)
        return "-" if g is None else g.order

    def leading(self, quantity: str) -> str:
        g = self.growth(quantity)
        return "-" if g is None else g.dominant()

    def growth_text(self, quantity: str) -> str:
        """'O(L) ~ 12,800*L' (the order and the leading term, floors dropped), or 'O(1)'."""
        g = self.growth(quantity)
        if g is None:
            return "-"
        return g.order if g.degree in (0, None) else f"{g.order} ~ {g.dominant()}"

    def largest(self) -> Largest | None:
        """The layer with the most FLOPs at the row's values (the first one, on a tie)."""
        assert self.report is not None
        report = self.report
        best: LayerRow | None = None
        best_flops = -1
        for layer in report.layers.values():
            flops = report.value(layer.counts.flops)
            if flops > best_flops:
                best, best_flops = layer, flops
        total = report.value(report.total.flops)
        if best is None or best_flops <= 0 or total <= 0:
            return None
        return Largest(best.name, best.type, best_flops, Fraction(best_flops, total))


# The symbols a phase adds to a spec (analyzer/phases.py): a model file is converted without their values, and
# in decode without T's either (T becomes the new tokens there; the cache P defaults to the model's own T).
PHASE_SYMBOLS = {"prefill": (), "decode": ("T", "P"), "generate": ("G",)}


def load_input(path: str, values: dict[str, int] | None = None, phase: str = "prefill",
               custom_layers: str | None = None) -> Spec:
    """The spec of `path` as `analyze PATH` reads it (analyzer.cli.run): a .yaml / .yml spec, or a model file
    converted by analyzer.importers with the `values` of the symbols it declares as its defaults (the others are
    left out here: compare ignores a --set symbol a spec does not declare). Notes go to stderr, once.
    `custom_layers`: a --custom-layers file, for the model files (analyzer/spec/custom_layers.py)."""
    import sys

    if Path(path).suffix.lower() in (".yaml", ".yml"):
        return load_spec(path)
    from analyzer.importers import import_model, is_model_file

    if not is_model_file(path):
        return load_spec(path)
    model = import_model(path, custom_layers=custom_layers)  # at its own sizes, to learn the symbols it declares
    skipped = PHASE_SYMBOLS.get(phase, ())
    own = {s.name for s in model.spec.symbols}
    chosen = {k: v for k, v in (values or {}).items() if k in own and k not in skipped}
    if chosen:  # converted again with the values, as `analyze PATH --set ...` converts it
        model = import_model(path, values=chosen, custom_layers=custom_layers)
    for message in model.messages():
        print(f"{path}: {message}", file=sys.stderr)
    return model.spec


def _analyzed(path: str, values: dict[str, int], bias: str, phase: str, custom_layers: str | None = None) -> Report:
    from analyzer.api import analyze_phase

    if phase == "generate":
        raise UsageError("compare --phase generate is not supported: compare shows one forward pass per model; "
                         "run `analyze MODEL --phase generate --set G=...` on each",
                         hint="compare --phase prefill or --phase decode")
    return analyze_phase(load_input(path, values, phase, custom_layers), bias, phase)


def compare(specs: Sequence[str], values: dict[str, int] | None = None, *, bias: str = "spec",
            order_symbol: str = "L", sort: str = "none", phase: str = "prefill",
            custom_layers: str | None = None) -> list[Row]:
    """Analyze every spec or model file at `values` (each takes the symbols it declares), in `phase`."""
    values = dict(values or {})
    reports = [_analyzed(str(path), values, bias, phase, custom_layers) for path in specs]
    declared = {s.name for r in reports for s in r.symbols}
    for name in values:
        if name not in declared:
            raise UsageError(f"--set {name}: no spec declares the symbol '{name}' "
                             f"(declared: {', '.join(sorted(declared)) or 'none'})",
                             hint=did_you_mean(name, declared))
    rows = []
    for path, report in zip(specs, reports, strict=True):
        own = {s.name for s in report.symbols}
        chosen = {k: v for k, v in values.items() if k in own}
        ignored = tuple(k for k in values if k not in own)
        at = {**report.symbol_values(), **chosen}
        try:
            rows.append(Row(str(path), report.name, at, ignored, report.at(**chosen), None, order_symbol, report))
        except NNSpecError as error:
            reason = (f"layer '{error.layer}' ({error.layer_type}): " if error.layer else "") + error.message
            rows.append(Row(str(path), report.name, at, ignored, None, reason, order_symbol, report))
    return sort_rows(rows, sort)


def difference(rows: list[Row]) -> tuple[str, dict[str, int]] | None:
    """Of two valid rows, the second's totals minus the first's (params, trainable, MACs, FLOPs) and a label
    "second - first"; None for any other number of rows or when one is out of its domain. Shown in the table
    and markdown (a last row) and the JSON ("difference"); csv and latex keep one row per model."""
    if len(rows) != 2 or not all(r.valid for r in rows):
        return None
    first, second = rows
    return f"{second.name} - {first.name}", {q: second.value(q) - first.value(q) for q, _ in QUANTITIES}


def sort_rows(rows: list[Row], key: str) -> list[Row]:
    if key == "none":
        return rows
    if key == "name":
        return sorted(rows, key=lambda r: r.name.lower())
    valid = sorted((r for r in rows if r.valid), key=lambda r: r.value(key))
    return valid + [r for r in rows if not r.valid]


# ---------------------------------------------------------------------------------- rendering


def _common_values(rows: list[Row]) -> str | None:
    texts = {r.at_text() for r in rows}
    return texts.pop() if len(texts) == 1 else None


def _notes(rows: list[Row]) -> list[str]:
    notes = []
    for r in rows:
        if r.ignored:
            names = ", ".join(r.ignored)
            notes.append(f"{r.name}: --set {names} ignored (not a symbol of {r.file})")
    for r in rows:
        if not r.valid:
            notes.append(f"{r.name}: not valid at {r.at_text()}: {r.invalid}")
    return notes


def _headers(order_symbol: str) -> list[str]:
    return ["Model", *(title for _, title in QUANTITIES), *(f"{title} in {order_symbol}" for _, title in GROWTHS),
            "Largest layer (FLOPs)"]


def _largest_text(row: Row) -> str:
    largest = row.largest()
    return "-" if largest is None else largest.text()


def _formula_quantities(rows: list[Row]) -> list[tuple[str, str]]:
    """The quantities of the formulas listing: trainable only when some spec has non-trainable params."""
    split = any(r.formula("trainable_params") != r.formula("params") for r in rows if r.formulas is not None)
    return [(q, t) for q, t in QUANTITIES if q != "trainable_params" or split]


def render_table(rows: list[Row], show: str, order_symbol: str) -> str:
    """The values in a grid (--show values), the formulas listed one per line (--show formulas), or both."""
    common = _common_values(rows)
    out = [f"Comparison of {len(rows)} specs" + (f" at {common}" if common else "")]
    if show in ("both", "values"):
        headers = _headers(order_symbol) + ([] if common else ["Symbols"])
        lines: list[list[str]] = []
        for r in rows:
            if not r.valid:
                lines.append([r.name, f"not valid at {r.at_text()} (see below)"])
                continue
            lines.append([r.name, *(f"{r.value(q):,}" for q, _ in QUANTITIES), *(r.growth_text(q) for q, _ in GROWTHS),
                          _largest_text(r)] + ([] if common else [r.at_text()]))
        diff = difference(rows)
        if diff is not None:  # two models: the second's totals minus the first's, signed
            label, by = diff
            lines.append([label, *(f"{by[q]:+,}" for q, _ in QUANTITIES), *([""] * (len(headers) - 1 - len(QUANTITIES)))])
        widths = [len(h) for h in headers]
        for line in lines:
            if len(line) == len(headers):
                widths = [max(w, len(c)) for w, c in zip(widths, line, strict=True)]
            else:
                widths[0] = max(widths[0], len(line[0]))

        def fmt(line: list[str]) -> str:
            if len(line) != len(headers):  # an invalid row: the reason spans the other columns
                return (line[0].ljust(widths[0]) + "  " + line[1]).rstrip()
            numeric = range(1, 1 + len(QUANTITIES))
            cells = enumerate(zip(line, widths, strict=True))
            return "  ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in cells).rstrip()

        rule = "=" * (sum(widths) + 2 * (len(widths) - 1))
        body = [fmt(line) for line in lines]
        if diff is not None:
            body.insert(len(rows), "-" * len(rule))
        out += [rule, fmt(headers), rule, *body, rule]
    listed = [r for r in rows if r.formulas is not None]
    if show in ("both", "formulas") and listed:
        out.append("Formulas:")
        label = max(len(r.name) for r in listed) + 1
        quantities = _formula_quantities(rows)
        width = max(len(title) for _, title in quantities) + 1
        for r in listed:
            for i, (q, title) in enumerate(quantities):
                out.append(f"  {r.name if i == 0 else '':<{label}} {title + ':':<{width}} {r.formula(q)}")
    out.extend(f"Note: {n}" for n in _notes(rows))
    return "\n".join(out) + "\n"


def render_markdown(rows: list[Row], show: str, order_symbol: str) -> str:
    common = _common_values(rows)
    out = []
    if common and show != "formulas":
        out += [f"At {common}.", ""]
    if show in ("both", "values"):
        headers = _headers(order_symbol) + ([] if common else ["Symbols"])
        align = ["---", *("---:" for _ in QUANTITIES), *("---" for _ in GROWTHS), "---"] + ([] if common else ["---"])
        out += ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
        for r in rows:
            if not r.valid:
                cells = [r.name, f"not valid at {r.at_text()}: {r.invalid}", *("" for _ in range(len(headers) - 2))]
            else:
                cells = [r.name, *(f"{r.value(q):,}" for q, _ in QUANTITIES), *(r.growth_text(q) for q, _ in GROWTHS),
                         _largest_text(r)] + ([] if common else [r.at_text()])
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        diff = difference(rows)
        if diff is not None:
            label, by = diff
            cells = [f"*{label}*", *(f"{by[q]:+,}" for q, _ in QUANTITIES), *([""] * (len(headers) - 1 - len(QUANTITIES)))]
            out.append("| " + " | ".join(cells) + " |")
    listed = [r for r in rows if r.formulas is not None]
    if show in ("both", "formulas") and listed:
        quantities = _formula_quantities(rows)
        if show == "both":
            out.append("")
        out += ["| Model | " + " | ".join(title for _, title in quantities) + " |", "|---|" + "---|" * len(quantities)]
        for r in listed:
            out.append(f"| {r.name} | " + " | ".join(f"`{r.formula(q)}`" for q, _ in quantities) + " |")
    notes = [n for n in _notes(rows) if "ignored" in n or show == "formulas"]
    if notes:
        out += ["", *(f"- {n}" for n in notes)]
    return "\n".join(out) + "\n"


def render_csv(rows: list[Row], show: str, order_symbol: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["model", "file", "symbols", "valid", "reason"]
    for q, _ in QUANTITIES:
        header += [q, f"{q}_formula"]
    for q, _ in GROWTHS:
        header += [f"{q}_order_in_{order_symbol}", f"{q}_leading_term"]
    header += ["largest_layer", "largest_layer_type", "largest_layer_flops", "largest_layer_flops_share", "ignored_symbols"]
    writer.writerow(header)
    for r in rows:
        line: list[Any] = [r.name, r.file, r.at_text(), "yes" if r.valid else "no",
                           f"not valid at {r.at_text()}: {r.invalid}" if not r.valid else ""]
        for q, _ in QUANTITIES:  # formulas do not depend on the values: also given for an invalid row
            line += [r.value(q) if r.valid else "", r.formula(q)]
        if r.valid:
            for q, _ in GROWTHS:
                line += [r.order(q), r.leading(q)]
            largest = r.largest()
            line += (["", "", "", ""] if largest is None
                     else [largest.name, largest.type, largest.flops, f"{float(largest.share):.4f}"])
        else:
            line += [""] * (2 * len(GROWTHS) + 4)
        line.append(" ".join(r.ignored))
        writer.writerow(line)
    return buffer.getvalue()


def as_dict(row: Row) -> dict[str, Any]:
    out: dict[str, Any] = {"model": row.name, "file": row.file, "symbols": row.values, "ignored_symbols": list(row.ignored),
                           "valid": row.valid}
    if not row.valid:
        out["reason"] = f"not valid at {row.at_text()}: {row.invalid}"
        for q, _ in QUANTITIES:  # formulas do not depend on the values
            out[q] = {"expr": row.formula(q), "value": None}
        return out
    for q, _ in QUANTITIES:
        out[q] = {"expr": row.formula(q), "value": row.value(q)}
    out["growth"] = {q: {"symbol": row.order_symbol, "order": row.order(q), "leading_term": row.leading(q)} for q, _ in GROWTHS}
    largest = row.largest()
    out["largest_layer"] = None if largest is None else {
        "name": largest.name, "type": largest.type, "flops": largest.flops, "flops_share": float(largest.share)}
    return out


def render_json(rows: list[Row], show: str, order_symbol: str) -> str:
    data: dict[str, Any] = {"models": [as_dict(r) for r in rows]}
    diff = difference(rows)
    if diff is not None:  # the second model minus the first
        data["difference"] = {"of": diff[0], **diff[1]}
    return json.dumps(data, indent=2) + "\n"


def _tex(text: str) -> str:
    return (text.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("&", r"\&").replace("%", r"\%")
            .replace("#", r"\#").replace("$", r"\$").replace("{", r"\{").replace("}", r"\}").replace("^", r"\^{}")
            .replace("~", r"\~{}").replace("<", r"\textless{}").replace(">", r"\textgreater{}").replace("--", "-{}-"))


def _tex_values(values: dict[str, int]) -> str:
    def name(k: str) -> str:
        return _tex(k) if len(k) == 1 else r"\mathit{" + _tex(k) + "}"

    return ", ".join(f"${name(k)}={_tex_number(v)}$" for k, v in values.items())


def _tex_number(value: int) -> str:
    return f"{value:,}".replace(",", "{,}")


def _tex_order(order: str) -> str:
    if order.startswith("O("):
        return "$" + order.replace("^", "^{").replace(")", "})" if "^" in order else ")") + "$"
    return _tex(order)


def _tex_formula(expr: sympy.Expr) -> str:
    """sympy's LaTeX, with multi-letter symbols upright-italic as one name (\\mathit{classes}, not c l a s s e s)."""
    expr = sympy.expand(expr)
    names = {s: r"\mathit{" + _tex(s.name) + "}" for s in expr.free_symbols if len(s.name) > 1}
    return sympy.latex(expr, symbol_names=names)


def render_latex(rows: list[Row], show: str, order_symbol: str) -> str:
    """booktabs tables (\\usepackage{booktabs}): the values (--show values), the formulas (--show
    formulas; in p-columns, so long formulas wrap between terms), or both, as two table floats."""
    common = _common_values(rows)
    at = f" at {_tex_values(rows[0].values)}" if common and rows[0].values else ""
    sym = f"${_tex(order_symbol)}$"
    out: list[str] = []
    if show in ("both", "values"):
        columns = len(QUANTITIES) + len(GROWTHS) + 2 + (0 if common else 1)
        out += [
            r"\begin{table}[t]",
            r"\centering",
            f"\\caption{{Parameters, MACs and FLOPs per inference{at}; growth of params and FLOPs in {sym}.}}",
            r"\begin{tabular}{l" + "r" * len(QUANTITIES) + "c" * len(GROWTHS) + "l" + ("" if common else "l") + "}",
            r"\toprule",
            " & ".join(["Model", *(t for _, t in QUANTITIES), *(f"{t} in {sym}" for _, t in GROWTHS), "Largest layer (FLOPs)"]
                       + ([] if common else ["Symbols"])) + r" \\",
            r"\midrule",
        ]
        for r in rows:
            if not r.valid:
                out.append(f"{_tex(r.name)} & \\multicolumn{{{columns - 1}}}{{l}}{{not valid at {_tex_values(r.values)}}} \\\\")
                continue
            largest = r.largest()
            cells = [_tex(r.name), *(_tex_number(r.value(q)) for q, _ in QUANTITIES),
                     *(_tex_order(r.order(q)) for q, _ in GROWTHS),
                     "-" if largest is None
                     else f"{_tex(largest.name)} ({_tex(largest.type)}) {float(largest.share) * 100:.1f}\\%"]
            if not common:
                cells.append(_tex_values(r.values))
            out.append(" & ".join(cells) + r" \\")
        out += [r"\bottomrule", r"\end{tabular}"]
        notes = _notes(rows)
        if notes:
            out += [r"\par\smallskip", r"{\footnotesize " + " ".join(_tex(n) + "." for n in notes) + "}"]
        out.append(r"\end{table}")
    listed = [r for r in rows if r.formulas is not None]
    if show in ("both", "formulas") and listed:
        quantities = _formula_quantities(rows)
        width = f"{0.88 / len(quantities):.2f}" + r"\linewidth"
        out += [
            r"\begin{table}[t]",
            r"\centering",
            r"\caption{Parameters, MACs and FLOPs per inference as formulas in the symbols.}",
            r"\begin{tabular}{l" + f"p{{{width}}}" * len(quantities) + "}",
            r"\toprule",
            " & ".join(["Model", *(t for _, t in quantities)]) + r" \\",
            r"\midrule",
        ]
        for r in listed:
            # \raggedright lets a long formula wrap between terms; it redefines \\, so rows end with \tabularnewline
            out.append(" & ".join([_tex(r.name), *(r"\raggedright $" + _tex_formula(r.expr(q)) + "$" for q, _ in quantities)])
                       + r" \tabularnewline")
        out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


RENDERERS: dict[str, Callable[[list[Row], str, str], str]] = {
    "table": render_table,
    "markdown": render_markdown,
    "csv": render_csv,
    "latex": render_latex,
    "json": render_json,
}


def render_rows(rows: list[Row], fmt: str = "table", show: str = "both", order_symbol: str = "L") -> str:
    return RENDERERS[fmt](rows, show, order_symbol)


# ---------------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="analyze compare",
        description="Compare specs: one row per spec with params, trainable params, MACs, FLOPs (formula and value), "
                    "their growth in a symbol and the largest layer by FLOPs.",
    )
    parser.add_argument("specs", nargs="+", metavar="SPEC",
                        help="spec files, e.g. specs/amc/*.yaml, or model files as `analyze` reads them (.keras, "
                             ".json, .h5, .onnx, a Hugging Face config.json: docs/importers.md)")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="NAME=VALUE",
                        help="value of a symbol for every spec that declares it, e.g. --set L=1024 (repeatable)")
    parser.add_argument("--phase", choices=("prefill", "decode"), default="prefill",
                        help="a decoder's forward pass, as in `analyze --phase`: prefill (T tokens, no cache; default) "
                             "or decode (T new tokens, default 1, after P cached ones; --set P=4096)")
    parser.add_argument("--format", choices=list(RENDERERS), default="table", help="output format (default: table)")
    parser.add_argument("--show", choices=SHOW, default="both",
                        help="the table of values, the formulas, or both (default) (table, markdown, latex; "
                             "csv and json always have both)")
    parser.add_argument("--order-in", dest="order_symbol", default="L", metavar="SYMBOL",
                        help="the symbol whose growth order is shown (default: L)")
    parser.add_argument("--sort", choices=SORT_KEYS, default="none", help="row order (default: as given)")
    parser.add_argument("--bias", choices=BIAS_MODES, default="spec",
                        help="count every layer that can have a bias with it (on), without it (off), or as written (spec)")
    training = parser.add_argument_group("training", "compare one training step of B samples instead "
                                                     "(docs/conventions.md#training)")
    training.add_argument("--training", action="store_true",
                          help="each spec's training step: forward, backward, optimizer and step FLOPs, the peak memory, "
                               "and per epoch with --set N=...; the batch is the symbol B (--set B=256)")
    training.add_argument("--optimizer", choices=("sgd", "momentum", "adam", "adamw"), default=None,
                          help="with --training: the optimizer (default: adam)")
    training.add_argument("--input-grad", action="store_true",
                          help="with --training: also the gradient of each model input")
    training.add_argument("--convention", choices=("nnspec", "torch"), default=None,
                          help="with --training: count as nnspec (default) or as torch's FlopCounterMode")
    training.add_argument("--dtype", default=None, metavar="DTYPE",
                          help="with --training: the element type of the peak memory (float32 default, float16, "
                               "bfloat16, int8, mixed_float16, mixed_bfloat16)")
    parser.add_argument("--custom-layers", metavar="FILE.yaml", default=None,
                        help="model files: declare the model's own layer classes (docs/importers.md#custom-layers)")
    parser.add_argument("--debug", action="store_true", help="show a traceback on internal errors")
    return parser


def run(args: argparse.Namespace) -> str:
    if args.training:
        return _run_training(args)
    if args.optimizer or args.input_grad or args.convention or args.dtype:
        raise UsageError("--optimizer, --input-grad, --convention and --dtype go with --training")
    rows = compare(args.specs, parse_assignments(args.assignments), bias=args.bias, order_symbol=args.order_symbol,
                   sort=args.sort, phase=args.phase, custom_layers=args.custom_layers)
    return render_rows(rows, args.format, args.show, args.order_symbol)


def _run_training(args: argparse.Namespace) -> str:
    """compare --training (analyzer/compare_training.py)."""
    from analyzer.compare_training import compare_training, render_training_rows, sort_training_rows
    from analyzer.training_memory import compute_bytes

    if args.show != "both" or args.order_symbol != "L":
        raise UsageError("--show and --order-in go without --training (it shows the step's totals)")
    if args.phase != "prefill":
        raise UsageError("--training counts a training step, a forward and backward pass over T tokens with no cache; "
                         "--phase decode is one inference step: give one or the other")
    dtype = args.dtype or "float32"
    try:
        compute_bytes(dtype)
    except ValueError as exc:
        raise UsageError(f"--dtype {dtype}: {exc}") from None
    optimizer, convention = args.optimizer or "adam", args.convention or "nnspec"
    rows = compare_training(args.specs, parse_assignments(args.assignments), bias=args.bias, optimizer=optimizer,
                            input_grad=args.input_grad, convention=convention, dtype=dtype,
                            load=lambda path, values=None: load_input(path, values, custom_layers=args.custom_layers))
    return render_training_rows(sort_training_rows(rows, args.sort), args.format, optimizer, convention)


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    return run_guarded(lambda: run(args), debug=args.debug, report_with="the spec files")
