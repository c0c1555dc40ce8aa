"""Runs inside the sandbox (copied there as a file; never imported by examharness itself).

Reads a one-line nonce from stdin, executes ``solution.py`` and then ``tests.py`` (which defines
``check(candidate)``, the HumanEval convention) in a fresh namespace, calls
``check(namespace[entry_point])`` and prints one result line ``<nonce> <json>`` as its last act.
A program that exits early, is killed or closes stdout prints no result line: the parent calls
that a crash (or a timeout / memory failure from the exit status), never a pass.
"""

import json
import os
import sys
import traceback
from types import TracebackType
from typing import Any


def _failing_test_line(tests_source: str, tb: TracebackType | None) -> str | None:
    lines = tests_source.splitlines()
    line = None
    for frame in traceback.extract_tb(tb):
        if frame.filename == "tests.py" and frame.lineno is not None and 0 < frame.lineno <= len(lines):
            line = lines[frame.lineno - 1].strip()
    return line


def main() -> None:
    nonce = sys.stdin.readline().strip()
    entry_point = sys.argv[1]
    with open("/prog/solution.py", encoding="utf-8") as f:
        solution = f.read()
    with open("/prog/tests.py", encoding="utf-8") as f:
        tests = f.read()
    out = os.dup(1)
    result: dict[str, str | None] = {"outcome": "pass", "test": None, "detail": None}
    namespace: dict[str, Any] = {"__name__": "solution"}
    try:
        exec(compile(solution, "solution.py", "exec"), namespace)
        exec(compile(tests, "tests.py", "exec"), namespace)
        namespace["check"](namespace[entry_point])
    except MemoryError:
        result = {"outcome": "memory", "test": None, "detail": "MemoryError"}
    except BaseException as err:  # every failure of the program is a result
        result = {
            "outcome": "fail",
            "test": _failing_test_line(tests, err.__traceback__),
            "detail": (type(err).__name__ + ": " + str(err))[:500],
        }
    os.write(out, (nonce + " " + json.dumps(result) + "\n").encode())


main()
