"""Numeric (grid-in) answers: read a number from a reply, parse and compare numbers as written."""

from __future__ import annotations

import re
from fractions import Fraction

from examharness.extract.model import Extraction, Tier, answered, no_answer

_NUM = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
_NUMBER = re.compile(
    rf"(?<![\w.,/])(?P<neg>[-−]\s?)?(?:\\d?frac\s*\{{\s*(?P<tn>{_NUM})\s*\}}\s*\{{\s*(?P<td>{_NUM})"
    rf"\s*\}}|(?P<n>{_NUM})(?:\s*/\s*(?P<d>{_NUM}))?)(?!\d)\s*%?"
)
_NUMERIC_CUE = re.compile(r"(?i)\banswers?\b[^\n\d]{0,12}?(?:is|:|=)|\\boxed\s*\{")
_VARIABLE_EQUALS = re.compile(r"(?<![\w)])[A-Za-z]\w*\s*=\s*(?=[-−\d.\\])")


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


def _number(text: str) -> re.Match[str] | None:
    """``text`` as one number, or None when it is not one or divides by zero (a denominator
    without a digit other than 0)."""
    m = _NUMBER.fullmatch(text.strip())
    denominator = None if m is None else m.group("d") or m.group("td")
    return None if m is None or (denominator is not None and not denominator.strip("0.,")) else m


def parse_number(text: str) -> Fraction | None:
    """The value of one number as written ("3/4", ".75", "1,250", "-5", "75%", "\\frac{3}{4}")."""
    m = _number(text)
    return None if m is None else _value(m)


def is_number(text: str) -> bool:
    """Whether :func:`parse_number` reads ``text`` (without building the fraction: exam
    validation asks this of every numeric answer)."""
    return _number(text) is not None


def extract_numeric(reply: str) -> Extraction:
    """Read a numeric (grid-in) answer: the last "answer is N" statement (strict), else ``x = N``,
    else the last number (both loose). A percent sign is dropped (grid-in answers carry none)."""
    numbers = [m for m in _NUMBER.finditer(reply) if parse_number(m.group(0)) is not None]
    stated = []
    for cue in _NUMERIC_CUE.finditer(reply):
        line_end = reply.find("\n", cue.end())
        end = len(reply) if line_end == -1 else line_end
        after = [m for m in numbers if cue.end() <= m.start() < min(end, cue.end() + 60)]
        if after:
            stated.append(after[0])
    equals = [m for m in numbers if any(v.end() == m.start() for v in _VARIABLE_EQUALS.finditer(reply))]
    rules: tuple[tuple[str, Tier, list[re.Match[str]]], ...] = (
        ("answer-is", "strict", stated), ("variable-equals", "loose", equals),
        ("numeric-last", "loose", numbers),
    )  # fmt: skip
    for how, tier, found in rules:
        if found:
            return answered(_canonical(_value(found[-1])), how, tier)
    return no_answer(reply)


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
