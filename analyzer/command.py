"""How every `analyze` subcommand ends: output on stdout, or one error line and an exit status.

0 success; 2 a problem with the input or the command line (message, no traceback);
1 an internal error, i.e. a bug in nnspec (a short "please report" line; --debug
shows the traceback); 130 interrupted.
"""

from __future__ import annotations

import gc
import sys
import traceback
from collections.abc import Callable

from analyzer.errors import NNSpecError


def run_guarded(produce: Callable[[], str], *, debug: bool = False, report_with: str = "the input file") -> int:
    # A run builds one large object graph (spec, formulas, report) that lives until the end, with
    # almost no cyclic garbage: at the default thresholds the collector's full passes over it grew
    # with its size (9 on the 10,000-layer conv stack, ~0.7 s; issue 9). Collect less often while
    # producing the output; the thresholds are restored after, for callers such as the tests.
    thresholds = gc.get_threshold()
    gc.set_threshold(50_000, 10, 10)
    try:
        sys.stdout.write(produce())
    except NNSpecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # a bug in nnspec, not in the user's input
        if debug:
            traceback.print_exc()
        print(f"internal error: {type(error).__name__}: {error}\n"
              f"This is a bug in nnspec, not in your input; please report it with {report_with} "
              "(rerun with --debug for the traceback).", file=sys.stderr)
        return 1
    finally:
        gc.set_threshold(*thresholds)
    return 0
