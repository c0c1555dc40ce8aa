"""Command line: parse, make one call into the library, print, map errors to exit codes.

``argparse`` and its ``Namespace`` stay in this package: each command in :mod:`.commands` and
:mod:`.views` turns the parsed flags into one typed library call. Heavy imports happen inside
each command so that ``examharness --help`` starts fast.

Exit codes (constants in :mod:`examharness.errors`):

- 0: success; for ``run``, every item got an answer (``empty`` and ``refused`` are answers).
- 1: bad input or a failed check (one ``FILE:LINE: field: message`` line per problem, never a
  traceback); also a run folder that another process is writing.
- 2: ``run`` finished but some items ended as ``error``; the top reasons are printed with counts
  and ``run --resume RUN_DIR --retry-errors`` asks them again.
- 3: the run was aborted: the backend refused for good (401, 403, 404) or no request was ever
  answered (nothing listening, a silent server); one line names the reason, the run folder and
  the resume command.
- 130: interrupted (Ctrl-C); the run folder's summary is written and the resume command printed.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from examharness.cli.parser import build_parser
from examharness.errors import EXIT_ABORTED, EXIT_BAD_INPUT, EXIT_INTERRUPTED, InputError, RunAborted
from examharness.gcpause import space_collections

__all__ = ["build_parser", "main"]


def _handlers() -> dict[str, Callable[[argparse.Namespace], int]]:
    from examharness.cli import batch, commands, languages, scaling, views

    return {
        "validate": commands.validate, "list": commands.list_exams, "render": commands.render,
        "import": commands.import_bank, "run": commands.run, "score": commands.score,
        "merge": commands.merge,
        "report": views.report, "compare": views.compare, "chart": views.chart,
        "grade": views.grade, "contamination": views.contamination, "translate": languages.translate,
        "loss": scaling.loss_command, "scaling": scaling.scaling_command,
        "scales": views.scales, "batch": batch.batch_command,
    }  # fmt: skip


def main(argv: Sequence[str] | None = None, *, own_process: bool = False) -> int:
    """Run one command; ``own_process``: the process ends with it (see :func:`entry`)."""
    try:
        args = build_parser().parse_args(argv)
        args.own_process = own_process
        return _handlers()[args.command](args)
    except InputError as err:
        print(str(err), file=sys.stderr)
        return EXIT_BAD_INPUT
    except RunAborted as err:
        print(str(err), file=sys.stderr)
        return EXIT_ABORTED
    except KeyboardInterrupt as err:
        print(str(err) or "interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0


def entry() -> NoReturn:
    """The ``examharness`` command and ``python -m examharness.cli``: :func:`main` in a process of
    its own, which may move what lives until it exits out of the cyclic collector's way
    (:func:`examharness.gcpause.settle`); what is left at the end is freed at exit by reference
    counting, without a last traversal of it by the collector. Its young objects are collected
    less often (:func:`examharness.gcpause.space_collections`)."""
    space_collections()
    code = main(own_process=True)
    gc.freeze()
    sys.exit(code)
