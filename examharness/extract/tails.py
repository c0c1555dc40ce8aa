"""Rule keywords and anchor words of a reply's ever longer tails, each character searched once.

:func:`~examharness.extract.choice.extract_choice` reads a long reply's last 200, then 1,000,
3,000 and 6,000 characters before the whole of it; each reading needs the rule keywords
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

A longer tail keeps the shorter one's choice and extends it over the added part (unless a word
chosen there runs past the old start: then it chooses afresh), and :meth:`Tails.scan` keeps each
rule's matches, so a rule tried at anchor words is tried only at the anchors a tail added.

Exactness needs ``text.lower()`` sliced to equal the slice lower-cased: lower-casing keeps the
length, and no capital sigma (whose lower case depends on the next letter). Otherwise every tail
is scanned afresh, as before.
"""

from __future__ import annotations

import re
from collections import defaultdict

import ahocorasick

from examharness.extract import rules as r

Anchors = dict[str, list[int]]


def _automaton() -> ahocorasick.Automaton:
    """Every anchor word and rule keyword, each with (its length - 1, minus its length, the word,
    is an anchor, is a keyword): a match's last index less the first is where the word starts."""
    words = ahocorasick.Automaton()
    anchors, keywords = set(r.ANCHOR_WORDS), {*r.ASCII_KEYWORDS, *r.OTHER_KEYWORDS}
    for word in anchors | keywords:
        words.add_word(word, (len(word) - 1, -len(word), word, word in anchors, word in keywords))
    words.make_automaton()
    return words


_WORDS = _automaton()
_SHORTER = {
    w: [p for p in prefixes if p != w] for w, prefixes in r.ANCHOR_PREFIXES.items() if len(prefixes) > 1
}
"""Anchor words that start with other anchor words ("finally": "final"), and those."""
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
        self.anchors: Anchors = {}
        """What the regular expression chose from ``start`` on (see :meth:`at`)."""
        self.added: Anchors | None = None
        """The part of ``anchors`` the last extension added (None: chosen afresh)."""
        self.previous = self.start
        self.matches: dict[str, tuple[int, list[re.Match[str]]]] = {}
        """Each rule's matches as :meth:`scan` last gave them, with the start they were found from."""

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
        return self.present, self.anchors

    def _extend(self, start: int) -> None:
        end = self.start
        stop = min(len(self.lowered), end + _LONGEST - 1)  # pyahocorasick reads past a longer end
        hits = list(_WORDS.iter(self.lowered, start, stop))
        self.present = self.present.union([h[2] for _, h in hits if h[4]])
        added = sorted([(pos, h[1], h[2]) for last, h in hits if h[3] and (pos := last - h[0]) < end])
        self.found = added + self.found
        self.previous, self.start = end, start
        chosen, resume = _choose(added, start)
        if resume > end:  # a word chosen in the added part runs past the old start: choose afresh
            self.anchors, self.added = _choose(self.found, start)[0], None
            return
        # Otherwise the choice goes on from the first occurrence at or after the old start, just as
        # it did from there: the old anchors follow the new ones unchanged.
        anchors = dict(self.anchors)
        for word, positions in chosen.items():
            anchors[word] = positions + anchors.get(word, [])
        self.anchors, self.added = anchors, chosen

    def scan(self, rule: r.Rule, anchors: Anchors | None, start: int) -> list[re.Match[str]]:
        """``rule.scan(text, anchors, start)`` (``anchors`` as :meth:`at` gave them for ``start``);
        a rule tried only at anchor words, found from the previous tail, is tried only at the
        anchors this one added (:meth:`~examharness.extract.rules.Rule.scan_added`)."""
        if not self.exact or start != self.start:  # read afresh (no tail is kept without exactness)
            return rule.scan(self.text, anchors, start)
        kept = self.matches.get(rule.name)
        if kept is not None and kept[0] == self.start:
            return kept[1]
        added = self.added
        if kept is not None and kept[0] == self.previous and added is not None and rule.at and not rule.after:
            found = rule.scan_added(self.text, added, kept[1])
        else:
            found = rule.scan(self.text, anchors, self.start)
        self.matches[rule.name] = (self.start, found)
        return found


def _choose(found: list[tuple[int, int, str]], start: int) -> tuple[Anchors, int]:
    """The regular expression's choice among ``found`` from ``start`` (the first occurrence, the
    longest word at a position, then the next one at or after its end) as the positions of each
    anchor word, and of the anchor words it starts with, in order; and where the last one ends."""
    chosen: defaultdict[str, list[int]] = defaultdict(list)
    resume = start
    for pos, minus, word in found:
        if pos >= resume:
            chosen[word].append(pos)
            resume = pos - minus
    longer = {word: chosen[word] for word in _SHORTER.keys() & chosen.keys()}
    for word, positions in longer.items():
        for prefix in _SHORTER[word]:
            chosen[prefix] = sorted(chosen[prefix] + positions)
    return dict(chosen), resume
