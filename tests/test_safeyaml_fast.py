"""The quick YAML path (yaml-rs) gives exactly what the careful, event-by-event path gives, and
hands every text the two parsers could read apart to the careful path."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from examharness.errors import InputError
from examharness.safeyaml import _ENDS, _READ_APART, _SLOW, _quick, careful_parse

ROOT = Path(__file__).resolve().parents[1]

READ_APART = [
    "a: yes", "a: No", "a: [1, on]", "- OFF", "on: 1", "a: b\r\nc: off\r\n",
    "a: 012", "a: 0o12", "a: 0x1F", "a: 0b101", "a: -0_7", "x:\n  - 012\n",
    "a: 1e3", "a: .5e3", "a: 1.0e+3", "a: 6.8523015e+5", "a: 1_000", "a: 1:30", "a: 190:20:30.15",
    "a: 12345678901234567890", "a: 2001-12-14", "t: 2001-12-14 21:59:43.10 -5",
    "a: <<", "base: &b {k: 1}\nd:\n  <<: *b", "a: =", "a: *x", "a: &x 1", "*x: 1", "a: !!str 12",
    "a: !custom x", "---\na: 1", "a: 1\n---\nb: 2", "%YAML 1.1\n---\na: 1", "a: 1\n...\n",
    "a: x\u2028y", "a: x\x85y", "\ufeffa: 1", "\tb: 1", "a:\n  \tb: 1",
]  # fmt: skip
SAME = [
    "", "# only a comment\n", "a: 1", "a: -7", "a: +3", "a: 0", "a: 0.25", "a: -1.5", "a: .5", "a: 1.",
    "a: .inf", "a: -.Inf", "a: .NaN", "a: ~", "a: null", "a: Null", "a:", "a: true", "a: False",
    "a: y", "a: n", "a: 'yes'", 'a: "012"', "a: yes sir", "a: on the table", "a: no. 5",
    "a: AT&T", "a: 2 * 3", "a: rock & roll", "a: 1:30 pm", "a: 2001 was a year",
    "a: |\n  literal\n   text\n", "a: >\n  folded\n  text\n", "a: 'it''s'", 'a: "tab\\there \\u00e9"',
    "a: [1, 2.5, x, 'y']", "a: {b: 1, c: [d, e]}", "- a\n- b: 1\n  c: 2\n", "a: b # comment",
    "question: What is 2+2?\noptions: [three, four, five, six]\nanswer: B\n",
    "a: long plain\n  scalar over\n  lines", "a: ':'", "a: x:y", "a:\n  b: 1\n  c: 'tab\there'", "a: http://x.org/a?b=c#d",
    "- Yes, because it is\n- No, since it is not\n", "a: 1 in 20,000, but", "a: 'Pat: No, not always.'",
    "a: 'nations? No: the events'", "q: $\\frac{a-1,052}{1.08}$",
]  # fmt: skip


@pytest.mark.parametrize("text", READ_APART)
def test_texts_the_parsers_read_apart_take_the_careful_path(text: str) -> None:
    assert _quick(text) is _SLOW


@pytest.mark.parametrize("text", SAME)
def test_the_quick_path_equals_the_careful_one(text: str) -> None:
    quick = _quick(text)
    assert quick is not _SLOW, "this text should not need the careful path"
    assert _equal(quick, careful_parse(text, "x.yaml"))


@pytest.mark.parametrize("text", ["a: 1\na: 2", "a: [1, 2", "a: b: c", "a: -", "a: 'open"])
def test_a_text_yaml_rs_refuses_is_explained_by_the_careful_path(text: str) -> None:
    assert _quick(text) is _SLOW


def test_every_yaml_file_in_the_repository_reads_the_same_both_ways() -> None:
    files = [p for d in ("exams", "prompts", "tests", "examharness") for p in (ROOT / d).rglob("*.yaml")]
    quick_read = 0
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        quick = _quick(text)
        if quick is _SLOW:
            continue
        quick_read += 1
        assert _equal(quick, careful_parse(text, str(path))), path
    assert quick_read >= len(files) // 2, f"the quick path read only {quick_read} of {len(files)} files"


def _equal(a: object, b: object) -> bool:
    """Equal values of equal types all the way down (1 == 1.0 == True would hide a difference)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and a != a:
        return b != b  # NaN
    return a == b


PLAIN_READ_APART = re.compile(
    r"(?:[:?-][ \t]+|[\[{,][ \t]*|\n[ \t]*(?:-[ \t]+)*)(?=[-+.0-9<=yYnNoO])(?:"
    r"(?:yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|<<|=)" + _ENDS
    + r"|[-+]?0[0-9a-zA-Z_]+" + _ENDS
    + r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?" + _ENDS
    + r"|[-+]?(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?[eE][-+]?[0-9_]+" + _ENDS
    + r"|[-+.0-9]*_[-+.0-9_]*" + _ENDS
    + r"|[-+]?[0-9]{19,}" + _ENDS
    + r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    + r")"
)
"""The rule :data:`~examharness.safeyaml._READ_APART` states, written plainly: a scalar starts
after ``:``, ``?`` or ``-`` and blanks, after ``[``, ``{`` or ``,``, or at a line's start after
blanks and ``- `` entries. The module's pattern is rewritten for speed (one character class
first, possessive blanks, a guard before the number branches)."""


def test_the_fast_read_apart_pattern_matches_where_the_plain_rule_does() -> None:
    pieces = [
        *"-:?[{,\n \t\r0123456789._eE+xob<=yYnNoOf#]}",
        "yes", "no", "on", "off", "012", "1e3", "1_0", "2001-12-14", "- ", ": ", "\n  ", "1234567890",
    ]  # fmt: skip
    rng = random.Random(13)
    texts = ["\n" + "".join(rng.choice(pieces) for _ in range(rng.randint(1, 14))) for _ in range(40_000)]
    found = [t for t in texts if PLAIN_READ_APART.search(t)]
    assert len(found) > 2_000, "the random texts should often hold something read apart"
    assert [t for t in texts if _READ_APART.search(t)] == found


BLOCK_VALUES = [
    "yes", "No", "off", "012", "0o7", "1e3", "1.5e-3", "20,000", "1_000", "1:30", "2001-12-14", "5.0", "-3",
    "Yes, because x", "Pat: No, not always", "'Pat: No, x'", "'a: 012'", '"b: No, y"', "'x? No: y'", "a, 012",
    "[a, 012]", "[No, 5]", "{k: No}", "text [a, No] more", "x{No}", "$\\frac{1,052}{2}$", "q? No", "- No",
    "a - 012", "'it''s: No, ok'", "No # c", "x #No", "=", "<<", "null", "~", "No,", "[1,2]x",
]  # fmt: skip
BLOCK_KEYS = ["a", "b", "No", "012", "key", "'q: No'", "c d"]


def _random_document(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(1, 6)):
        start = rng.choice(["", "  ", "    "]) + rng.choice(["", "- ", "- - "])
        key, value = rng.choice(BLOCK_KEYS), rng.choice(BLOCK_VALUES)
        lines.append(rng.choice([f"{start}{key}:", f"{start}{key}: {value}", f"{start}{value}"]))
    return "\n".join(lines) + rng.choice(["", "\n"])


def test_random_documents_read_the_same_both_ways_whenever_the_quick_path_takes_them() -> None:
    """Prose with commas, brackets and quoted ``: No,`` takes the quick path when no flow
    collection can start anywhere; whatever it takes must read as the careful path reads it."""
    rng = random.Random(11)
    compared = 0
    for _ in range(20_000):
        text = _random_document(rng)
        quick = _quick(text)
        if quick is _SLOW:
            continue
        try:
            careful = careful_parse(text, "x.yaml")
        except InputError:
            continue
        compared += 1
        assert _equal(quick, careful), text
    assert compared > 1_000
