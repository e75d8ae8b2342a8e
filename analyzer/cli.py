"""`analyze SPEC [--set L=1024] [--bias on|off|spec] [--format ...]`.

Exit status: 0 success; 2 a problem with the spec or the command line (message,
no traceback); 1 an internal error (a bug: please report; --debug shows it).
"""

from __future__ import annotations

import argparse
import re
import sys
import traceback
from collections.abc import Sequence

from analyzer.errors import NNSpecError, UsageError
from analyzer.formats import FORMATS, render_report
from analyzer.graph import BIAS_MODES, analyze_spec
from analyzer.spec.loader import load_spec

_ASSIGNMENT = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*=\s*(-?[0-9][0-9_]*)\s*$")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="analyze",
        description="Exact symbolic params, MACs and FLOPs of a neural network spec (YAML).",
    )
    parser.add_argument("spec", help="path to a spec file, e.g. specs/scnn.yaml")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="NAME=VALUE",
                        help="value of a symbol, e.g. --set L=1024 (repeatable)")
    parser.add_argument("--bias", choices=BIAS_MODES, default="spec",
                        help="count every layer that can have a bias with it (on), without it (off), or as written (spec)")
    parser.add_argument("--format", choices=sorted(FORMATS), default="table", help="output format (default: table)")
    parser.add_argument("--depth", type=int, default=0, metavar="N",
                        help="one row per block instance at nesting depth N (1: top-level blocks); 0: every layer")
    parser.add_argument("--debug", action="store_true", help="show a traceback on internal errors")
    return parser


def parse_assignments(assignments: Sequence[str]) -> dict[str, int]:
    values: dict[str, int] = {}
    for text in assignments:
        match = _ASSIGNMENT.match(text)
        if not match:
            raise UsageError(f"--set {text!r}: expected NAME=INTEGER, e.g. --set L=1024")
        name, value = match.group(1), int(match.group(2))
        if name in values:
            raise UsageError(f"--set {name} given twice")
        values[name] = value
    return values


def run(args: argparse.Namespace) -> str:
    values = parse_assignments(args.assignments)
    report = analyze_spec(load_spec(args.spec), bias=args.bias)
    if values:
        report = report.at(**values)
    if args.depth:
        report = report.grouped(args.depth)
    return render_report(report, args.format)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        sys.stdout.write(run(args))
    except NNSpecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # a bug in nnspec, not in the spec
        if args.debug:
            traceback.print_exc()
        print(f"internal error: {type(error).__name__}: {error}\n"
              "This is a bug in nnspec, not in your spec; please report it with the spec file "
              "(rerun with --debug for the traceback).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
