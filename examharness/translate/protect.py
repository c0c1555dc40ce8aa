"""What a translation must leave alone, and the checks that it did.

The GPT-4 report translated MMLU's instruction, questions and answers but kept the ``Answer``
token and the ``A``–``D`` option letters in English (Appendix F, Table 12). examharness keeps
more, because a translated number or formula changes the question:

- **masked** before sending (the translator never sees them, so it cannot alter them): LaTeX
  (``$…$``, ``$$…$$``, ``\\(…\\)``, ``\\[…\\]``), code (```` ```…``` ```` and ```` `…` ````) and the
  literal ``Answer:``. Each becomes a placeholder ``⟦n⟧`` that must come back exactly once.
- **checked** after (they stay readable for the translator): every number of the source appears
  in the translation as often as in the source, and every glossary term present in the source is
  still present.

Option letters are the keys of the request's JSON object (:mod:`examharness.translate.units`), so
a translator that translates a letter changes a key, and the check of keys catches it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

_PROTECTED = re.compile(
    r"\$\$.+?\$\$"  # display LaTeX
    r"|(?<![\\\w])\$[^$\n]+?\$"  # inline LaTeX
    r"|\\\(.+?\\\)|\\\[.+?\\\]"  # \( … \) and \[ … \]
    r"|```.*?```"  # fenced code
    r"|`[^`\n]+`"  # inline code
    r"|\bAnswer:",  # the report's answer token
    re.DOTALL,
)
_PLACEHOLDER = re.compile(r"⟦(\d+)⟧")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


class Broken(ValueError):
    """A translation that broke a rule; the message says which (one line)."""


@dataclass(frozen=True)
class Masked:
    text: str
    spans: tuple[str, ...]


def mask(text: str, start: int = 0) -> Masked:
    """Replace protected spans by ``⟦n⟧`` placeholders numbered from ``start``."""
    spans: list[str] = []

    def keep(m: re.Match[str]) -> str:
        spans.append(m.group(0))
        return f"⟦{start + len(spans) - 1}⟧"

    return Masked(_PROTECTED.sub(keep, text), tuple(spans))


def unmask(text: str, spans: tuple[str, ...], start: int = 0) -> str:
    """Put the protected spans back; each placeholder must appear exactly once."""
    found = Counter(int(n) for n in _PLACEHOLDER.findall(text))
    wanted = set(range(start, start + len(spans)))
    if set(found) != wanted or any(c != 1 for c in found.values()):
        missing = sorted(wanted - set(found))
        extra = sorted(set(found) - wanted) + sorted(n for n, c in found.items() if c > 1)
        raise Broken(f"protected parts not kept (missing {missing}, unexpected or repeated {extra})")
    return _PLACEHOLDER.sub(lambda m: spans[int(m.group(1)) - start], text)


def numbers(text: str) -> Counter[str]:
    """The numbers written in ``text`` (digits, with inner ``.``/``,`` kept as written)."""
    return Counter(_NUMBER.findall(text))


def check_kept(source: str, translated: str, glossary: tuple[str, ...]) -> None:
    """Raise :class:`Broken` when a number or glossary term of ``source`` did not survive."""
    lost = numbers(source) - numbers(translated)
    if lost:
        raise Broken(f"numbers changed or lost: {', '.join(sorted(lost))}")
    for term in glossary:
        if term in source and source.count(term) > translated.count(term):
            raise Broken(f"glossary term {term!r} was translated or dropped")
