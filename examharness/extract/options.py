"""Reading an option by its text, and blanking a re-quoted option list, without compiling anything.

An option is found as its sequence of lower-cased words (leading articles dropped) in the reply's
word sequence, so punctuation and spacing do not matter ("the cell-wall" finds "the cell wall").
Options are split into words once per option set (cached); a reply is split into words once per
call, by one precompiled pattern. Options in scripts without spaces (Chinese, Japanese) are
looked for as plain substrings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_ARTICLES = frozenset({"the", "a", "an"})
_WORD = re.compile(r"[^\W_]+")
_LETTERED = re.compile(r"[^\W\d_]")
_NUMBER = re.compile(r"[-−]?\d+(?:[.,]\d+)?")
_MARKER_BEFORE = re.compile(r"[\[(]?([A-Z])[\])\.:]?\s*(?:(?i:the|an|a)\s+)?\Z")


def _words(text: str) -> tuple[str, ...]:
    words = _WORD.findall(text.lower())
    while words and words[0] in _ARTICLES:
        words = words[1:]
    return tuple(words)


@dataclass(frozen=True)
class OptionPatterns:
    """What is known about one option set, computed once per set."""

    words: tuple[tuple[str, ...], ...]
    """Each option's lower-cased words, leading articles dropped."""
    distinct: tuple[bool, ...]
    """Whether an option's text is long and lettered enough to be recognised anywhere in a reply."""
    numeric: bool
    """Some option is a bare number, so "option 3" could mean its text: not read as a position."""


@lru_cache(maxsize=4096)
def option_patterns(options: tuple[str, ...]) -> OptionPatterns:
    words = tuple(_words(o) for o in options)
    distinct = tuple(len(" ".join(w)) >= 3 and _LETTERED.search(" ".join(w)) is not None for w in words)
    numeric = any(_NUMBER.fullmatch(o.strip()) for o in options)
    return OptionPatterns(words, distinct, numeric)


@dataclass(frozen=True)
class Words:
    """A reply's words with their spans, split once."""

    text: str
    spans: tuple[tuple[int, int], ...]
    lower: tuple[str, ...]

    @classmethod
    def of(cls, text: str) -> Words:
        lowered = text.lower()
        source = lowered if len(lowered) == len(text) else text
        found = [(m.span(), m.group()) for m in _WORD.finditer(source)]
        lower = tuple(w for _, w in found) if source is lowered else tuple(w.lower() for _, w in found)
        return cls(text, tuple(span for span, _ in found), lower)

    def find(self, option: tuple[str, ...]) -> list[tuple[int, int]]:
        """Spans where the word sequence ``option`` occurs."""
        n = len(option)
        if n == 0:
            return []
        if n == 1 and not option[0].isascii():
            return self._substring(option[0])
        first, out = option[0], []
        for i, word in enumerate(self.lower):
            if word == first and self.lower[i : i + n] == option:
                out.append((self.spans[i][0], self.spans[i + n - 1][1]))
        return out

    def _substring(self, word: str) -> list[tuple[int, int]]:
        """Unspaced scripts: where ``word`` occurs in the lower-cased text."""
        low, out = self.text.lower(), []
        at = low.find(word)
        while at >= 0:
            out.append((at, at + len(word)))
            at = low.find(word, at + 1)
        return out


def mentions(words: Words, pats: OptionPatterns) -> list[tuple[int, int, int]]:
    """Every (start, end, option index) where a distinct option's text appears; a hit inside a
    longer option's hit ("Paris" in "Paris, France") is not counted."""
    hits = [
        (a, b, i)
        for i, (w, ok) in enumerate(zip(pats.words, pats.distinct, strict=True))
        if ok
        for a, b in words.find(w)
    ]
    return [
        h
        for h in hits
        if not any(o != h and o[0] <= h[0] and h[1] <= o[1] and (o[1] - o[0]) > (h[1] - h[0]) for o in hits)
    ]


def prefix_hit(text: str, pos: int, pats: OptionPatterns) -> int | None:
    """The option whose words come first after ``pos`` (the longest, if several), else None.
    Articles before it are skipped ("The answer is the mitochondria")."""
    longest = max((len(w) for w in pats.words), default=0)
    ahead: list[str] = []
    for m in _WORD.finditer(text, pos):
        word = m.group().lower()
        if ahead or word not in _ARTICLES:
            ahead.append(word)
            if len(ahead) == 1 and all(not w or w[0] != word for w in pats.words):
                return None  # no option starts with this word: no need to read on
        if len(ahead) >= longest:
            break
    found = tuple(ahead)
    hits = [(len(w), k) for k, w in enumerate(pats.words) if w and found[: len(w)] == w]
    if not hits:
        return None
    best = max(hits)[0]
    chosen = [k for size, k in hits if size == best]
    return chosen[0] if len(chosen) == 1 else None


def strip_echo(words: Words, pats: OptionPatterns, valid: str) -> str:
    """Blank out a re-quoted option list ("(A) Paris (B) London ..."), keeping every position:
    a list of the options is not an answer. One quoted option alone is kept ("(B) London")."""
    text = words.text
    spans = []
    short = [(a, b, k) for k, ok in enumerate(pats.distinct) if not ok for a, b in words.find(pats.words[k])]
    for a, b, i in mentions(words, pats) + short:
        marker = _MARKER_BEFORE.search(text, max(0, a - 10), a)
        if marker is not None and marker.group(1) == valid[i]:
            spans.append((marker.start(), b, i))
    if len({i for _, _, i in spans}) < 2:
        return text
    chars = list(text)
    for a, b, _ in spans:
        chars[a:b] = " " * (b - a)
    return "".join(chars)
