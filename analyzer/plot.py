"""`--sweep L=... --plot cost.png`: FLOPs per layer stacked against the swept symbol (the
largest layers by name, the rest as one band), and the params on a second panel; with
`--training`, each layer's training-step FLOPs and the step's memory in bytes; in --phase decode
the decode step's FLOPs per layer; in --phase generate two bands, the prefill's FLOPs and the
decode steps'.

Needs matplotlib (`pip install 'nnspec[plot]'`). Drawn with matplotlib's object API
(no pyplot state); out-of-domain values are left out of the curves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from analyzer.errors import UsageError
from analyzer.sweep import Sweep

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TOP_LAYERS = 8


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("--plot needs matplotlib", hint="pip install 'nnspec[plot]'") from None


def layer_bands(s: Sweep, top: int = TOP_LAYERS) -> tuple[list[int], dict[str, list[int]]]:
    """The valid swept values (increasing), and FLOPs per band: the `top` layers (top-level block
    instances, in a spec with blocks) with the most FLOPs at the largest valid value, largest
    first, then "other (N layers)" for the rest (if any)."""
    first = {}  # each valid value once, in increasing order
    for i, p in enumerate(s.points):
        if p.valid:
            first.setdefault(p.value, i)
    valid = [first[v] for v in sorted(first)]
    if not valid:
        raise UsageError(f"--plot: no value of --sweep {s.symbol} is in the domain")
    layers = s.report.layers
    if s.layer_flops is not None:  # a training sweep: the step's FLOPs, summed per top-level block instance
        rows: dict[str, Any] = {}
        for name, expr in s.layer_flops.items():  # --phase generate: bands that are not layers (prefill, decode)
            row = layers.get(name)
            band = row.groups[0][0] if row is not None and row.groups else name
            rows[band] = rows.get(band, 0) + expr
        rows = {name: expr for name, expr in rows.items() if expr != 0}
    else:
        if any(row.groups for row in layers.values()):  # blocks: one band per top-level block instance
            layers = s.report.grouped(1).layers
        rows = {name: row.counts.flops for name, row in layers.items() if row.counts.flops != 0}
    columns = s.columns(rows)
    per_layer = {name: [int(columns[name][i]) for i in valid] for name in rows}  # type: ignore[arg-type]
    ranked = sorted(per_layer, key=lambda name: (-per_layer[name][-1], name))
    keep = ranked if len(ranked) <= top + 1 else ranked[:top]
    bands = {name: per_layer[name] for name in keep}
    rest = [name for name in ranked if name not in bands]
    if rest:
        bands[f"other ({len(rest)} layers)"] = [sum(per_layer[name][j] for name in rest) for j in range(len(valid))]
    return [s.points[i].value for i in valid], bands


def build_figure(s: Sweep, top: int = TOP_LAYERS) -> Figure:
    """The figure: FLOPs per layer (stacked) above, total and trainable params below."""
    _require_matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter

    xs, bands = layer_bands(s, top)
    counts = {p.value: p.counts for p in s.points if p.counts}
    figure = Figure(figsize=(9, 7), layout="constrained")
    flops_ax, params_ax = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1.4))
    labels = list(bands)
    if len(xs) > 1:
        flops_ax.stackplot(xs, *bands.values(), labels=labels, alpha=0.9)
    else:  # one value: a stacked bar
        bottom = 0
        for label, values in bands.items():
            flops_ax.bar(xs, values, bottom=bottom, label=label, width=0.6 * max(xs[0], 1))
            bottom += values[0]
    fixed = ", ".join(f"{k}={v}" for k, v in s.fixed.items())
    training, phase = "training" in s.meta, s.meta.get("phase", "prefill")
    if phase == "generate":
        what, per = "generation FLOPs (prefill of T, then G - 1 decode steps)", ""
    else:
        what, per = ("training-step FLOPs" if training else "decode-step FLOPs" if phase == "decode" else "FLOPs"), " per layer"
    flops_ax.set_title(f"{s.report.name}: {what}{per} vs {s.symbol}" + (f" ({fixed})" if fixed else ""))
    flops_ax.set_ylabel("FLOPs")
    flops_ax.yaxis.set_major_formatter(EngFormatter())
    grouped = any(row.groups for row in s.report.layers.values())
    legend = "phase" if phase == "generate" else "layer or block" if grouped else "layer"
    flops_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small", title=legend)
    flops_ax.grid(alpha=0.3)
    if training:  # the step's memory lines, in bytes
        for q in (q for q in s.quantities if q.endswith("_bytes")):
            params_ax.plot(xs, [counts[x][q] for x in xs], marker=".", label=q.removesuffix("_bytes").replace("_", " "))
        params_ax.set_ylabel(f"bytes ({s.meta['training']['dtype']})")
    else:
        params = [counts[x]["params"] for x in xs]
        trainable = [counts[x]["trainable_params"] for x in xs]
        params_ax.plot(xs, params, marker="o", label="params")
        if trainable != params:
            params_ax.plot(xs, trainable, marker=".", linestyle="--", label="trainable params")
        params_ax.set_ylabel("params")
    params_ax.set_xlabel(s.symbol)
    params_ax.yaxis.set_major_formatter(EngFormatter())
    params_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    params_ax.grid(alpha=0.3)
    if len(xs) > 1 and xs[0] > 0 and xs[-1] / xs[0] >= 16:  # a geometric sweep reads better on a log axis
        params_ax.set_xscale("log", base=2)
    return figure


def save_plot(s: Sweep, path: str, top: int = TOP_LAYERS) -> None:
    figure = build_figure(s, top)
    try:
        figure.savefig(path, dpi=120)
    except OSError as exc:
        raise UsageError(f"--plot {path}: cannot write: {exc.strerror or exc}") from None
    except ValueError as exc:  # an extension matplotlib has no writer for
        raise UsageError(f"--plot {path}: {exc}", hint="use .png, .svg or .pdf") from None
