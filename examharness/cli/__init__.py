"""Command line: parse, make one call into the library, print, map errors to exit codes.

``argparse`` and its ``Namespace`` stay in this package: each command in :mod:`.commands` and
:mod:`.views` turns the parsed flags into one typed library call. Exit codes: 0 success, 1 bad
input or a failed check (one ``FILE:LINE: field: message`` line per problem, never a traceback),
130 interrupted. Heavy imports happen inside each command so that ``examharness --help`` starts fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from examharness.cli.parser import build_parser
from examharness.errors import InputError

__all__ = ["build_parser", "main"]


def _handlers() -> dict[str, Callable[[argparse.Namespace], int]]:
    from examharness.cli import commands, languages, scaling, views

    return {
        "validate": commands.validate, "list": commands.list_exams, "render": commands.render,
        "import": commands.import_bank, "run": commands.run, "score": commands.score,
        "report": views.report, "compare": views.compare, "chart": views.chart,
        "grade": views.grade, "contamination": views.contamination, "translate": languages.translate,
        "loss": scaling.loss_command, "scaling": scaling.scaling_command,
        "scales": views.scales,
    }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return _handlers()[args.command](args)
    except InputError as err:
        print(str(err), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
