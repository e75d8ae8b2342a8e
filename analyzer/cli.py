"""`analyze SPEC [--set L=1024] [--bias on|off|spec] [--format ...] [--convention NAME]`.

Exit status: 0 success; 2 a problem with the spec or the command line (message,
no traceback); 1 an internal error (a bug: please report; --debug shows it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from analyzer.api import analyze_phase
from analyzer.assignments import parse_assignments
from analyzer.command import run_guarded
from analyzer.errors import NNSpecError, UsageError
from analyzer.formats import FORMATS, render_report
from analyzer.graph import BIAS_MODES
from analyzer.memory import DTYPE_BYTES, memory_summary
from analyzer.report import Report
from analyzer.spec.loader import load_spec
from analyzer.training_memory import MIXED_PRECISION

if TYPE_CHECKING:
    from analyzer.sweep import Sweep
    from analyzer.training import TrainingStep

# Cold start (issue 9): `analyze SPEC` imports only what reading, analyzing and printing a spec
# needs. The convention profiles, the model importers, sweeps, plots and the export are imported
# where an option or a model file asks for them (tests/test_cli_imports.py checks this).


class _ProfileNames(Sequence[str]):
    """--convention's choices, analyzer.conventions.PROFILES in its order, read only when argparse
    checks a --convention value or prints the help: the profiles are ~25 ms of imports that a
    run without --convention does not need."""

    def _names(self) -> list[str]:
        from analyzer.conventions import PROFILES

        return list(PROFILES)

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._names())

    def __contains__(self, value: object) -> bool:
        return value in self._names()


def is_model_file(path: str) -> bool:
    """analyzer.importers.is_model_file, without importing the importers for a .yaml / .yml spec."""
    if Path(path).suffix.lower() in (".yaml", ".yml"):
        return False
    from analyzer.importers import is_model_file as by_extension

    return by_extension(path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="analyze",
        description="Exact symbolic params, MACs and FLOPs of a neural network spec (YAML).",
    )
    parser.add_argument("spec", help="path to a spec file, e.g. specs/scnn.yaml, or a model file "
                                     "(.keras, .json, .h5, .onnx: docs/importers.md)")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="NAME=VALUE",
                        help="value of a symbol, e.g. --set L=1024 (repeatable)")
    parser.add_argument("--bias", choices=BIAS_MODES, default="spec",
                        help="count every layer that can have a bias with it (on), without it (off), or as written (spec)")
    parser.add_argument("--format", choices=sorted(FORMATS), default="table", help="output format (default: table)")
    parser.add_argument("--convention", choices=_ProfileNames(), metavar="NAME",
                        help="also count each layer and the total as another tool would: "
                             "%(choices)s (docs/conventions.md#convention-profiles)")
    parser.add_argument("--dtype", choices=[*DTYPE_BYTES, *MIXED_PRECISION], default="float32",
                        help="element type for the memory figures (weights, largest activation, peak activations; "
                             "table and json; default: float32); with --training also Keras' mixed-precision policies "
                             "mixed_float16 and mixed_bfloat16 (2-byte weights, gradients and activations, float32 "
                             "master weights and optimizer state)")
    parser.add_argument("--sweep", metavar="NAME=VALUES",
                        help="totals at many values of one symbol, one row each: L=128,256,512, L=64..4096*2 "
                             "(geometric) or L=100..1000+100 (arithmetic); other symbols as --set; in --phase decode "
                             "e.g. P=1024..32768*2 (the cache), in --phase generate G=... or T=... (the closed form)")
    parser.add_argument("--plot", metavar="FILE",
                        help="with --sweep: also draw FLOPs per layer (stacked) and params vs the swept symbol "
                             "into FILE (.png, .svg, .pdf; needs matplotlib: pip install 'nnspec[plot]')")
    parser.add_argument("--phase", choices=("prefill", "decode", "generate"), default="prefill",
                        help="a decoder's forward pass: prefill (T tokens, no cache; default), decode (T new tokens, "
                             "default 1, after P cached ones whose keys and values each causal attention reads from "
                             "its cache; --set P=4096), or generate (the prefill of a prompt of T, then G - 1 decode "
                             "steps: the totals for G generated tokens, --set G=512)")
    parser.add_argument("--depth", type=int, default=0, metavar="N",
                        help="one row per block instance at nesting depth N (1: top-level blocks); 0: every layer")
    parser.add_argument("--symbol", dest="symbols", action="append", default=[], metavar="NAME=INPUT:AXIS",
                        help="model files: name input dimensions as a symbol, e.g. --symbol L=input1:1 (docs/importers.md)")
    parser.add_argument("--other-size", dest="other_sizes", action="append", default=[], metavar="MODEL",
                        help="model files: the same model saved at another size of the --symbol dimensions; sizes that "
                             "differ are fitted as a*L + b (docs/importers.md)")
    parser.add_argument("--custom-layers", metavar="FILE.yaml", default=None,
                        help="model files: declare the model's own layer classes (docs/importers.md#custom-layers)")
    training = parser.add_argument_group("training",
                                         "the cost of one training step with B samples (docs/conventions.md#training)")
    training.add_argument("--training", action="store_true",
                          help="also show one training step per layer: forward, backward (grad input, grad weight, "
                               "other), optimizer, and the step's memory, in any --format; the batch is the symbol B "
                               "(--set B=32, --sweep B=1..256*2); --set N=50000 adds the totals per epoch of N samples "
                               "(N_data in a spec that declares its own N)")
    training.add_argument("--optimizer", choices=("sgd", "momentum", "adam", "adamw"), default=None,
                          help="with --training: the optimizer (default: adam)")
    training.add_argument("--frozen", action="append", default=[], metavar="NAME[,NAME...]",
                          help="with --training: layers (or block instances) that do not train, as trainable: false")
    training.add_argument("--input-grad", action="store_true",
                          help="with --training: also the gradient of the model input (off, as in training)")
    export = parser.add_argument_group("export", "write a runnable model instead of the report (docs/export.md)")
    export.add_argument("--export", choices=("keras", "torch"),
                        help="write a standalone Python file that builds the model in Keras 3 or PyTorch at the --set sizes")
    export.add_argument("-o", "--output", metavar="FILE", help="where --export writes the file (default: standard output)")
    export.add_argument("--native-gru", action="store_true",
                        help="--export torch: every tanh/sigmoid GRU as torch.nn.GRU, as a straightforward port does "
                             "(a reset_after=False GRU is then another function with 3*units more params)")
    parser.add_argument("--debug", action="store_true", help="show a traceback on internal errors")
    return parser


# The symbols a phase adds, and the phase: a --set of one without its phase is a likely slip, said in a hint.
PHASE_SYMBOLS = {"P": ("decode", "the cached tokens of a decode step"), "G": ("generate", "the generated tokens")}


def run(args: argparse.Namespace) -> str:
    try:
        return _run(args)
    except NNSpecError as error:
        for name, (phase, what) in PHASE_SYMBOLS.items():
            if error.hint is None and args.phase != phase and error.message.startswith(f"--set {name}:"):
                error.hint = f"{name} is {what}: give --phase {phase} too"
        raise


def _run(args: argparse.Namespace) -> str:
    values = parse_assignments(args.assignments)
    _check_training_options(args)
    if is_model_file(args.spec):  # a Keras or ONNX model, converted to a spec (analyzer/importers)
        from analyzer.importers.cli import load_model_spec

        spec = load_model_spec(args.spec, args.symbols, _import_values(args.phase, values), args.other_sizes,
                               args.custom_layers)
    elif args.symbols or args.other_sizes or args.custom_layers:
        what = ("--symbol names dimensions of" if args.symbols else "--other-size goes with" if args.other_sizes
                else "--custom-layers declares the layer classes of")
        raise UsageError(f"{what} a model file (.keras, .json, .h5, .onnx); a spec declares its symbols")
    else:
        spec = load_spec(args.spec)
    if args.training:
        from analyzer.spec.custom_layers import refuse_training

        refuse_training(spec)  # a declared layer without a spec type has no backward rule
    if args.export or args.output or args.native_gru:
        return _export(args, spec, values)
    if args.phase == "generate":
        return _generation(args, spec, values)
    report = analyze_phase(spec, args.bias, args.phase)
    batch, dataset = _training_values(args, report, values)
    if values:
        report = report.at(**values)
    if args.sweep:
        return _sweep(args, report, values, batch, dataset)
    if args.plot:
        raise UsageError("--plot draws a sweep: give --sweep too, e.g. --sweep L=64..4096*2 --plot cost.png")
    convention = None
    if args.convention:
        from analyzer.conventions import recount_with

        convention = recount_with(report, args.convention)
    if args.dtype in MIXED_PRECISION and not args.training:
        raise UsageError(f"--dtype {args.dtype} is a mixed-precision training policy: give --training too")
    # on the layer graph, before any --depth grouping; a mixed policy's activations are in its 2-byte dtype
    memory = memory_summary(report, MIXED_PRECISION.get(args.dtype, args.dtype))
    if args.training:
        return _training(args, report, batch, dataset, memory)
    if args.depth:
        convention = convention.grouped(report, args.depth) if convention else None
        report = report.grouped(args.depth)
    return render_report(report, args.format, convention, memory)


def _import_values(phase: str, values: dict[str, int]) -> dict[str, int]:
    """The --set values a model file is converted with: not those of the symbols the phase adds (decode's cache P,
    generate's G: the converted model does not have them yet), nor decode's T (there the new tokens; the cache P
    defaults to the model's own T, as for a spec). Every value still applies to the report (Report.at)."""
    skipped = {"decode": ("T", "P"), "generate": ("G",)}.get(phase, ())
    return {k: v for k, v in values.items() if k not in skipped}


def _check_training_options(args: argparse.Namespace) -> None:
    """The training options go with --training, and --training with what it can show."""
    if not args.training:
        if args.optimizer or args.frozen or args.input_grad:
            raise UsageError("--optimizer, --frozen and --input-grad go with --training")
        return
    for option, given in (("--depth", args.depth), ("--export", args.export), ("-o/--output", args.output),
                          ("--native-gru", args.native_gru)):
        if given:
            raise UsageError(f"--training does not combine with {option}")
    if args.phase == "decode":
        raise UsageError("--training counts a training step, a forward and backward pass over T tokens with no cache; "
                         "--phase decode is one inference step: give one or the other")
    if args.convention not in (None, "nnspec", "torch"):
        raise UsageError(f"--training counts with --convention nnspec or torch, not {args.convention}")
    if args.frozen and not _frozen(args):
        raise UsageError("--frozen: no layer name given, e.g. --frozen conv1d_1 or --frozen block1,dense_1")


def _frozen(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(n.strip() for names in args.frozen for n in names.split(",") if n.strip())


def _training_values(args: argparse.Namespace, report: Report, values: dict[str, int]) -> tuple[int | None, int | None]:
    """The batch B and the dataset size N from --set, when the spec has no symbol of that name of its own
    (analyzer.training.training_values): they are the training step's."""
    if not values:
        return None, None
    from analyzer.training import BATCH, dataset_name, training_values

    if args.training:
        return training_values(report, values)
    declared = {s.name for s in report.symbols}
    for name, what in ((BATCH, "the batch size"), (dataset_name(report), "the dataset size (per-epoch totals)")):
        if name in values and name not in declared:
            try:
                report.symbol(name)
            except UsageError as error:  # "unknown symbol", and what the name means with --training
                error.hint = f"{name} is {what} of a training step: give --training too"
                raise
    return None, None


def _step(args: argparse.Namespace, report: Report, batch: int | None, dataset: int | None) -> TrainingStep:
    """The training step the options ask for (analyzer/training.py)."""
    from analyzer.training import training_step

    return training_step(report, optimizer=args.optimizer or "adam", frozen=_frozen(args), input_grad=args.input_grad,
                         batch=batch, convention=args.convention or "nnspec", dataset=dataset)


def _training(args: argparse.Namespace, report: Report, batch: int | None, dataset: int | None, memory: object) -> str:
    """--training: the report, then one training step, in --format's form."""
    step = _step(args, report, batch, dataset)
    if args.format == "csv":  # one table: the report's columns and the step's
        from analyzer.formats.training_formats import render_csv

        return render_csv(step, args.dtype)
    if args.format == "json":  # one object, printed once
        import json

        from analyzer.formats.json_format import report_data

        data = report_data(report, None, memory)  # type: ignore[arg-type]
        data["training"] = step.as_dict(args.dtype)
        return json.dumps(data, indent=2) + "\n"
    text = render_report(report, args.format, None, memory)  # type: ignore[arg-type]
    if args.format in ("markdown", "latex"):
        from analyzer.formats.training_formats import render_section

        return text + render_section(step, args.format, args.dtype)
    from analyzer.formats.training import training_lines

    return text + "\n".join(training_lines(step, args.dtype)) + "\n"


def _generation(args: argparse.Namespace, spec: object, values: dict[str, int]) -> str:
    """--phase generate: the prefill's report, then the generation totals (table, json, markdown)."""
    from analyzer.phases import generation, generation_dict, generation_lines

    for option, given in (("--training", args.training), ("--convention", args.convention), ("--depth", args.depth)):
        if given:
            raise UsageError(f"--phase generate does not combine with {option} yet")
    if args.plot and not args.sweep:
        raise UsageError("--plot draws a sweep: give --sweep too, e.g. --sweep G=1..1024*2 --plot cost.png")
    if args.format not in ("table", "json", "markdown") and not args.sweep:
        raise UsageError(f"--phase generate shows in --format table, json or markdown, not {args.format}")
    result = generation(spec, args.bias)  # type: ignore[arg-type]
    report = result.report.at(**values) if values else result.report
    if args.dtype in MIXED_PRECISION:
        raise UsageError(f"--dtype {args.dtype} is a mixed-precision training policy, not for --phase generate")
    if args.sweep:  # the generation totals (closed forms in T, G and the spec's symbols) at each value
        from analyzer.sweep import generation_sweep, parse_sweep

        name, points = parse_sweep(args.sweep)
        if name in values:
            raise UsageError(f"--sweep {name} and --set {name}: give {name} one way")
        return _show_sweep(args, generation_sweep(result, report, name, points))
    text = render_report(report, args.format, None, memory_summary(report, args.dtype))
    if args.format == "json":
        import json

        data = json.loads(text)
        data["generation"] = generation_dict(result, report, DTYPE_BYTES[args.dtype])
        return json.dumps(data, indent=2) + "\n"
    lines = generation_lines(result, report, args.dtype, DTYPE_BYTES[args.dtype])
    if args.format == "markdown":
        return text + "\n## Generation\n\n" + "\n".join(f"- {line.strip()}" for line in lines[1:]) + "\n"
    return text + "\n".join(lines) + "\n"


def _sweep(args: argparse.Namespace, report: Report, values: dict[str, int], batch: int | None = None,
           dataset: int | None = None) -> str:
    """--sweep NAME=VALUES: one row of totals per value (analyzer/sweep.py, analyzer/formats/sweep.py); with
    --training, the step's totals (B is a symbol like any other)."""
    from analyzer.sweep import parse_sweep, sweep, training_sweep

    if (args.convention and not args.training) or args.depth:
        raise UsageError("--sweep shows totals; it does not combine with --convention or --depth")
    name, points = parse_sweep(args.sweep)
    if name in values:
        raise UsageError(f"--sweep {name} and --set {name}: give {name} one way")
    if args.training:
        from analyzer.training import BATCH, dataset_name

        own = dataset_name(report)
        if (name == BATCH and batch is not None) or (name == own and dataset is not None):
            raise UsageError(f"--sweep {name} and --set {name}: give {name} one way")
        step = _step(args, report, batch, 1 if name == own else dataset)  # the sweep sets N
        result = training_sweep(step, name, points, args.dtype)
    else:
        if name == "B" and all(s.name != "B" for s in report.symbols):
            raise UsageError("--sweep B: B is the batch size of a training step: give --training too")
        if name in PHASE_SYMBOLS and args.phase != PHASE_SYMBOLS[name][0] and all(s.name != name for s in report.symbols):
            phase, what = PHASE_SYMBOLS[name]
            raise UsageError(f"--sweep {name}: {name} is {what}: give --phase {phase} too")
        result = sweep(report, name, points)
    return _show_sweep(args, result)


def _show_sweep(args: argparse.Namespace, result: Sweep) -> str:
    """A sweep in --format, and drawn into --plot's file."""
    from analyzer.formats.sweep import render

    text = render(result, args.format)
    if args.plot:
        from analyzer.plot import save_plot

        save_plot(result, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return text


def _export(args: argparse.Namespace, spec: object, values: dict[str, int]) -> str:
    """--export keras|torch [-o FILE]: the model as a standalone Python file (analyzer/export)."""
    if not args.export:
        raise UsageError("-o/--output and --native-gru go with --export keras|torch")
    if args.native_gru and args.export != "torch":
        raise UsageError("--native-gru applies to --export torch")
    from analyzer.export import export_source
    from analyzer.spec.custom_layers import refuse_export

    refuse_export(spec, args.export)
    text = export_source(spec, args.export, bias=args.bias, native_gru=args.native_gru, **values)  # type: ignore[arg-type]
    if not args.output:
        return text
    try:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        raise UsageError(f"-o {args.output}: cannot write: {exc.strerror or exc}") from None
    return f"wrote {args.output}: {args.export} model of {args.spec}\n"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["convert"]:  # `analyze convert MODEL -o SPEC`: a Keras or ONNX model as a spec
        from analyzer.importers.cli import main as convert_main

        return convert_main(argv[1:])
    if argv[:1] == ["compare"]:  # `analyze compare SPEC...`: one row per spec (analyzer/compare.py)
        from analyzer.compare import main as compare_main

        return compare_main(argv[1:])
    if argv[:1] == ["explain"]:  # `analyze explain SPEC LAYER`: one layer's numbers, step by step (analyzer/explain.py)
        from analyzer.explain import main as explain_main

        return explain_main(argv[1:])
    if argv[:1] == ["schema"]:  # `analyze schema > nnspec.schema.json` (analyzer/schema.py)
        from analyzer.schema import main as schema_main

        return schema_main(argv[1:])
    args = build_parser().parse_args(argv)
    return run_guarded(lambda: run(args), debug=args.debug, report_with="the spec file")


if __name__ == "__main__":
    sys.exit(main())
