"""Every choice-extraction rule, named and compiled once at import.

Patterns match any capital letter; the caller keeps only letters of the item's options, so no
pattern depends on the option count and nothing is compiled per reply. A rule's named group ``a``
holds the letter(s) it read. Strict rules are explicit answer statements; loose rules are marks
and mentions that need the rejection checks of :mod:`examharness.extract.choice` and agreement.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import TypeAlias

from examharness.extract import lexicon as lx
from examharness.extract.model import Tier

_OPEN, _CLOSE = r"[\[(【（「『]", r"[\])】）」』]"
ITEM = rf"{_OPEN}?[A-Z]{_CLOSE}?"
_SEP = r"(?:\s*(?:,|;|&|\+|\band\b|、|和|及)\s*(?:and\s+)?|\s*)"
_NOT_OR = rf"(?!\s*(?:\bor\b|/|或|\bo\b|\bou\b|\boder\b|\bили\b)\s*{_OPEN}?[A-Z]\b)"
_AFTER_UPPER = r"(?![A-Za-z0-9]|['’]s\b)"
_AFTER_LOWER = r"(?=[ \t]*(?:[.,;:!?*$}\])\"'”）。，\n]|\Z))"
LIST = (
    rf"(?:{ITEM}(?:{_SEP}{ITEM})*{_AFTER_UPPER}{_NOT_OR}"
    rf"|(?<![A-Za-z]){_OPEN}?[a-z]{_CLOSE}?{_AFTER_LOWER})"
)
"""One letter or a list of letters ("C", "[A][C]", "A, C and D"; one lowercase "c." alone)."""


def _nfkc(fragment: str) -> str:
    """Replies are NFKC-normalised before matching (Thai "ำ" decomposes), so patterns are too."""
    return unicodedata.normalize("NFKC", fragment)


_FILL = (
    r"(?P<fill>(?:[\s:：*_$\"'“”‘’`「『【\[(（\-—–]|\\(?:text|textbf|mathrm|mathbf|boxed)\s*\{"
    rf"|{lx.FILLER_WORDS}\b)*?)"
)
BODY = re.compile(rf"{_FILL}(?P<a>{LIST})")
"""What follows an answer cue: quotes, markdown, "option", "likely", ... then the letter(s)."""

_NUM_WORD = r"(?i:option|choice|alternative|answer|number|no\.|#|选项|選項|вариант)"
OPTION_NUMBER_PATTERN = re.compile(
    rf"(?:{_NUM_WORD}\s*(?:#|no\.?)?\s*(?P<n>\d{{1,2}})(?![\d.,]*\d|\s*%)"
    r"|(?i:\bthe\s+(?P<o>first|second|third|fourth|fifth|sixth|last|1st|2nd|3rd|4th|5th)\s+"
    r"(?:option|choice|one|answer|alternative)\b))"
)
""""Option 3", "choice #2", "the third option": an option by position."""
ORDINALS = {
    "first": 1,
    "1st": 1,
    "second": 2,
    "2nd": 2,
    "third": 3,
    "3rd": 3,
    "fourth": 4,
    "4th": 4,
    "fifth": 5,
    "5th": 5,
    "sixth": 6,
}


_END = r"(?=[ \t]*(?:[.!;,)\]。！，*_$\"'”]|\n|\Z|\s+(?i:because|since|as|—|-)\b))"


_ADVERB = (
    r"\s*(?i:definitely|certainly|clearly|surely|obviously|probably|likely|most\s+likely"
    r"|undoubtedly|my\s+guess:?|final:?)"
)


@dataclass(frozen=True)
class Rule:
    """A named pattern and how to find its matches cheaply.

    ``needs``: the pattern is only tried on a reply whose lower-cased text holds one of these.
    ``at``: lower-cased words a match starts with; the pattern is only tried where they occur
    (``str.find`` is far cheaper than a scan with case-insensitive alternatives). With ``back``,
    the words lie inside the match, which starts at most ``back`` characters before them and ends
    at most ``ahead`` characters after them. ``after``: a match starts only at the text's start or
    right after a match of this pattern (one character, and a lookahead for what must follow), as
    the pattern itself requires; only there is it tried (``finditer`` tries every position, and a
    pattern that opens with a lookbehind has no prefix for ``re`` to skip ahead with).
    """

    name: str
    tier: Tier
    pattern: re.Pattern[str]
    needs: tuple[str, ...] = ()
    at: tuple[str, ...] = ()
    back: int = 0
    ahead: int = 0
    after: re.Pattern[str] | None = None

    def applies(self, present: frozenset[str]) -> bool:
        return not self.needs or not present.isdisjoint(self.needs)

    def scan(self, text: str, anchors: dict[str, list[int]] | None, start: int = 0) -> list[re.Match[str]]:
        """Matches in ``text`` from ``start``; ``anchors`` (:func:`anchor_positions`) limits where
        to try."""
        if self.after is not None:
            return self._scan_after(text, start, self.after)
        if not self.at or anchors is None:
            return list(self.pattern.finditer(text, start))
        return self._tried_at(text, anchors, [])

    def scan_added(
        self, text: str, added: dict[str, list[int]], found: list[re.Match[str]]
    ) -> list[re.Match[str]]:
        """What :meth:`scan` finds from an earlier start, given what it found from a later one
        (``found``) and the anchors in between (``added``, all before those it was tried at): a
        match tried at an anchor does not depend on where the scan started."""
        return self._tried_at(text, added, found)

    def _tried_at(
        self, text: str, anchors: dict[str, list[int]], found: list[re.Match[str]]
    ) -> list[re.Match[str]]:
        """The matches tried at the rule's words in ``anchors`` (each match at the word, or in the
        window around it), in order, followed by or merged with ``found`` (matches tried at later
        anchors)."""
        starts = sorted({i for word in self.at for i in anchors.get(word, ())})
        if not self.back:
            return [m for i in starts if (m := self.pattern.match(text, i)) is not None] + found
        spans: dict[tuple[int, int], re.Match[str]] = {}
        for i in starts:
            for m in self.pattern.finditer(text, max(0, i - self.back), min(len(text), i + self.ahead)):
                spans[m.span()] = m
        for m in found:  # in the order a scan from the earlier start finds them
            spans[m.span()] = m
        return sorted(spans.values(), key=lambda m: m.start())

    def _scan_after(self, text: str, start: int, after: re.Pattern[str]) -> list[re.Match[str]]:
        """What ``finditer`` from ``start`` finds (leftmost, then from the match's end on), trying
        only the positions where a match can start."""
        tries = [m.end() for m in after.finditer(text, max(0, start - 1))]
        found: list[re.Match[str]] = []
        resume = start
        for i in [0, *tries] if start == 0 else tries:
            if i >= resume and (m := self.pattern.match(text, i)) is not None:
                found.append(m)
                resume = max(m.end(), i + 1)
        return found


def _rule(
    name: str,
    tier: Tier,
    pattern: str,
    needs: tuple[str, ...] = (),
    *,
    flags: int = 0,
    at: tuple[str, ...] = (),
    back: int = 0,
    ahead: int = 0,
    after: str = "",
) -> Rule:
    return Rule(
        name,
        tier,
        re.compile(_nfkc(pattern), flags),
        tuple(_nfkc(w) for w in needs),
        tuple(_nfkc(w) for w in at),
        back,
        ahead,
        re.compile(after) if after else None,
    )


_CUE_AT = {
    "answer-is-therefore": ("answer",),
    "answer-is": ("answer", "choice", "option", "response", "selection", "pick", "letter", "solution"),
    "answer-colon": ("answer", "choice", "option", "response", "solution", "selection"),
    "my-answer": ("i'", "i ", "i’"),
    "boxed": ("\\boxed",),
}

CUE_RULES = tuple(
    _rule(name, "strict", frag, lx.CUE_KEYWORDS[name], at=_CUE_AT.get(name, ()))
    for name, frag in lx.ANSWER_CUES.items()
)
"""Answer cues ("The answer is", "答案是", "Ответ:"); the letter after one is read with :data:`BODY`."""


BARE_LETTER = re.compile(
    r"\A[\s*_#>\"'`]*(?:(?i:option|choice)\s*)?(?:\\text(?:bf)?\s*\{|\$)*"
    rf"(?P<a>{ITEM}(?:{_SEP}{ITEM})*|{_OPEN}?[a-z]{_CLOSE}?)\}}*\$?[.!]?[\s*_\"'`]*\Z"
)
"""A reply that is only the letter(s), however decorated: "C", "(c).", "**C**", "$C$", "A, C and D"."""

STRICT: tuple[Rule, ...] = (
    _rule(
        "letter-is-correct",
        "strict",
        rf"(?<![A-Za-z0-9])(?:(?i:option|choice|answer)\s+)?(?P<a>{ITEM})(?=[^A-Za-z0-9]|\Z){lx.LETTER_IS_RIGHT}",
        at=lx.RIGHT_AT,
        back=30,
        ahead=16,
    ),
    _rule(
        "letter-text-is-correct",
        "strict",
        rf"(?<![A-Za-z0-9])(?:(?i:option|choice)\s+)?(?P<a>{_OPEN}?[A-Z]{_CLOSE}?)[.:]?\s+(?!(?i:is|are)\b)"
        r"[^.;!?,\n]{1,40}?\s(?i:is|would\s+be|must\s+be)\s+(?i:the\s+)?(?i:only\s+)?"
        r"(?i:correct|right|best|answer\b)",
        at=("correct", "right", "best", "answer"),
        back=70,
        ahead=10,
    ),
    _rule(
        "adverb-letter",
        "strict",
        rf"(?:\A|(?<=[.!\n])){_ADVERB}[\s,:]+(?P<a>{LIST}){_END}",
        (
            "definitely",
            "certainly",
            "clearly",
            "surely",
            "obviously",
            "probably",
            "likely",
            "undoubtedly",
            "my guess",
            "final",
        ),
        after=rf"[.!\n](?={_ADVERB})",
    ),
    _rule(
        "conclusion",
        "strict",
        rf"{lx.CONCLUSION}[\s,:：、*_—–-]*(?:(?i:it(?:'s|’s|\s+is|\s+must\s+be)|the\s+answer(?:\s+is)?"
        r"|we\s+(?:get|have|choose|pick)|i\s+(?:choose|pick|say|think)|option|choice|(?:the\s+)?letter)"
        rf"[\s:*_]*|选|選|答案是)*(?P<a>{LIST}){_END}",
        at=lx.CONCLUSION_AT,
    ),
    _rule(
        "self-correction",
        "strict",
        rf"{lx.CORRECTION}[\s,:—–-]*(?:(?i:it(?:'s|’s|\s+is|\s+should\s+be)|the\s+answer\s+is"
        rf"|option|choice)\s+)?(?P<a>{LIST}){_END}",
        at=lx.CORRECTION_AT,
    ),
    _rule(
        "it-is-letter",
        "strict",
        rf"{lx.COPULA_PRONOUN}\s+(?:(?i:option|choice|answer)\s+)?(?P<a>{LIST}){_END}",
        at=("it", "that", "this", "i think", "my guess"),
    ),
)
"""Explicit answer statements besides the cues of :data:`CUE_RULES` (which need :data:`BODY`)."""

LOOSE: tuple[Rule, ...] = (
    _rule(
        "bold-letter",
        "loose",
        rf"(?:\*\*|__)\s*(?:(?i:option|choice)\s+)?(?P<a>{LIST})(?:[.:)]\s*[^*\n]{{0,80}})?(?:\*\*|__)",
        at=("**", "__"),
    ),
    _rule(
        "latex-letter",
        "loose",
        r"\$\s*(?:\\(?:text|textbf|mathrm|mathbf)\s*\{\s*)?(?P<a>[A-Z])\s*\}?\s*\$(?=\s*[.!]?\s*(?:$|\n))"
        rf"|\\text(?:bf)?\s*\{{\s*(?P<b>{_OPEN}?[A-Z]{_CLOSE}?)\s*\}}",
        ("$", "\\text"),
    ),
    _rule("bracket-letter", "loose", r"(?P<a>\[(?<![\w\]]\[)[A-Z]\](?:\s*\[[A-Z]\])*)(?!\()", at=("[",)),
    _rule("paren-letter", "loose", r"[(（](?<![\w(][(（])(?P<a>[A-Z])[)）]", at=("(", "（")),
    _rule(
        "letter-paren",
        "loose",
        r"(?:^|(?<=\s))(?P<a>[A-Z])\)",
        flags=re.MULTILINE,
        at=(")",),
        back=2,
        ahead=2,
    ),
    _rule(
        "option-letter",
        "loose",
        r"(?i:\b(?:option|choice|opción|opci[oó]n))\s+(?P<a>[A-Z])(?![\w'])",
        at=("option", "choice", "opción", "opcion"),
    ),
    _rule(
        "check-mark",
        "loose",
        rf"(?:✓|✔|✅|☑)\s*(?:\*\*)?(?P<a>{ITEM})(?![A-Za-z0-9])",
        at=("✓", "✔", "✅", "☑"),
    ),
    _rule("leading-letter", "loose", rf"\A\s*{_OPEN}?(?P<a>[A-Z]){_CLOSE}?(?:[.:)]|\s*[,\-–—])\s+\S"),
    _rule(
        "lone-letter",
        "loose",
        rf"^[\s*>#-]*(?:(?i:answer|option|choice)\s*)?(?P<a>{LIST})[.:!]?[\s*]*$",
        flags=re.MULTILINE,
    ),
)
"""Marks and mentions, tried only when no strict rule found an answer."""

MENTION = re.compile(
    rf"(?<![A-Za-z0-9'’])(?:(?i:option|choice)\s+)?{_OPEN}?(?P<a>[A-Z]){_CLOSE}?(?![A-Za-z0-9])"
)
"""Any standalone capital letter: how many letters a sentence names."""

_ZLIST = rf"{ITEM}(?:\s*(?:,|and|or|nor|&|/)\s*(?:and\s+|or\s+)?{ITEM})*"
ZONES: tuple[Rule, ...] = (
    _rule(
        "listed-wrong",
        "loose",
        rf"(?<![A-Za-z0-9])(?:(?i:options?|choices?|answers?)\s+)?{_ZLIST}\s*(?i:are|were)\s+"
        r"(?i:(?:all|both|also|clearly|therefore|thus|definitely|obviously)\s+)*"
        r"(?i:wrong|incorrect|false|out\b|eliminated|ruled\s+out|not\s+(?:correct|right|the\s+answer))",
        at=(" are ", " were "),
        back=60,
        ahead=60,
    ),
    _rule(
        "eliminated",
        "loose",
        r"(?i:eliminat\w*|rul\w*\s+out|exclud\w*|discard\w*|cross\w*\s+out|reject\w*)\s+"
        rf"(?:(?i:options?|choices?|answers?)\s+)?{_ZLIST}",
        at=("eliminat", "rule", "ruling", "exclud", "discard", "cross", "reject"),
    ),
    _rule(
        "listed-wrong-zh",
        "loose",
        rf"(?<![A-Za-z0-9])(?:(?i:options?|choices?)\s+)?{_ZLIST}\s*(?:都|均)?(?:是|为)?(?:错误|錯誤|不正确|不正確)",
        ("错误", "錯誤", "不正确", "不正確"),
    ),
)
"""Elimination lists: "A, B and C are all wrong", "we can eliminate A and B"."""

CONCLUDED_TEXT = _rule(
    "conclusion-option-text",
    "strict",
    rf"{lx.CONCLUSION}[\s,:]*(?i:the\s+answer\s+is\s+|it(?:'s|\s+is)\s+)?",
    at=lx.CONCLUSION_AT,
)
"""A conclusion followed by an option's text ("That leaves Berlin.", "So, Madrid.")."""
CONCLUSION = next(rule for rule in STRICT if rule.name == "conclusion")
"""The "So B." rule: it starts with :data:`CONCLUDED_TEXT`'s connective, after which all of that
pattern is optional, so it can match only where that one does (and is tried only there)."""
REJECT_AFTER = re.compile(_nfkc(lx.REJECT_AFTER))
REJECT_BEFORE = re.compile(_nfkc(lx.REJECT_BEFORE))
CLAUSE_END = re.compile(_nfkc(lx.CLAUSE_END))
CLAUSE_START = re.compile(_nfkc(lx.CLAUSE_START))
DISCUSSED = re.compile(
    r"(?i)^[\s\])*_]*(?:\S+\s+){0,4}?(?:is|are|was|were|would|has|have|does|do|can|could"
    r"|might|may|seems|looks|appears)\b"
)
"""A marked letter that is the subject of a sentence ("(B) is still too small") is being discussed."""
PROSE_AFTER = re.compile(r"\s+([a-z]+)")
CONNECTIVES = frozenset({"because", "since", "as", "for", "and", "which", "with", "is", "was", "so", "or"})
CYRILLIC_LOOKALIKES = "АВСЕ"
HOMOGLYPHS = re.compile(rf"(?:(?<=[\s(\[:：—–-])|^)([{CYRILLIC_LOOKALIKES}])(?=[\s.)\]]|$)", re.MULTILINE)
"""Cyrillic А, В, С, Е standing alone where a Latin letter belongs ("Ответ: В")."""
CYRILLIC_TO_LATIN = str.maketrans(CYRILLIC_LOOKALIKES, "ABCE")

OPTION_NUMBER = Rule(
    "option-number",
    "loose",
    OPTION_NUMBER_PATTERN,
    at=("option", "choice", "alternative", "answer", "number", "no.", "#", "选项", "選項", "вариант", "the "),
)
_NEEDED = {w for rule in (*CUE_RULES, *STRICT, *LOOSE, *ZONES) for w in rule.needs}
ASCII_KEYWORDS = tuple(sorted(w for w in _NEEDED if w.isascii()))
OTHER_KEYWORDS = tuple(sorted(w for w in _NEEDED if not w.isascii()))


def keywords_in(lowered: str) -> frozenset[str]:
    """Which rule keywords a lower-cased reply holds (one substring test each, non-ASCII ones only
    for a non-ASCII reply); each gated rule then knows in O(1) whether it can match at all."""
    found = {w for w in ASCII_KEYWORDS if w in lowered}
    if not lowered.isascii():
        found.update(w for w in OTHER_KEYWORDS if w in lowered)
    return frozenset(found)


Trie: TypeAlias = "dict[str, Trie]"


def _trie(words: set[str]) -> str:
    """One regular expression for a set of literal words, factored by common prefixes (several
    times faster to scan with than a flat alternation), matching the longest word at a position."""
    root: Trie = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: Trie) -> str:
        alts = [re.escape(ch) + emit(sub) for ch, sub in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = "|".join(alts)
        return f"(?:{body})?" if "" in node else (alts[0] if len(alts) == 1 else f"(?:{body})")

    return emit(root)


_ANCHOR_WORDS = {
    w for rule in (*CUE_RULES, *STRICT, *LOOSE, *ZONES, CONCLUDED_TEXT, OPTION_NUMBER) for w in rule.at
}
ANCHOR_WORDS = tuple(sorted(_ANCHOR_WORDS))
_ANCHORS = re.compile(_trie(_ANCHOR_WORDS))
ANCHOR_PREFIXES = {w: [p for p in _ANCHOR_WORDS if w.startswith(p)] for w in _ANCHOR_WORDS}
"""Each anchor word with the anchor words it starts with ("finally": "final"; "no.": "no")."""


def anchor_positions(text: str, lowered: str, offset: int = 0) -> dict[str, list[int]] | None:
    """Where each rule anchor word occurs in ``lowered`` (the lower-cased reply from ``offset``),
    found in one scan (longest word first at each position; a shorter anchor inside a longer one is
    never a word start there). None when lower-casing changed the length, so positions would not
    match: rules then scan."""
    if len(lowered) != len(text):
        return None
    found: dict[str, list[int]] = {}
    for m in _ANCHORS.finditer(lowered):
        for word in ANCHOR_PREFIXES[m.group()]:
            found.setdefault(word, []).append(offset + m.start())
    return found
