"""What a code item leaves in the run folder: per sample, how the code was read and how it ran."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from examharness.code.sandbox import ExecResult


class CodeSample(BaseModel):
    """One sampled reply of a code item: the extraction rule used and the sandbox's verdict."""

    model_config = ConfigDict(extra="ignore")
    sample: int
    status: Literal["answered", "unparseable", "empty"]
    how: str
    """The extraction rule (``fenced``, ``function``, ``body``) or why nothing was found."""
    result: ExecResult | None = None
    """None when no program was found (the sample counts as failed)."""

    @property
    def passed(self) -> bool:
        return self.result is not None and self.result.outcome == "pass"


class PassCount(BaseModel):
    """One problem's samples: ``n`` programs sampled, ``c`` of them passed every test."""

    n: int
    c: int
