"""Runner overhead benchmark: examharness against a bare asyncio loop over the openai SDK.

2,000 MMLU items (the test CSVs in ../shared/data/mmlu, subjects concatenated, 5-shot, single
stage, max_tokens 5) are sent to the scripted server (a separate process, so it never shares a
GIL with the client) with a fixed latency, at two points: 100 ms x concurrency 32 (ideal
2000 * 0.1 / 32 = 6.25 s) and 50 ms x concurrency 64 (ideal 1.5625 s). At each point:

  bare     AsyncOpenAI(max_retries=0) + a semaphore of the same concurrency, the same messages;
  harness  ``api.run_exams`` end to end (exam load, render, requests, records), no progress.

Printed: harness/ideal, bare/ideal, harness/bare; cached rerun / first run (same cache file);
``examharness --help`` start-up time (best of 5). Targets: harness/bare <= 1.2 at both points,
cached/first <= 0.05, --help < 0.5 s. The machine may be shared, so bare and harness runs are
interleaved and the best of ``--repeat`` kept. Run: ``.venv/bin/python bench/bench_runner.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import openai

from examharness.api import RunOptions, load_exams, run_exams
from examharness.exam import Exam
from examharness.importers import write_exam_yaml
from examharness.importers.mmlu import import_mmlu
from examharness.prompts import Message, Renderer

MMLU = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mmlu"
N_ITEMS = 2000
POINTS = [(0.100, 32), (0.050, 64)]


def build_exam(out: Path, n_items: int) -> Path:
    """One exam, one section per MMLU subject, cut at ``n_items`` items."""
    sections = []
    total = 0
    for test in sorted((MMLU / "test").glob("*_test.csv")):
        dev = MMLU / "dev" / test.name.replace("_test.csv", "_dev.csv")
        section = import_mmlu(dev, test, shots=5, warn=lambda _: None).sections[0]
        items = section.items[: n_items - total]
        sections.append(section.model_copy(update={"items": items}))
        total += len(items)
        if total >= n_items:
            break
    if total < n_items:
        raise SystemExit(f"only {total} MMLU items under {MMLU}")
    exam = Exam(id="bench-mmlu", title="MMLU benchmark", source="MMLU test CSVs (Hendrycks et al.)",
                license="MIT", sections=sections)  # fmt: skip
    path = out / "bench-mmlu.yaml"
    write_exam_yaml(exam, path, f"Benchmark exam: {n_items} MMLU items (bench/bench_runner.py)")
    return path


def render_all(path: Path) -> list[list[Message]]:
    loaded = load_exams([path])[0]
    renderer = Renderer(vision=False)
    return [renderer.render(loaded, s, i) for s in loaded.exam.sections for i in range(len(s.items))]


@contextmanager
def scripted_server(latency: float) -> Iterator[str]:
    cmd = [sys.executable, "-m", "examharness.testing.scripted_server", "--port", "0",
           "--latency", str(latency)]  # fmt: skip
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("listening on "):
                raise SystemExit(f"scripted server did not start: {line!r}")
            yield line.split()[-1]
        finally:
            proc.kill()


def bare(base_url: str, messages: list[list[Message]], concurrency: int) -> float:
    async def go() -> float:
        sem = asyncio.Semaphore(concurrency)
        async with openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0,
                                      timeout=60) as client:  # fmt: skip

            async def one(m: list[Message]) -> str:
                async with sem:
                    r = await client.chat.completions.create(
                        model="bench", messages=m, temperature=0, max_tokens=5, seed=0,  # type: ignore[arg-type]
                    )  # fmt: skip
                    return r.choices[0].message.content or ""

            started = time.perf_counter()
            replies = await asyncio.gather(*(one(m) for m in messages))
            elapsed = time.perf_counter() - started
        assert len(replies) == len(messages)
        return elapsed

    return asyncio.run(go())


def harness(base_url: str, exam: Path, concurrency: int, out: Path, cache: Path | None) -> float:
    opts = RunOptions(paths=[exam], model="bench", base_url=base_url, concurrency=concurrency,
                      out=out, use_cache=cache is not None, cache_path=cache, vision=False)
    started = time.perf_counter()
    _, counters = run_exams(opts)
    elapsed = time.perf_counter() - started
    assert counters.ok == N_ITEMS, counters.as_summary()
    return elapsed


def help_time() -> float:
    exe = Path(sys.executable).with_name("examharness")
    cmd = [str(exe), "--help"] if exe.exists() else [sys.executable, "-m", "examharness.cli", "--help"]
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per measurement, bare and harness interleaved (best kept)")
    args = parser.parse_args()
    ratios_ok = True
    with tempfile.TemporaryDirectory(prefix="examharness-bench-") as tmp:
        root = Path(tmp)
        exam = build_exam(root, N_ITEMS)
        started = time.perf_counter()
        messages = render_all(exam)
        print(f"{N_ITEMS} items; exam load + render alone: {time.perf_counter() - started:.3f}s "
              "(inside every harness time, never in bare)")
        cache = root / "cache.sqlite"
        first = cached = 0.0
        for n, (latency, concurrency) in enumerate(POINTS):
            ideal = N_ITEMS * latency / concurrency
            bares: list[float] = []
            runs: list[float] = []
            with scripted_server(latency) as url:
                bare(url, messages[:concurrency], concurrency)  # warm up the server
                for r in range(args.repeat):
                    bares.append(bare(url, messages, concurrency))
                    if n == 0 and r == 0:
                        first = harness(url, exam, concurrency, root / "results", cache)
                        cached = harness(url, exam, concurrency, root / "results", cache)
                        runs.append(first)
                    else:
                        runs.append(harness(url, exam, concurrency, root / "results", None))
            b, h = min(bares), min(runs)
            ratios_ok &= h / b <= 1.2
            print(f"{latency * 1000:.0f} ms x {concurrency}: ideal {ideal:.3f}s  bare {b:.3f}s  "
                  f"harness {h:.3f}s  harness/ideal {h / ideal:.3f}  bare/ideal {b / ideal:.3f}  "
                  f"harness/bare {h / b:.3f}  (target <= 1.2)")  # fmt: skip
        print(f"cached rerun {cached:.3f}s / first run {first:.3f}s = {cached / first:.3f} "
              "(target <= 0.05)")
        startup = help_time()
        print(f"examharness --help: {startup:.3f}s best of 5 (target < 0.5s)")
    ok = ratios_ok and cached / first <= 0.05 and startup < 0.5
    print("all targets met" if ok else "some targets missed")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
