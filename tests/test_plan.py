"""Planning: sampling plans (the report's defaults < the exam's section settings < the command line)
and a resumed run's options (the run's own, with only the session flags the user gave on top)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from runs import NO_KEY_ENV, ExamSpec, answer_key, first_right, run_on, write_exam

from examharness.cli import main
from examharness.exam import Section
from examharness.plan import RunOptions, resolve_sampling, resume_options
from examharness.records import RunConfig
from examharness.testing import ScriptedServer

MC_ITEM = {"id": "a", "type": "mc", "question": "q", "options": ["x", "y"], "answer": "A"}
FR_ITEM = {"id": "f", "type": "free_response", "prompt": "p", "rubric": "r", "max_points": 2}
MC: dict[str, Any] = {"id": "mc", "kind": "multiple_choice", "items": [MC_ITEM]}
FR: dict[str, Any] = {"id": "fr", "kind": "free_response", "items": [FR_ITEM]}
CODE_ITEM = {"id": "c", "type": "code", "prompt": "p", "entry_point": "f", "tests": "def check(c): pass"}
CODE: dict[str, Any] = {"id": "code", "kind": "code", "items": [CODE_ITEM]}


@pytest.mark.parametrize(
    ("section", "samples", "expected"),
    [(CODE, None, 1), (CODE, 5, 5), ({**CODE, "sampling": {"samples": 3}}, None, 3),
     ({**CODE, "sampling": {"samples": 3}}, 7, 7), (FR, 5, 1)],
)
def test_code_samples(section: dict[str, Any], samples: int | None, expected: int) -> None:
    assert resolve_sampling(Section.model_validate(section), RunOptions(samples=samples)).samples == expected


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
        (CODE, {}, ("single", 0.0, 1024)),
        (CODE, {"temperature": 0.8, "mc_mode": "two_stage"}, ("single", 0.8, 1024)),
    ],
)
def test_resolve_sampling(
    section: dict[str, Any], opts: dict[str, Any], expected: tuple[str, float, int]
) -> None:
    plan = resolve_sampling(Section.model_validate(section), RunOptions(**opts))
    assert (plan.mode, plan.temperature, plan.max_tokens) == expected
    assert plan.answer_temperature == 0.0


STORED = RunConfig(
    run_id="r", examharness_version="0", model="m", base_url="http://127.0.0.1:9/v1", backend="openai",
    seed=3, vision=False, concurrency=2, limit=5, api_key_env="MY_KEY", prompts_dir="/stored", exams=[],
)  # fmt: skip


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, (2, "MY_KEY", Path("/stored"))),
        ({"concurrency": 8}, (8, "MY_KEY", Path("/stored"))),  # 8 is the default of a new run
        ({"api_key_env": "OPENAI_API_KEY", "prompts_dir": Path("/mine")},
         (2, "OPENAI_API_KEY", Path("/mine"))),
        ({"model": "other", "seed": 9, "concurrency": 1}, (1, "MY_KEY", Path("/stored"))),
    ],
)
def test_resume_takes_only_the_flags_given(given: dict[str, Any], expected: tuple[int, str, Path]) -> None:
    opts = resume_options(RunOptions(resume=Path("r"), **given), STORED)
    assert (opts.concurrency, opts.api_key_env, opts.prompts_dir) == expected
    kept = (opts.model, opts.base_url, opts.seed, opts.vision, opts.limit)
    assert kept == ("m", STORED.base_url, 3, False, 5)


def test_resume_flag_equal_to_the_default_is_honoured(tmp_path: Path) -> None:
    """``--resume RUN --concurrency 8`` on a run made with 2 runs (and records) 8; no flag keeps it."""
    exam = write_exam(tmp_path / "exams", ExamSpec("zeta", "Zeta Exam", n_mc=3, scale=None))
    with ScriptedServer(responder=answer_key([exam], first_right("zeta", 3)), model="m") as srv:
        run = run_on(srv, tmp_path, [exam], "m", concurrency=2)

        def stored() -> int:
            return int(json.loads((run / "run.json").read_text())["concurrency"])

        assert stored() == 2
        common = ["run", "--resume", str(run), "--no-score", "--api-key-env", NO_KEY_ENV, "--no-cache"]
        assert main([*common, "--concurrency", "8"]) == 0
        assert stored() == 8
        assert main(common) == 0
        assert stored() == 8
