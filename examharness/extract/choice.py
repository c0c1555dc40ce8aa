"""Read the chosen letter(s) from a reply to a multiple-choice (or multi-select) item.

Order of trust. **Strict** rules are explicit answer statements (an answer cue in any supported
language, "C is correct", "So B.", "It's (a).", "Actually, D", ``\\boxed{C}``, a reply that is only
the letter); among them the *last* statement wins, so a self-correction beats what it corrects.
Only when no strict rule fires are **loose** rules tried: marks (``**C**``, "(C)", "[C]",
"Option 3"), then the option's text. Rejecting every option but one is not read as choosing it
(a cut-off explanation often stops there); "..., which leaves D" is. Loose readings
must agree: two different marked letters with no statement are ``unparseable`` ("conflicting-
letters"), because a wrong letter is worse than none.

Every candidate is checked for rejection first: a letter (or option text) followed by "is wrong",
"would be incorrect", "是错误的", or preceded by "not", "eliminate", "if", ... in its clause, or
inside an elimination list, is never the answer. Capital "A"/"I" starting prose ("A triangle
has...") is not a letter.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property, partial

from examharness.extract import rules as r
from examharness.extract.model import Extraction, Tier, answered, letters, no_answer
from examharness.extract.options import (
    OptionPatterns,
    Words,
    mentions,
    option_patterns,
    prefix_hit,
    strip_echo,
)
from examharness.extract.tails import Tails

_UPPER = re.compile(r"[A-Z]")
_LOWER = re.compile(r"[a-z]")
_SKIP = re.compile(r"[\s:：*_\"'“”‘’(]*")
_LINE_REST = re.compile(r"[ \t.!*_)\]】）$]*(?:\n|\Z)")
_STATED = re.compile(r"(?i)\b(?:is|are|was|were|be)\s+(?:the\s+|an?\s+)?\Z")
_ENDS = re.compile(r"\s*[.!]?\s*\Z")
_SENTENCE_END = re.compile(r"[.;!?\n。；！？](?=\s|\Z)")
_FINISHED = re.compile(r"[.!。！)\]*]\s*\Z")
_TAILS, _MARGIN = (200, 1000, 3000, 6000), 100
"""A long reply's last 200, then 1,000, 3,000 and 6,000 characters are searched for a statement
before the whole of it (most replies end with their answer; one that echoes a few-shot prompt has
its last "Answer: X" a question's length from the end); matches may start up to ``_MARGIN``
characters before a window (a cue before its letter). A longer tail reads only what it adds to the
shorter one (:class:`~examharness.extract.tails.Tails`, :meth:`_Reply.read_all`)."""
_LETTER_LINES = re.compile(r"^\s*[\[(]?[A-Z][.)\]]\s", re.MULTILINE)
"""A later line opening with a letter: the reply enumerates options, its first letter is no answer."""
_DOUBLE_NEGATIVE = re.compile(r"(?i)\bnot\s+(?:wrong|incorrect|false|unlikely)")


@dataclass(frozen=True)
class Candidate:
    start: int
    end: int
    """Span of the letter(s) (or option text) read."""
    anchor: int
    """Start of the statement: rejection words are looked for before here."""
    how: str
    tier: Tier
    answer: str


@dataclass(frozen=True)
class _Reply:
    text: str
    valid: str
    multi: bool
    pats: OptionPatterns
    zones: tuple[tuple[int, int], ...]
    anchors: dict[str, list[int]] | None
    """Where rules' anchor words occur (:func:`~examharness.extract.rules.anchor_positions`)."""
    present: frozenset[str]
    """Rule keywords in the lower-cased reply: which patterns are worth trying."""
    start: int
    """Rules look for matches from here on."""
    tails: Tails | None = None
    """What the strict rules found in the reply's shorter tails (None for a changed text)."""
    read: dict[int, tuple[re.Match[str], Candidate | None]] = field(default_factory=dict)
    """What each match made (:meth:`read_all`), by the match's id, for all of the reply's tails."""

    @classmethod
    def of(
        cls, tails: Tails, valid: str, multi: bool, pats: OptionPatterns, start: int,
        read: dict[int, tuple[re.Match[str], Candidate | None]],
    ) -> _Reply:  # fmt: skip
        """The reply, with rule keywords, anchors and elimination zones found from ``start`` on
        (a tail first: most replies end with their answer statement)."""
        present, anchors = tails.at(start)
        zones = tuple(m.span() for z in r.ZONES if z.applies(present) for m in tails.scan(z, anchors, start))
        return cls(tails.text, valid, multi, pats, zones, anchors, present, start, tails, read)

    def read_all(
        self, matches: list[re.Match[str]], read: Callable[[re.Match[str]], Candidate | None]
    ) -> list[Candidate | None]:
        """``read`` of each match; a match a shorter tail already read (the same object, kept
        with its reading, so that its id is not another's) is not read again."""
        out = []
        for m in matches:
            kept = self.read.get(id(m))
            if kept is None or kept[0] is not m:
                kept = self.read[id(m)] = (m, read(m))
            out.append(kept[1])
        return out

    def stripped(self) -> _Reply:
        """The same reply with a re-quoted option list blanked out (positions kept)."""
        text = strip_echo(self.words, self.pats, self.valid)
        reply = replace(self, text=text, tails=None, read={})
        reply.__dict__["enumerates"] = self.enumerates
        return reply

    @cached_property
    def enumerates(self) -> bool:
        """Whether a later line opens with a letter too: the reply lists options, and the letter
        opening it is no answer."""
        second = self.text.find("\n") + 1
        return second > 0 and _LETTER_LINES.search(self.text, second) is not None

    @cached_property
    def words(self) -> Words:
        return Words.of(self.text)

    @cached_property
    def final(self) -> int:
        """Start of an unfinished last sentence (a cut-off reply), or past the end."""
        return _unfinished(self.text)

    def applies(self, needs: tuple[str, ...]) -> bool:
        return not self.present.isdisjoint(needs)

    def scan(self, rule: r.Rule) -> list[re.Match[str]]:
        if self.tails is None:
            return rule.scan(self.text, self.anchors, self.start)
        return self.tails.scan(rule, self.anchors, self.start)

    def letters_of(self, found: str) -> str | None:
        return self.letters_of_valid(found, self.valid, self.multi)

    @staticmethod
    def letters_of_valid(found: str, valid: str, multi: bool) -> str | None:
        """Sorted valid letters named in ``found``; None if any is not an option's letter."""
        caps = _UPPER.findall(found) or _LOWER.findall(found)[:1]
        picked = {c.upper() for c in caps}
        if not picked or not picked <= set(valid) or (len(picked) > 1 and not multi):
            return None
        return "".join(sorted(picked))

    def prose(self, answer: str, end: int) -> bool:
        """True for "A"/"I" starting a sentence ("The answer is: A triangle has...")."""
        word = r.PROSE_AFTER.match(self.text, end)
        return answer in ("A", "I") and word is not None and word.group(1) not in r.CONNECTIVES

    def clause_after(self, end: int) -> str:
        after = self.text[end : end + 100]
        stop = r.CLAUSE_END.search(after)
        return after[: stop.start()] if stop else after

    def rejected(self, c: Candidate) -> bool:
        if any(a <= c.start < b for a, b in self.zones):
            return True
        after = self.clause_after(c.end)
        if r.REJECT_AFTER.search(after) and not _DOUBLE_NEGATIVE.search(after):
            return True
        before = self.text[max(0, c.anchor - 60) : c.anchor]
        starts = list(r.CLAUSE_START.finditer(before))
        before = before[starts[-1].end() :] if starts else before
        if self.text[c.end : c.end + 12].lstrip(" )]*").startswith("?"):
            return True
        return r.REJECT_BEFORE.search(before) is not None

    def candidate(self, m: re.Match[str], group: str, how: str, tier: Tier, anchor: int) -> Candidate | None:
        answer = self.letters_of(m.group(group))
        if answer is None or self.prose(answer, m.end(group)):
            return None
        return Candidate(m.start(group), m.end(group), anchor, how, tier, answer)


def _prepare(reply: str) -> str:
    """NFKC (full-width "Ａ", "：" become "A", ":") and lone Cyrillic look-alikes become Latin."""
    if reply.isascii():
        return reply
    text = unicodedata.normalize("NFKC", reply)
    if not any(c in text for c in r.CYRILLIC_LOOKALIKES):  # the substitution scans every character
        return text
    return r.HOMOGLYPHS.sub(lambda m: m.group(1).translate(r.CYRILLIC_TO_LATIN), text)


def _position(rep: _Reply, m: re.Match[str]) -> str | None:
    """The letter for "option 3" / "the third option", unless options are themselves numbers."""
    if rep.pats.numeric:
        return None
    n = (
        len(rep.valid)
        if m.group("o") == "last"
        else (r.ORDINALS[m.group("o").lower()] if m.group("o") else int(m.group("n")))
    )
    return rep.valid[n - 1] if 1 <= n <= len(rep.valid) else None


def _after_cue(rep: _Reply, cue: re.Match[str], how: str) -> Candidate | None:
    text = rep.text
    body = r.BODY.match(text, cue.end())
    if body is not None:
        if "\n" in body.group("fill") and not _LINE_REST.match(text, body.end()):
            return None
        return rep.candidate(body, "a", how, "strict", cue.start())
    at = _SKIP.match(text, cue.end())
    pos = at.end() if at else cue.end()
    num = r.OPTION_NUMBER_PATTERN.match(text, pos)
    if num is not None and (letter := _position(rep, num)) is not None:
        return Candidate(num.start(), num.end(), cue.start(), "answer-option-number", "strict", letter)
    if how == "boxed" or "\n" in text[cue.end() : pos]:
        return None
    hit = prefix_hit(text, cue.end(), rep.pats)
    if hit is None:
        return None
    return Candidate(pos, pos + 1, cue.start(), "answer-option-text", "strict", rep.valid[hit])


def _words_between(text: str, start: int, end: int) -> list[str]:
    return re.findall(r"[^\W_]+", text[start:end])


def _concluded_text(rep: _Reply, m: re.Match[str]) -> Candidate | None:
    hit = prefix_hit(rep.text, m.end(), rep.pats)
    tail = r.CLAUSE_END.search(rep.text, m.end())
    end = tail.start() if tail else len(rep.text)
    if hit is None or len(_words_between(rep.text, m.end(), end)) > len(rep.pats.words[hit]):
        return None
    return Candidate(m.end(), end, m.start(), "conclusion-option-text", "strict", rep.valid[hit])


def _statement(rep: _Reply, how: str, m: re.Match[str]) -> Candidate | None:
    return rep.candidate(m, "a", how, "strict", m.start())


def _strict(rep: _Reply) -> list[Candidate]:
    """Every explicit statement from ``rep.start`` on (each match read once over the tails)."""
    found: list[Candidate | None] = []
    for cue in r.CUE_RULES:
        if cue.applies(rep.present):
            found += rep.read_all(rep.scan(cue), partial(_after_cue, rep, how=cue.name))
    concluded = rep.scan(r.CONCLUDED_TEXT)
    found += rep.read_all(concluded, partial(_concluded_text, rep))
    for rule in r.STRICT:
        if rule is r.CONCLUSION and rep.anchors is not None:  # tried at anchors: only where it can match
            matches = [c for m in concluded if (c := rule.pattern.match(rep.text, m.start())) is not None]
        elif rule.applies(rep.present):
            matches = rep.scan(rule)
        else:
            continue
        found += rep.read_all(matches, partial(_statement, rep, rule.name))
    return [c for c in found if c is not None]


def _last(rep: _Reply, gather: Callable[[_Reply], list[Candidate]]) -> Candidate | None:
    """The last statement that is not rejected (rejection is checked lazily, last first); at one
    position the earlier rule wins."""
    ranked = sorted(enumerate(gather(rep)), key=lambda ic: (-ic[1].start, ic[0]))
    return next((c for _, c in ranked if not rep.rejected(c)), None)


def _loose(rep: _Reply) -> list[Candidate]:
    found = []
    for rule in r.LOOSE:
        if not rule.applies(rep.present):
            continue
        for m in rule.scan(rep.text, rep.anchors, rep.start):
            group = "a" if m.group("a") is not None else "b"
            found.append(rep.candidate(m, group, rule.name, "loose", m.start(group)))
    for m in r.OPTION_NUMBER.scan(rep.text, rep.anchors, rep.start):
        if (letter := _position(rep, m)) is not None:
            found.append(Candidate(m.start(), m.end(), m.start(), "option-number", "loose", letter))
    return [
        c
        for c in found
        if c is not None and not rep.rejected(c) and not (c.how == "leading-letter" and rep.enumerates)
    ]


def _discussed(rep: _Reply, c: Candidate) -> bool:
    """A mark or option text followed by a predicate ("(B) is still too small", "B, London, was")
    is being discussed, not chosen. Exempt: a letter opening the reply or alone on its line, and
    the closing sentence of a reply that ends with one ("C (Berlin) is the capital of Germany.");
    a cut-off reply's unfinished last sentence is not a conclusion, so nothing in it is read."""
    if c.how in ("leading-letter", "lone-letter"):
        return False
    sentence = rep.text[c.end : c.end + 120]
    stop = _SENTENCE_END.search(sentence)
    end = c.end + stop.start() + 1 if stop else len(rep.text)
    if not rep.text[end:].strip() and _FINISHED.search(rep.text) and _one_letter_in(rep, c.start, end):
        return False
    return r.DISCUSSED.match(sentence[: stop.start()] if stop else sentence) is not None


def _one_letter_in(rep: _Reply, at: int, end: int) -> bool:
    """Whether the sentence around ``at`` (ending at ``end``) names at most one option letter."""
    ends = list(_SENTENCE_END.finditer(rep.text, 0, at))
    start = ends[-1].end() if ends else 0
    named = {m.group("a") for m in r.MENTION.finditer(rep.text, start, end) if m.group("a") in rep.valid}
    return len(named) <= 1


def _settled(rep: _Reply, found: list[Candidate]) -> tuple[list[Candidate], set[str]]:
    """Candidates that may be read (not discussed, not in a cut-off reply's unfinished last
    sentence), and the answers named in that unfinished sentence (they still make a conflict)."""
    late = [c for c in found if c.start >= rep.final and c.how != "lone-letter"]
    return [c for c in found if c not in late and not _discussed(rep, c)], {c.answer for c in late}


def _agreed(rep: _Reply, found: list[Candidate], pending: set[str]) -> Candidate | None:
    """The loose reading when all agree, or when the reply's last line is that letter alone."""
    if not pending <= {c.answer for c in found}:
        return None
    last = max(found, key=lambda c: c.start)
    if len({c.answer for c in found}) == 1:
        return last
    line_start = rep.text.rfind("\n", 0, last.start) + 1
    tail = rep.text[line_start:].strip()
    on_last = [c for c in found if c.start >= line_start]
    if len(tail) <= 40 and len({c.answer for c in on_last}) == 1:
        return last
    return None


def _by_text(rep: _Reply, marked: set[str]) -> Candidate | None:
    """The one option whose text the reply names (and does not reject), in a finished reply;
    letters marked in a cut-off reply's unfinished sentence (``marked``) must agree with it."""
    if rep.final <= len(rep.text):
        return None
    hits = [
        Candidate(a, b, a, "option-text", "loose", rep.valid[i]) for a, b, i in mentions(rep.words, rep.pats)
    ]
    kept = {c.answer: c for c in hits if not rep.rejected(c) and not _discussed(rep, c)}
    if not marked <= set(kept):
        return None
    if len(kept) == 1:
        return next(iter(kept.values()))
    stated = {
        c.answer: c
        for c in kept.values()
        if _STATED.search(rep.text, 0, c.start) and _ENDS.match(rep.text, c.end)
    }
    if len(stated) == 1:
        only = next(iter(stated.values()))
        return Candidate(only.start, only.end, only.anchor, "option-text-stated", "loose", only.answer)
    return None


def _unfinished(text: str) -> int:
    """Where a reply's unfinished last sentence starts, if it has earlier ones; else past the end."""
    body = text.rstrip()
    if _FINISHED.search(body):
        return len(text) + 1
    ends = list(_SENTENCE_END.finditer(body))
    return ends[-1].end() if ends else len(text) + 1


_MEMO: dict[tuple[bytes, tuple[str, ...], bool], Extraction] = {}
_MEMO_SIZE = 65_536
"""Readings of this process, keyed by a digest of the reply (the reply itself is not held): the
runner reads an explanation to decide on the letter request, and grading reads it again."""


def extract_choice(reply: str, options: list[str], multi: bool = False) -> Extraction:
    """Read the chosen letter(s); ``tier`` says whether the reply stated it (strict) or it was
    inferred (loose). A reply with no answer is ``empty``, ``refused`` or ``unparseable``."""
    key = (
        hashlib.blake2b(reply.encode("utf-8", "surrogatepass"), digest_size=16).digest(),
        tuple(options),
        multi,
    )
    found = _MEMO.get(key)
    if found is None:
        if len(_MEMO) >= _MEMO_SIZE:
            _MEMO.clear()
        found = _MEMO[key] = _read_choice(reply, options, multi)
    return found


def _read_choice(reply: str, options: list[str], multi: bool) -> Extraction:
    if not reply.strip():
        return no_answer(reply)
    valid = "".join(letters(len(options)))
    pats = option_patterns(tuple(options))
    text = _prepare(reply)
    bare = r.BARE_LETTER.match(text)
    if bare is not None and (letter := _Reply.letters_of_valid(bare.group("a"), valid, multi)) is not None:
        return answered(letter, "bare-letter", "strict")
    tails = Tails(text)
    read: dict[int, tuple[re.Match[str], Candidate | None]] = {}
    for window in _TAILS:
        tail = len(text) - window
        if tail <= _MARGIN:
            break
        best = _last(_Reply.of(tails, valid, multi, pats, tail - _MARGIN, read), _strict)
        if best is not None and best.start >= tail:
            return answered(best.answer, best.how, "strict")
    first = _Reply.of(tails, valid, multi, pats, 0, read)
    best = _last(first, _strict)
    if best is not None:
        return answered(best.answer, best.how, "strict")
    rep = first.stripped()
    loose = _loose(rep)
    readable, pending = _settled(rep, loose)
    found = _agreed(rep, readable, pending) if readable else _by_text(rep, pending)
    if found is None:
        return no_answer(reply, "conflicting-letters" if loose else "no-rule-matched")
    return answered(found.answer, found.how, "loose")
