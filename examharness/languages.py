"""Languages: the BCP-47 check every language flag goes through, names for charts, and a run's
accuracy per language (what ``report``, ``compare`` and ``chart --languages`` show).

Names cover English and the 26 languages of the GPT-4 report's multilingual MMLU (Figure 5),
plus a few common others; an unknown tag is shown as itself.

A run's exams are grouped by their ``language``; a language's accuracy is its exams' summed raw
points over their summed maximum. Its interval is the exam's own bootstrap interval when one exam
carries the language, else a 95 % Wilson interval over the pooled items (correct / total), which
is what several separately scored exams can honestly give without their item-level resamples.
"""

from __future__ import annotations

import math
import re

from pydantic import BaseModel, ConfigDict

from examharness.errors import InputError
from examharness.records import ExamScore, RunScores

_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")

NAMES = {
    "en": "English", "it": "Italian", "af": "Afrikaans", "es": "Spanish", "de": "German", "fr": "French",
    "id": "Indonesian", "ru": "Russian", "pl": "Polish", "uk": "Ukrainian", "el": "Greek", "lv": "Latvian",
    "zh": "Mandarin", "ar": "Arabic", "tr": "Turkish", "ja": "Japanese", "sw": "Swahili", "cy": "Welsh",
    "ko": "Korean", "is": "Icelandic", "bn": "Bengali", "ur": "Urdu", "ne": "Nepali", "th": "Thai",
    "pa": "Punjabi", "mr": "Marathi", "te": "Telugu", "pt": "Portuguese", "hi": "Hindi", "yo": "Yoruba",
    "nl": "Dutch", "sv": "Swedish", "vi": "Vietnamese", "he": "Hebrew", "fa": "Persian",
}  # fmt: skip


def check_language(tag: str, where: str = "--to") -> str:
    """``tag`` when it is a well-formed BCP-47 tag (``es``, ``pt-BR``, ``zh-Hans``), else InputError."""
    if not _TAG.fullmatch(tag):
        raise InputError.one(
            "command line", None, where, f"{tag!r} is not a BCP-47 language tag (e.g. es, pt-BR)"
        )
    return tag


def primary(tag: str) -> str:
    """The language subtag, lower case: ``pt-BR`` -> ``pt``."""
    return tag.split("-", 1)[0].casefold()


def language_name(tag: str) -> str:
    """``es`` -> ``Spanish``; ``pt-BR`` -> ``Portuguese (pt-BR)``; unknown tags as themselves."""
    name = NAMES.get(primary(tag))
    if name is None:
        return tag
    return name if "-" not in tag else f"{name} ({tag})"


class LanguageScore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: str
    label: str
    accuracy: float
    """Percent."""
    ci: tuple[float, float] | None = None
    """Percent; see the module docstring for how it is made."""
    items: int
    exams: list[str]


def wilson(correct: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval for ``correct / total``, as fractions."""
    if total == 0:
        return 0.0, 1.0
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def _one_language(tag: str, exams: list[ExamScore]) -> LanguageScore:
    raw, top = sum(e.raw for e in exams), sum(e.max_raw for e in exams)
    ci: tuple[float, float] | None = None
    if len(exams) == 1 and exams[0].ci.raw is not None and top > 0:
        lo, hi = exams[0].ci.raw
        ci = (100 * lo / top, 100 * hi / top)
    elif exams:
        lo, hi = wilson(sum(e.items.correct for e in exams), sum(e.items.total for e in exams))
        ci = (100 * lo, 100 * hi)
    return LanguageScore(
        language=tag, label=language_name(tag), accuracy=100 * raw / top if top else 0.0, ci=ci,
        items=sum(e.items.total for e in exams), exams=[e.exam for e in exams],
    )  # fmt: skip


def by_language(run: RunScores) -> list[LanguageScore]:
    """One row per language of the run's exams, in the order the languages first appear."""
    groups: dict[str, list[ExamScore]] = {}
    for e in run.exams:
        groups.setdefault(e.language, []).append(e)
    return [_one_language(tag, exams) for tag, exams in groups.items()]
