"""Terminal report helpers."""

from __future__ import annotations

import pytest

from examharness.report import ordinal, percentile_text


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (0, "0th"),
        (1, "1st"),
        (2, "2nd"),
        (3, "3rd"),
        (11, "11th"),
        (12, "12th"),
        (13, "13th"),
        (21, "21st"),
        (53, "53rd"),
        (57, "57th"),
        (100, "100th"),
        (86.5, "86.5th"),
    ],
)
def test_ordinal(x: float, text: str) -> None:
    assert ordinal(x) == text


def test_percentile_text() -> None:
    assert percentile_text(63, 66) == "63rd–66th"
    assert percentile_text(89, 89) == "89th"
