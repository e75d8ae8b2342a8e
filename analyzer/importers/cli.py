"""`analyze convert MODEL [-o SPEC.yaml] [--symbol L=INPUT:AXIS] [--other-size MODEL2] [--set NAME=VALUE]`,
and the model-file branch of `analyze MODEL`.

Notes and findings (sizes that stop matching once a symbol varies) go to stderr; the
spec goes to the -o file, or to stdout.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from analyzer.assignments import parse_assignments
from analyzer.command import run_guarded
from analyzer.errors import UsageError
from analyzer.importers import MODEL_EXTENSIONS, import_model, is_model_file
from analyzer.spec.loader import Spec

SYMBOL_HELP = ("name input dimensions as a symbol: NAME=INPUT:AXIS[,INPUT:AXIS...], axis counted without the batch "
               "axis, e.g. --symbol L=input1:1 (repeatable; model files only)")
OTHER_SIZE_HELP = ("the same model saved at other sizes of the --symbol dimensions (repeatable; one per symbol): "
                   "every size that differs between the files is fitted as a*L + b (docs/importers.md)")

CUSTOM_LAYERS_HELP = ("declare the model's own layer classes: a YAML mapping of class name to what it is (an nnspec "
                      "type, elementwise, or params and cost as expressions; docs/importers.md#custom-layers)")


def load_model_spec(path: str, symbols: Sequence[str], values: dict[str, int], other_sizes: Sequence[str] = (),
                    custom_layers: str | None = None) -> Spec:
    """The converted spec of a model file, its notes and findings written to stderr."""
    model = import_model(path, symbols, values, other_sizes, custom_layers)
    for message in model.messages():
        print(message, file=sys.stderr)
    return model.spec


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="analyze convert",
        description="Convert a Keras (.keras, .json, .h5) or ONNX (.onnx) model into an nnspec spec (YAML).",
    )
    parser.add_argument("model", help=f"the model file ({', '.join(MODEL_EXTENSIONS)})")
    parser.add_argument("-o", "--output", metavar="SPEC", help="write the spec here (default: standard output)")
    parser.add_argument("--symbol", dest="symbols", action="append", default=[], metavar="NAME=INPUT:AXIS", help=SYMBOL_HELP)
    parser.add_argument("--other-size", dest="other_sizes", action="append", default=[], metavar="MODEL",
                        help=OTHER_SIZE_HELP)
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="NAME=VALUE",
                        help="default value of a symbol for an open dimension of the model (e.g. an ONNX dim_param)")
    parser.add_argument("--custom-layers", metavar="FILE.yaml", default=None, help=CUSTOM_LAYERS_HELP)
    parser.add_argument("--debug", action="store_true", help="show a traceback on internal errors")
    return parser


def convert(args: argparse.Namespace) -> str:
    if not is_model_file(args.model):
        raise UsageError(f"{args.model}: not a model file (known extensions: {', '.join(MODEL_EXTENSIONS)})")
    model = import_model(args.model, args.symbols, parse_assignments(args.assignments), args.other_sizes,
                         args.custom_layers)
    model.report  # noqa: B018  (a spec that does not analyze is not written)
    for message in model.messages():
        print(message, file=sys.stderr)
    text = model.yaml
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"-o {args.output}: cannot write: {exc}") from None
        print(f"wrote {args.output}: {len(model.document.layers)} layers, symbols: "
              f"{', '.join(f'{s.name}={s.default}' for s in model.document.symbols) or 'none'}", file=sys.stderr)
        return ""
    return text


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    return run_guarded(lambda: convert(args), debug=args.debug, report_with="the model file")
