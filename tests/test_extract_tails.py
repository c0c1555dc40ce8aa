"""The tail scanner (:mod:`examharness.extract.tails`) against the scan it replaces, and whole
readings against the reading of the whole reply, over long generated replies: echoes of real
5-shot MMLU prompts from ``../shared/data/mmlu`` with answer statements, rejections and marks
put at random places, some with the characters that make lower-casing change (Σ, İ) or with
text in other scripts."""

from __future__ import annotations

import csv
import random

import pytest
from conftest import SHARED

from examharness.extract import choice, extract_choice
from examharness.extract import rules as r
from examharness.extract.tails import Tails

MMLU = SHARED / "data" / "mmlu"
INSERTS = (
    "The answer is (C).", "Answer: B", "So B.", "Therefore, the answer is D", "A is wrong.",
    "We can eliminate A and B.", "**C**", "Actually, D.", "答案是C", "Ответ: В", "It is A.",
    "Option 3 is best.", "(B) is still too small.", "I think it's C", "Σ is the sum; answer: A",
    "İstanbul is not the answer, so C.", "Definitely D.", "\\boxed{B}", "The correct one is C!",
    "C and D are both incorrect", "In conclusion, A", "Final: B", "Thus, the third option.",
)  # fmt: skip


def _prompts() -> list[tuple[str, list[str]]]:
    """Each test item as its 5-shot prompt (the subject's dev items with their answers first)."""
    prompts = []
    for test in sorted((MMLU / "test").glob("*_test.csv")):
        dev = MMLU / "dev" / test.name.replace("_test.csv", "_dev.csv")
        shots = "".join(_block(row) + f" {row[5]}\n\n" for row in _rows(dev))
        prompts += [(shots + _block(row), row[1:5]) for row in _rows(test)[:40]]
    return prompts


def _rows(path: object) -> list[list[str]]:
    with open(str(path), encoding="utf-8", newline="") as f:
        return [row for row in csv.reader(f) if len(row) >= 6]


def _block(row: list[str]) -> str:
    options = "".join(f"{letter}. {text}\n" for letter, text in zip("ABCD", row[1:5], strict=True))
    return f"{row[0]}\n{options}Answer:"


def _replies(n: int, seed: int) -> list[tuple[str, list[str]]]:
    """``n`` echoes ("You said: " and the prompt) with 0-3 inserts at random places."""
    rng = random.Random(seed)
    prompts = _prompts()
    out = []
    for _ in range(n):
        text, options = rng.choice(prompts)
        for _ in range(rng.randrange(4)):
            at = rng.randrange(len(text) + 1)
            text = f"{text[:at]} {rng.choice(INSERTS)} {text[at:]}"
        out.append((f"You said: {text}", options))
    return out


@pytest.fixture(scope="module")
def replies() -> list[tuple[str, list[str]]]:
    if not MMLU.is_dir():
        pytest.skip(f"no MMLU data at {MMLU}")
    return _replies(300, seed=13)


def test_tails_equal_a_fresh_scan_of_every_tail(replies: list[tuple[str, list[str]]]) -> None:
    checked = 0
    for text, _ in replies:
        tails = Tails(text)
        starts = {max(0, len(text) - w) for w in (200, 700, 1100, 3100, 4000)} | {0}
        for start in sorted(starts, reverse=True):
            lowered = text[start:].lower()
            expected = (r.keywords_in(lowered), r.anchor_positions(text[start:], lowered, start))
            assert tails.at(start) == expected, (start, text[start : start + 80])
            checked += 1
    assert checked >= 1000
    assert any(not Tails(t).exact for t, _ in replies), "no reply exercised the fallback"


def test_rules_tried_on_a_grown_tail_find_what_a_fresh_scan_finds(
    replies: list[tuple[str, list[str]]],
) -> None:
    """Matches kept from a shorter tail and tried only at the added anchors are, in order and
    span, what each rule finds scanning the longer tail afresh."""
    rules = [*r.CUE_RULES, *r.STRICT, *r.ZONES, r.CONCLUDED_TEXT]
    reused = 0
    for text, _ in replies[:120]:
        tails = Tails(text)
        for start in sorted({max(0, len(text) - w) for w in (100, 900, 2900)} | {0}, reverse=True):
            _, anchors = tails.at(start)
            for rule in rules:
                expected = [m.span() for m in rule.scan(text, anchors, start)]
                assert [m.span() for m in tails.scan(rule, anchors, start)] == expected, (rule.name, start)
            reused += tails.exact and tails.added is not None and start < len(text) - 100
    assert reused > 100, "no tail was grown from a shorter one"


def test_the_conclusion_rule_matches_only_where_the_concluded_text_rule_does(
    replies: list[tuple[str, list[str]]],
) -> None:
    """``_strict`` tries :data:`~examharness.extract.rules.CONCLUSION` only at the matches of
    :data:`~examharness.extract.rules.CONCLUDED_TEXT`: at every anchor where the first matches,
    the second does too."""
    extra = ["So B.", "Therefore, (C).", "In  conclusion:\nD", "所以B", "That leaves us with only A.", "C"]
    tried = 0
    for text in [t for t, _ in replies[:150]] + extra:
        lowered = text.lower()
        anchors = r.anchor_positions(text, lowered) or {}
        for i in sorted({i for word in r.CONCLUSION.at for i in anchors.get(word, ())}):
            if r.CONCLUSION.pattern.match(text, i):
                assert r.CONCLUDED_TEXT.pattern.match(text, i), text[i : i + 40]
                tried += 1
    assert tried >= 5


def test_tails_only_grow_backwards() -> None:
    tails = Tails("So the answer is B.")
    tails.at(5)
    with pytest.raises(ValueError, match="backwards"):
        tails.at(10)


def test_reading_a_tail_first_reads_what_the_whole_reply_says(
    replies: list[tuple[str, list[str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tail windows and the tail scanner are shortcuts: the whole reply read at once (no
    windows) gives the same answer, rule and tier for every generated reply."""
    choice._MEMO.clear()
    windowed = [extract_choice(text, options) for text, options in replies]
    monkeypatch.setattr(choice, "_TAILS", ())
    choice._MEMO.clear()
    whole = [extract_choice(text, options) for text, options in replies]
    choice._MEMO.clear()
    assert windowed == whole
    assert len({e.answer for e in whole}) > 2 and len({e.how for e in whole}) > 3


def test_a_rule_tried_only_after_its_boundary_finds_what_a_full_scan_finds(
    replies: list[tuple[str, list[str]]],
) -> None:
    ruled = [rule for rule in r.STRICT if rule.after is not None]
    assert ruled
    found = 0
    for rule in ruled:
        for text, _ in [*replies, ("Definitely C.\nLikely B", []), ("x.  \n Final: A", [])]:
            for start in (0, 1, max(0, len(text) - 1000)):
                expected = [m.span() for m in rule.pattern.finditer(text, start)]
                assert [m.span() for m in rule.scan(text, None, start)] == expected
                found += len(expected)
    assert found > 0


@pytest.mark.parametrize(
    "text",
    [
        "😀🎉 so " * 50 + "Therefore the answer is 答案是C (B) " + "𝔸 it is in the option " * 40,
        "\ud800 x" * 300 + " So the answer is B. " + "Σ y " * 100,
        "İ" * 40 + " so the answer is (C) " * 30,
        "",
    ],
    ids=["astral", "surrogate-and-sigma", "dotted-capital-i", "empty"],
)
def test_tails_of_unusual_characters(text: str) -> None:
    tails = Tails(text)
    for start in (max(0, len(text) - 200), max(0, len(text) - 1000), 0):
        lowered = text[start:].lower()
        assert tails.at(start) == (r.keywords_in(lowered), r.anchor_positions(text[start:], lowered, start))
