"""Sampling plans: the report's defaults < the exam's section settings < the command line."""

from __future__ import annotations

from typing import Any

import pytest

from examharness.api import RunOptions, resolve_sampling
from examharness.exam import Section

MC_ITEM = {"id": "a", "type": "mc", "question": "q", "options": ["x", "y"], "answer": "A"}
FR_ITEM = {"id": "f", "type": "free_response", "prompt": "p", "rubric": "r", "max_points": 2}
MC: dict[str, Any] = {"id": "mc", "kind": "multiple_choice", "items": [MC_ITEM]}
FR: dict[str, Any] = {"id": "fr", "kind": "free_response", "items": [FR_ITEM]}


@pytest.mark.parametrize(
    ("section", "opts", "expected"),
    [
        (MC, {}, ("letter_if_needed", 0.3, 512)),
        ({**MC, "max_tokens": 200}, {}, ("letter_if_needed", 0.3, 200)),
        ({**MC, "sampling": {"mode": "two_stage", "temperature": 0.5}}, {}, ("two_stage", 0.5, 512)),
        (
            {**MC, "sampling": {"mode": "two_stage"}},
            {"mc_mode": "single", "temperature": 0.0},
            ("single", 0.0, 512),
        ),
        (FR, {}, ("single", 0.6, 1024)),
        ({**FR, "sampling": {"max_tokens": 300}}, {"max_tokens": 50}, ("single", 0.6, 50)),
        (FR, {"mc_mode": "two_stage"}, ("single", 0.6, 1024)),
    ],
)
def test_resolve_sampling(
    section: dict[str, Any], opts: dict[str, Any], expected: tuple[str, float, int]
) -> None:
    plan = resolve_sampling(Section.model_validate(section), RunOptions(**opts))
    assert (plan.mode, plan.temperature, plan.max_tokens) == expected
    assert plan.answer_temperature == 0.0
