"""Reading the program out of a reply: which rule applies, and what runs (nothing is executed)."""

from __future__ import annotations

import pytest

from examharness.code.extract import extract_code

PREAMBLE = 'from typing import List\n\n\ndef total(xs: List[int]) -> int:\n    """Sum of xs."""\n'
FUNCTION = "def total(xs):\n    return sum(xs)\n"
MISSING = "no complete function 'total' found"


@pytest.mark.parametrize(
    ("reply", "status", "how"),
    [
        (f"Sure.\n```python\n{FUNCTION}```\nDone.", "answered", "fenced"),
        (f"```py\nimport math\n```\nthen\n```python\n{FUNCTION}```", "answered", "fenced"),
        (f"```\n{FUNCTION}```", "answered", "fenced"),
        (f"```python\n{FUNCTION}", "answered", "fenced"),  # unclosed fence at the end of the reply
        (f"The answer:\n\n{FUNCTION}\nThis sums the list.", "answered", "function"),
        (f"import math\n{FUNCTION}", "answered", "function"),
        ("    return sum(xs)\n", "answered", "body"),
        ("```javascript\nfunction total(xs) { return 0 }\n```", "unparseable", MISSING),
        ("I cannot solve this.", "unparseable", MISSING),
        ("```python\ndef other(xs):\n    return 1\n```", "unparseable", MISSING),
        ("   \n", "empty", "no reply"),
    ],
)
def test_rules(reply: str, status: str, how: str) -> None:
    found = extract_code(reply, preamble=PREAMBLE, entry_point="total")
    assert (found.status, found.how) == (status, how)
    if status == "answered":
        assert found.program is not None and "def total" in found.program
        assert found.program.startswith("from typing import List")


def test_last_fenced_definition_wins() -> None:
    reply = f"```python\ndef total(xs):\n    return 0\n```\nBetter:\n```python\n{FUNCTION}```"
    found = extract_code(reply, preamble="", entry_point="total")
    assert found.code is not None and "sum(xs)" in found.code and found.program == found.code


def test_body_needs_a_preamble() -> None:
    assert extract_code("    return 1\n", preamble="", entry_point="total").status == "unparseable"


def test_hostile_text_is_only_parsed() -> None:
    deep = "```python\ndef total(xs):\n    return " + "(" * 5000 + ")" * 5000 + "\n```"
    assert extract_code(deep, preamble="", entry_point="total").status in ("answered", "unparseable")
