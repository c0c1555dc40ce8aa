"""Answer extraction: turn a model's free-text reply into a letter choice or a number.

Pure functions, no I/O. Strict rules (an explicit answer statement such as ``The answer is
therefore [C]``, the format of the GPT-4 report's multiple-choice prompts, Appendix A.8) are tried
before lenient ones (a bold or bracketed letter, the option's text, a lone letter), as in
lm-evaluation-harness's strict and flexible filters. ``Extraction.how`` records the rule that fired
so every grade can be audited. Within one tier the *last* match wins: models reason past wrong
options before they state an answer. Letters are case-sensitive except inside an answer statement
or on a line of their own, so prose ("a", "I", "A triangle has...") is never read as an answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from fractions import Fraction
from typing import Literal

from pydantic import BaseModel, ConfigDict

from examharness.exam import LETTERS

Status = Literal["answered", "unparseable", "empty", "refused"]

_ANSWER_CUES: tuple[tuple[str, str], ...] = (
    ("answer-is-therefore", r"(?i:\banswers?\s+(?:is|are)\s+therefore)"),
    ("answer-is", r"(?i:\b(?:answer|choice|option)s?\s+(?:is|are|would\s+be|should\s+be|must\s+be"
                  r"|will\s+be|is\s+clearly|is\s+definitely))"),
    ("answer-colon", r"(?i:\banswers?(?:\s*\(s\))?\s*:)"),
    ("boxed", r"\\boxed\s*\{"),
)
_BODY_PREFIX = (r"[\s:*$]*(?:\\(?:text|textbf|mathrm|mathbf)\s*\{\s*)?"
                r"(?:(?i:option|choice|letter)s?\s+)?")
_REFUSAL = re.compile(
    r"(?i)\bi\s*(?:cannot|can't|can\s+not|am\s+unable|'m\s+unable|am\s+not\s+able)\b"
    r"|\bi(?:'m|\s+am)\s+sorry\b|\bas\s+an\s+ai\b"
    r"|\b(?:cannot|can't|unable\s+to|not\s+possible\s+to|impossible\s+to)\s+(?:be\s+)?determine"
    r"|\bno\s+(?:graph|figure|image|diagram|picture|table|passage|map|chart)s?\s+(?:is\s+|was\s+)?"
    r"(?:provided|given|shown|included)|\bnot\s+enough\s+information\b"
)
_CONNECTIVES = frozenset(
    {"because", "since", "as", "for", "and", "which", "with", "is", "was", "so"})
_NEGATION = re.compile(r"(?i)\b(?:not|nor|neither|if|whether|unless)\W*$")
_NUM = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
_NUMBER = re.compile(
    rf"(?<![\w.,/])(?P<neg>[-−]\s?)?(?:\\d?frac\s*\{{\s*(?P<tn>{_NUM})\s*\}}\s*\{{\s*(?P<td>{_NUM})"
    rf"\s*\}}|(?P<n>{_NUM})(?:\s*/\s*(?P<d>{_NUM}))?)(?!\d)\s*%?"
)
_NUMERIC_CUE = re.compile(r"(?i)\banswers?\b[^\n\d]{0,12}?(?:is|:|=)|\\boxed\s*\{")
_VARIABLE_EQUALS = re.compile(r"(?<![\w)])[A-Za-z]\w*\s*=\s*(?=[-−\d.\\])")


class Extraction(BaseModel):
    """What was read from one reply: the answer (if any) and the rule that found it."""

    model_config = ConfigDict(frozen=True)

    status: Status
    answer: str | None = None
    """Sorted letters (``"C"``, ``"ACD"``) or a normalised number string (``"0.75"``, ``"2/3"``)."""
    how: str
    """The extraction rule that fired, e.g. ``answer-is-therefore`` or ``option-text``."""


def letters(n: int) -> list[str]:
    """Option letters for ``n`` options: ``A`` up to the n-th letter."""
    if not 0 <= n <= len(LETTERS):
        raise ValueError(f"cannot letter {n} options (at most 26)")
    return list(LETTERS[:n])


def _letter_list(valid: str) -> str:
    """Regex for a list of letters ("C", "[A][C]", "A, C and D", or one lowercase "c.")."""
    up, lo = f"[{valid}]", f"[{valid.lower()}]"
    item = rf"[\[(]?{up}[\])]?"
    sep = r"(?:\s*(?:,|;|&|\+|\band\b)\s*(?:and\s+)?|\s*)"
    not_or = rf"(?!\s*(?:\bor\b|/)\s*[\[(]?{up}\b)"
    return (rf"(?:{item}(?:{sep}{item})*(?![\w']){not_or}"
            rf"|[\[(]?{lo}[\])]?(?=\s*(?:[.,;:!?*$}}\]]|$)))")


def _letters_in(text: str, valid: str) -> str:
    found = re.findall(f"[{valid}]", text) or re.findall(f"[{valid}]", text.upper())
    return "".join(sorted(set(found)))


def _normalise(text: str) -> str:
    words = re.sub(r"[^\w\s]", " ", text.lower()).split()
    while words and words[0] in ("the", "a", "an"):
        words = words[1:]
    return " ".join(words)


def _option_hits(text: str, options: list[str], *, prefix: bool) -> list[int]:
    """Indices of options whose normalised text is in ``text`` (or starts it, if ``prefix``)."""
    norm = _normalise(text)
    hits = []
    for i, option in enumerate(options):
        opt = _normalise(option)
        if not opt or (not prefix and (len(opt) < 3 or not re.search(r"[a-z]", opt))):
            continue
        pattern = rf"^{re.escape(opt)}\b" if prefix else rf"\b{re.escape(opt)}\b"
        if re.search(pattern, norm):
            hits.append(i)
    if prefix and len(hits) > 1:
        longest = max(len(_normalise(options[i])) for i in hits)
        hits = [i for i in hits if len(_normalise(options[i])) == longest]
    return hits


Candidate = tuple[int, str, str]


def _prose_word(found: str, after: str) -> bool:
    """True for the English words "A"/"I" starting prose ("The answer is: A triangle has...")."""
    word = re.match(r"\s+([a-z]+)", after)
    return found in ("A", "I") and word is not None and word.group(1) not in _CONNECTIVES


def _strict(reply: str, options: list[str], valid: str) -> Iterator[Candidate]:
    listed = _letter_list(valid)
    for how, cue in _ANSWER_CUES:
        for m in re.finditer(cue, reply):
            rest = reply[m.end():]
            body = re.match(_BODY_PREFIX + f"({listed})", rest)
            if body and not _prose_word(body.group(1), rest[body.end():]):
                yield m.start(), how, _letters_in(body.group(1), valid)
                continue
            line = rest.split("\n", 1)[0] if rest.strip() else ""
            hits = _option_hits(line, options, prefix=True) if how != "boxed" else []
            if len(hits) == 1:
                yield m.start(), "answer-option-text", valid[hits[0]]
    correct = re.compile(
        rf"(?<!\w)(?:(?i:option|choice)\s+)?[\[(]?(?P<a>[{valid}])[\])]?\s+"
        r"(?i:is\s+(?:the\s+)?(?:correct|right|best)\b|is\s+the\s+(?:\w+\s+)?answer\b)")
    for m in correct.finditer(reply):
        if not _NEGATION.search(reply[max(0, m.start() - 12):m.start()]):
            yield m.start(), "letter-is-correct", m.group("a")


def _marked(text: str, valid: str) -> Iterator[Candidate]:
    up, listed = f"[{valid}]", _letter_list(valid)
    rules = {
        "bold-letter": rf"\*\*\s*(?:(?i:option|choice)\s+)?(?P<a>{listed})"
                       r"(?:[.:)]\s*[^*\n]{0,80})?\*\*",
        "latex-letter": rf"\$\s*(?:\\(?:text|textbf|mathrm)\s*\{{\s*)?(?P<a>{up})\s*\}}?\s*\$"
                        r"(?=\s*[.!]?\s*(?:$|\n))",
        "bracket-letter": rf"(?<![\w\]])(?P<a>\[{up}\](?:\s*\[{up}\])*)(?!\()",
        "paren-letter": rf"(?<![\w(])\((?P<a>{up})\)",
        "letter-paren": rf"(?:^|(?<=\s))(?P<a>{up})\)",
        "option-letter": rf"(?i:\b(?:option|choice))\s+(?P<a>{up})(?![\w'])",
        "choose-letter": r"(?i:\bi(?:'d|\s+would|\s+will|'ll)?\s+(?:go\s+with|choose|pick|select))"
                         rf"\s+(?:(?i:option|choice)\s+)?(?P<a>{listed})",
    }
    for how, pattern in rules.items():
        for m in re.finditer(pattern, text, re.MULTILINE):
            yield m.start(), how, _letters_in(m.group("a"), valid)
    lead = re.match(rf"\s*[\[(]?(?P<a>{up})[\])]?[.:)]\s+\S", text)
    if lead:
        yield 0, "leading-letter", lead.group("a")


def _lone(text: str, valid: str, multi: bool) -> Iterator[Candidate]:
    listed = _letter_list(valid)
    line = rf"^[\s*>#-]*(?:(?i:answer|option|choice)\s*)?(?P<a>{listed})[.:!]?[\s*]*$"
    for m in re.finditer(line, text, re.MULTILINE):
        found = _letters_in(m.group("a"), valid)
        yield m.start(), "multi-list" if multi and len(found) > 1 else "lone-letter", found


def _strip_echo(reply: str, options: list[str], valid: str) -> str:
    """Blank out a re-quoted option list ("(A) Paris (B) London ..."): it is not an answer."""
    spans = []
    for letter, option in zip(valid, options, strict=True):
        text = r"\s+".join(re.escape(w) for w in option.split())
        pattern = rf"(?<!\w)[\[(]?{letter}[\])\.:]?\s*(?i:{text})"
        spans += [m.span() for m in re.finditer(pattern, reply)] if text else []
    if len({reply[a:b].lstrip("[( ")[0] for a, b in spans}) < 2:
        return reply
    for a, b in sorted(spans, reverse=True):
        reply = reply[:a] + " " + reply[b:]
    return reply


def _pick(candidates: Iterator[Candidate], multi: bool) -> Candidate | None:
    usable = [c for c in candidates if c[2] and (multi or len(c[2]) == 1)]
    return max(usable, key=lambda c: c[0]) if usable else None


def _no_answer(reply: str) -> Extraction:
    if not reply.strip():
        return Extraction(status="empty", how="empty")
    if _REFUSAL.search(reply):
        return Extraction(status="refused", how="refusal")
    return Extraction(status="unparseable", how="no-rule-matched")


def extract_choice(reply: str, options: list[str], multi: bool = False) -> Extraction:
    """Read the chosen letter(s) from a reply to a multiple-choice (or multi-select) item."""
    if not reply.strip():
        return _no_answer(reply)
    valid = "".join(letters(len(options)))
    found = _pick(_strict(reply, options, valid), multi)
    if found is None:
        text = _strip_echo(reply, options, valid)
        found = _pick(_marked(text, valid), multi)
        if found is None:
            hits = _option_hits(text, options, prefix=False)
            found = (0, "option-text", valid[hits[0]]) if len(hits) == 1 else None
        if found is None:
            found = _pick(_lone(text, valid, multi), multi)
    if found is None:
        return _no_answer(reply)
    return Extraction(status="answered", answer=found[2], how=found[1])


def _value(m: re.Match[str]) -> Fraction:
    num = m.group("tn") or m.group("n")
    den = m.group("td") or m.group("d")
    value = Fraction(num.replace(",", "")) / (Fraction(den.replace(",", "")) if den else 1)
    return -value if m.group("neg") else value


def _canonical(value: Fraction) -> str:
    """``12``, ``0.75``, ``-1250.5`` for terminating decimals, else ``2/3``."""
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    if den != 1:
        return f"{value.numerator}/{value.denominator}"
    digits = 0
    while (value * 10**digits).denominator != 1:
        digits += 1
    text = str(abs(value * 10**digits).numerator).rjust(digits + 1, "0")
    return f"{'-' if value < 0 else ''}{text[:-digits]}.{text[-digits:]}"


def parse_number(text: str) -> Fraction | None:
    """The value of one number as written ("3/4", ".75", "1,250", "-5", "75%", "\\frac{3}{4}")."""
    m = _NUMBER.fullmatch(text.strip())
    if m is None or (m.group("d") is not None and Fraction(m.group("d").replace(",", "")) == 0):
        return None
    if m.group("td") is not None and Fraction(m.group("td").replace(",", "")) == 0:
        return None
    return _value(m)


def extract_numeric(reply: str) -> Extraction:
    """Read a numeric (grid-in) answer: the last "answer is N" statement, else ``x = N``, else the
    last number. A percent sign is dropped (grid-in answers carry none)."""
    numbers = [m for m in _NUMBER.finditer(reply)
               if parse_number(m.group(0)) is not None]
    stated = []
    for cue in _NUMERIC_CUE.finditer(reply):
        line_end = reply.find("\n", cue.end())
        end = len(reply) if line_end == -1 else line_end
        after = [m for m in numbers if cue.end() <= m.start() < min(end, cue.end() + 60)]
        if after:
            stated.append(after[0])
    equals = [m for m in numbers
              if any(v.end() == m.start() for v in _VARIABLE_EQUALS.finditer(reply))]
    for how, found in (("answer-is", stated), ("variable-equals", equals),
                       ("numeric-last", numbers)):
        if found:
            return Extraction(status="answered", answer=_canonical(_value(found[-1])), how=how)
    return _no_answer(reply)


def numeric_matches(answer: str, accepted: list[str | float], tolerance: float) -> bool:
    """Whether an extracted number equals any accepted value within ``tolerance`` (absolute)."""
    value = parse_number(answer)
    if value is None:
        return False
    slack = Fraction(str(tolerance))
    for option in accepted:
        target = Fraction(str(option)) if isinstance(option, float | int) else parse_number(option)
        if target is not None and abs(value - target) <= slack:
            return True
    return False
