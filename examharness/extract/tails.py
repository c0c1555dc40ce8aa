"""Rule keywords and anchor words of a reply's ever longer tails, each character searched once.

:func:`~examharness.extract.choice.extract_choice` reads a long reply's last 200, then 1,000,
then 3,000 characters before the whole of it; each reading needs the rule keywords
(:func:`~examharness.extract.rules.keywords_in`) and anchor positions
(:func:`~examharness.extract.rules.anchor_positions`) of the text from its start on. The anchor
scan there is one regular expression over every anchor word; common letters start many of them
("in", "it", "the ", "so"), so it tries nearly every position, ~0.3 µs per character: the costliest
part of reading a long reply (an echoed few-shot prompt) in full. :class:`Tails` gives exactly what
that scan gives, cheaper and once per character:

- keywords: the new ones lie in the part added to the tail, or straddle its end (a keyword is
  short);
- anchors: every occurrence of every anchor word in the added part is found in one pass of an
  Aho-Corasick automaton (``pyahocorasick``, C), with the keywords; the regular expression's
  choice is then replayed over them: from the tail's start, the first occurrence, the longest word
  at a position, the next one at or after its end.

Exactness needs ``text.lower()`` sliced to equal the slice lower-cased: lower-casing keeps the
length, and no capital sigma (whose lower case depends on the next letter). Otherwise every tail
is scanned afresh, as before.
"""

from __future__ import annotations

import ahocorasick

from examharness.extract import rules as r

Anchors = dict[str, list[int]]


def _automaton() -> ahocorasick.Automaton:
    """Every anchor word and rule keyword, each with (word, length, is an anchor, is a keyword)."""
    words = ahocorasick.Automaton()
    anchors, keywords = set(r.ANCHOR_WORDS), {*r.ASCII_KEYWORDS, *r.OTHER_KEYWORDS}
    for word in anchors | keywords:
        words.add_word(word, (word, len(word), word in anchors, word in keywords))
    words.make_automaton()
    return words


_WORDS = _automaton()
_LONGEST = max(map(len, (*r.ANCHOR_WORDS, *r.ASCII_KEYWORDS, *r.OTHER_KEYWORDS)))


class Tails:
    """Keywords and anchors of ``text[start:]`` for decreasing ``start`` (see the module doc)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lowered = text.lower()
        self.exact = len(self.lowered) == len(text) and "Σ" not in text
        self.start = len(text)
        self.present: frozenset[str] = frozenset()
        self.found: list[tuple[int, int, str]] = []
        """Every occurrence of an anchor word from ``start`` on, overlapping ones too, in order:
        (position, minus its length, word)."""

    def at(self, start: int) -> tuple[frozenset[str], Anchors | None]:
        """The rule keywords in ``text[start:]`` lower-cased, and where anchor words occur in it
        (positions in ``text``; None when lower-casing changed the length), as
        :func:`~examharness.extract.rules.keywords_in` and
        :func:`~examharness.extract.rules.anchor_positions` give them."""
        if not self.exact:
            lowered = self.text[start:].lower()
            return r.keywords_in(lowered), r.anchor_positions(self.text[start:], lowered, start)
        if start < self.start:
            self._extend(start)
        elif start > self.start:
            raise ValueError(f"tails grow backwards: {start} after {self.start}")
        anchors: Anchors = {}
        resume = start
        for pos, _, word in self.found:
            if pos >= resume:
                for prefix in r.ANCHOR_PREFIXES[word]:
                    anchors.setdefault(prefix, []).append(pos)
                resume = pos + len(word)
        return self.present, anchors

    def _extend(self, start: int) -> None:
        end = self.start
        stop = min(len(self.lowered), end + _LONGEST - 1)  # pyahocorasick reads past a longer end
        words = _WORDS.iter(self.lowered, start, stop)
        found = [(last - n + 1, n, word, anchor, keyword) for last, (word, n, anchor, keyword) in words]
        self.present = self.present.union([w for _, _, w, _, keyword in found if keyword])
        added = sorted([(pos, -n, word) for pos, n, word, anchor, _ in found if anchor and pos < end])
        self.found = added + self.found
        self.start = start
