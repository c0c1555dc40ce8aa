"""What extraction returns, and how a reply with no answer is classified (empty, refused,
unparseable)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

from examharness.exam import LETTERS
from examharness.extract.lexicon import REFUSAL

Status = Literal["answered", "unparseable", "empty", "refused"]
Tier = Literal["strict", "loose"]

_REFUSAL = re.compile(REFUSAL)


class Extraction(BaseModel):
    """What was read from one reply: the answer (if any), the rule that found it and its tier."""

    model_config = ConfigDict(frozen=True)

    status: Status
    """``answered``; ``empty`` (blank reply); ``refused`` (the reply declines and states no answer);
    ``unparseable`` (the reply neither answers readably nor declines)."""
    answer: str | None = None
    """Sorted letters (``"C"``, ``"ACD"``) or a normalised number string (``"0.75"``, ``"2/3"``)."""
    how: str
    """The extraction rule that fired, e.g. ``answer-is-therefore``, ``answer-zh`` or ``option-text``."""
    tier: Tier | None = None
    """``strict``: the reply states its answer ("The answer is C", "答案是C", a reply that is only
    the letter); ``loose``: the answer is inferred from a mark or mention (``**C**``, "(C)", the
    option's text). ``letter_if_needed`` asks for the letter when only a loose rule found one."""


def letters(n: int) -> list[str]:
    """Option letters for ``n`` options: ``A`` up to the n-th letter."""
    if not 0 <= n <= len(LETTERS):
        raise ValueError(f"cannot letter {n} options (at most 26)")
    return list(LETTERS[:n])


def no_answer(reply: str, how: str = "no-rule-matched") -> Extraction:
    """Classify a reply that yielded no answer: ``empty``, ``refused`` or ``unparseable``."""
    if not reply.strip():
        return Extraction(status="empty", how="empty")
    if _REFUSAL.search(reply):
        return Extraction(status="refused", how="refusal")
    return Extraction(status="unparseable", how=how)


def answered(answer: str, how: str, tier: Tier) -> Extraction:
    return Extraction(status="answered", answer=answer, how=how, tier=tier)
