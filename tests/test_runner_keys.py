"""Request cache keys: computed once per stage (the lookup's key is the one the reply is stored
under) and byte-identical to the keys earlier versions stored, so existing caches still serve."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import Recorder, write_mc_exam

from examharness import runner
from examharness.api import RunOptions, run_exams
from examharness.backends.base import StageParams
from examharness.cache import request_key
from examharness.results import RunFolder
from examharness.testing import ScriptedServer

MESSAGES = [
    {"role": "user", "content": "Question? ünïcode \u2014 === system ===\nA. 1"},
    {"role": "assistant", "content": "x"},
]


def test_keys_are_the_ones_earlier_versions_stored() -> None:
    """Pinned from the key function as released: a changed key would orphan every user's cache."""
    answer = StageParams(temperature=0.0, max_tokens=5, seed=0, stop=["]"])
    key = request_key(model="m", base_url="http://127.0.0.1:1/v1", stage="answer", messages=MESSAGES,
                      params=answer)  # fmt: skip
    assert key == "e4fefc98ca395c5369718a3386de178b3784f2bc232edb7258ecfc8200dd38b6"
    response = StageParams(temperature=0.3, max_tokens=512, seed=None)
    key = request_key(model="m", base_url=None, stage="response", messages=MESSAGES[:1], params=response)
    assert key == "d55f35e1734491cc92aa68f741e619919dfe3ad1c52f11f9aaeb61994393fa00"


def stored_keys(cache: Path) -> set[str]:
    with sqlite3.connect(cache) as db:
        return {str(k) for (k,) in db.execute("SELECT key FROM replies")}


def test_replies_are_stored_under_their_request_keys_and_served_by_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two-stage items: each stage's key is computed once, and its reply stored under the key of
    the request recorded for it; a second run whose item memo cannot serve it (another template
    folder, same prompts) gets every stage from the request cache by those keys."""
    computed: list[str] = []

    def counted(**inputs: Any) -> str:
        computed.append(request_key(**inputs))
        return computed[-1]

    monkeypatch.setattr(runner, "request_key", counted)
    exam = write_mc_exam(tmp_path / "exams" / "keys.yaml", 6, mode="two_stage")
    cache = tmp_path / "cache" / "requests.sqlite"
    empty_prompts = tmp_path / "no-templates"
    empty_prompts.mkdir()
    with ScriptedServer(responder=Recorder(exam)) as srv:
        options: dict[str, Any] = {
            "paths": [exam.path], "model": "scripted", "base_url": srv.base_url, "out": tmp_path / "results",
            "cache_path": cache, "concurrency": 3,
        }  # fmt: skip
        run_dir, first = run_exams(RunOptions(**options))
        assert len(computed) == first.requests
        records = RunFolder(run_dir).read_items()
        expected = {
            request_key(model="scripted", base_url=srv.base_url, stage=s.stage, messages=s.messages,
                        params=s.params)
            for r in records for s in r.stages
        }  # fmt: skip
        sent = len(srv.requests)
        _, second = run_exams(RunOptions(**options, prompts_dir=empty_prompts))
        assert len(srv.requests) == sent
    assert first.requests == len(expected) == 2 * exam.n_items
    assert set(computed[: first.requests]) == stored_keys(cache) == expected
    assert (second.requests, second.cached) == (0, 2 * exam.n_items)
