"""Find the program in a model's reply, and say which rule found it.

The reply is hostile text: it is parsed with :mod:`ast` (which never runs it) only to check that a
candidate is complete Python and defines the entry point. Rules, in order:

``fenced``    the last fenced block (```python … ```) that parses and defines the entry point;
``function``  unfenced text: from the last ``def <entry_point>(`` (with any imports and helpers
              above it) to the longest ending that parses;
``body``      the reply is the function's body only (the HumanEval completion format): it is
              appended to the prompt.

A reply with none of these is ``unparseable``. The program sent to the sandbox is always the
item's ``preamble`` (for HumanEval its prompt: imports, helpers and the signature) followed by the
extracted code, so a complete function that omits ``from typing import List`` still runs.
"""

from __future__ import annotations

import ast
import re
from typing import Literal

from pydantic import BaseModel

FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


class CodeExtraction(BaseModel):
    """The code read from one reply; ``program`` is what runs (prompt + code)."""

    status: Literal["answered", "unparseable", "empty"]
    how: str
    code: str | None = None
    program: str | None = None


def _join(preamble: str, code: str) -> str:
    return f"{preamble.rstrip()}\n\n\n{code}" if preamble.strip() else code


def _parses(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _defines(tree: ast.Module, name: str) -> bool:
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name for node in tree.body
    )


def _fenced(reply: str, entry_point: str) -> str | None:
    for lang, body in reversed(FENCE.findall(reply)):
        if lang.lower() not in ("", "python", "py", "python3"):
            continue
        tree = _parses(body)
        if tree is not None and _defines(tree, entry_point):
            return str(body)
    return None


def _last_function(reply: str, entry_point: str) -> str | None:
    lines = reply.splitlines()
    signature = re.compile(rf"(async\s+)?def\s+{re.escape(entry_point)}\s*\(")
    starts = [i for i, line in enumerate(lines) if signature.match(line)]
    if not starts:
        return None
    first = starts[-1]
    while first > 0 and re.match(r"(import |from \S+ import |def |class |@|\s|$)", lines[first - 1]):
        first -= 1
    for begin in dict.fromkeys((first, starts[-1])):
        for end in range(len(lines), starts[-1], -1):
            code = "\n".join(lines[begin:end]).strip("\n") + "\n"
            tree = _parses(code)
            if tree is not None and _defines(tree, entry_point):
                return code
    return None


def _body(preamble: str, reply: str, entry_point: str) -> str | None:
    text = reply.strip("\n")
    if not text.startswith((" ", "\t")) or not preamble.strip():
        return None
    program = preamble.rstrip("\n") + "\n" + reply
    tree = _parses(program)
    return program if tree is not None and _defines(tree, entry_point) else None


def extract_code(reply: str, *, preamble: str, entry_point: str) -> CodeExtraction:
    """The program for one reply (pure; nothing is executed)."""
    if not reply.strip():
        return CodeExtraction(status="empty", how="no reply")
    for how, find in (("fenced", _fenced), ("function", _last_function)):
        code = find(reply, entry_point)
        if code is not None:
            return CodeExtraction(status="answered", how=how, code=code, program=_join(preamble, code))
    program = _body(preamble, reply, entry_point)
    if program is not None:
        return CodeExtraction(status="answered", how="body", code=reply, program=program)
    return CodeExtraction(status="unparseable", how=f"no complete function {entry_point!r} found")
