"""Errors that reach the user as one line: ``FILE:LINE: field.path: message``.

Every bad-input path (exam files, scale files, templates, CSV/JSONL imports, CLI flags, corpus
files) raises :class:`InputError` or a subclass; the CLI prints ``str(err)`` and exits 1, never a
traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One problem found in one input file."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else f"{self.file}"
        field = self.field or "(file)"
        return f"{where}: {field}: {self.message}"


class InputError(Exception):
    """Bad user input. Carries one or more :class:`Problem`; ``str()`` is one line per problem."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))

    @classmethod
    def one(cls, file: str | Path, line: int | None, field: str, message: str) -> InputError:
        return cls([Problem(str(file), line, field, message)])
