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


EXIT_OK = 0
"""Every item answered (an ``empty`` or ``refused`` reply is the model's answer, not a failure)."""
EXIT_BAD_INPUT = 1
"""Bad input or a failed check; also a run folder another process is writing."""
EXIT_ITEM_ERRORS = 2
"""The run finished but some items ended as ``error``; ``--resume RUN --retry-errors`` redoes them."""
EXIT_ABORTED = 3
"""The run stopped early: the backend refused for good (401, 403, 404) or never answered at all."""
EXIT_INTERRUPTED = 130
"""Ctrl-C (SIGINT), as shells report it."""


class RunAborted(Exception):
    """The backend cannot answer any item (a wrong key, no such model, nothing listening).

    Raised by the runner with the reason; the run's API layer adds the run folder so the one
    line the user sees names the folder and the command that resumes it once the cause is fixed.
    """

    def __init__(self, reason: str, run_dir: Path | None = None) -> None:
        self.reason = reason
        self.run_dir = run_dir
        where = f"; run folder {run_dir}, resume with: examharness run --resume {run_dir}" if run_dir else ""
        super().__init__(f"run aborted: {reason}{where}")


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run, after the run folder's summary was written: says how to resume."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        super().__init__(
            f"interrupted; run folder {run_dir}, resume with: examharness run --resume {run_dir}"
        )
