"""Answer-extraction speed: microseconds per reply, now and (optionally) at an earlier commit.

Two sets, each graded the way a scoring pass sees them, every item with options of its own:

  short  every reply of ``tests/data/replies_corpus.yaml`` (answers as models write them, several
         languages), each paired with the options of a different MMLU item;
  long   for each of the first 500 MMLU test items in ../shared/data/mmlu, an explanation that
         quotes the question, discusses every option by letter and text, and ends with the report's
         "The answer is therefore [X]" (about 700 characters).
  echo   for every 8th MMLU test item, what the scripted server's default replies: "You said: " and
         the whole 5-shot prompt (the subject's five dev items with "Answer: X", then the item and
         "Answer:"), 2-8 KB with no answer of its own: the worst case, read to the last exemplar's
         answer and often in full (``bench/bench_cli.py``'s echoed run).

Each pass starts with empty caches (``re``'s own, the extractor's option-set cache and its reading
memo), so an
extractor that compiles patterns per reply pays for it, as it does on a first grading pass. The
best of ``--repeat`` passes is kept (the machine may be shared). With ``--baseline REV`` the
``examharness/extract.py`` of that git revision (the extractor before issue 10) is loaded from git
and timed on the same replies, and the ratio printed.

Run: ``.venv/bin/python bench/bench_extract.py --baseline 6117533``.
"""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import yaml

from examharness.extract import choice, extract_choice
from examharness.extract.options import option_patterns

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "replies_corpus.yaml"
MMLU = ROOT.parent / "shared" / "data" / "mmlu" / "test"
Extract = Callable[..., object]
Case = tuple[str, list[str], bool]


def mmlu_items() -> list[tuple[str, list[str]]]:
    items = []
    for path in sorted(MMLU.glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as f:
            items += [(row[0], row[1:5]) for row in csv.reader(f) if len(row) >= 6]
    return items


def short_cases() -> list[Case]:
    data = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    items = mmlu_items()
    return [(c["reply"], items[i][1], False) for i, c in enumerate(data["cases"]) if not c.get("multi")]


def long_cases() -> list[Case]:
    cases = []
    for n, (question, options) in enumerate(mmlu_items()[:500]):
        answer = "ABCD"[n % 4]
        parts = [f"Let's think step by step. The question: {question[:300]}"]
        parts += [
            f"Option {letter}, {text}, is {'the best fit' if letter == answer else 'not supported'}."
            for letter, text in zip("ABCD", options, strict=True)
        ]
        parts.append(f"The answer is therefore [{answer}]")
        cases.append((" ".join(parts), options, False))
    return cases


def echo_cases() -> list[Case]:
    cases = []
    for test in sorted(MMLU.glob("*_test.csv")):
        dev = MMLU.parent / "dev" / test.name.replace("_test.csv", "_dev.csv")
        shots = "".join(_block(row) + f" {row[5]}\n\n" for row in _rows(dev))
        cases += [(f"You said: {shots}{_block(row)}", row[1:5], False) for row in _rows(test)[::8]]
    return cases


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return [row for row in csv.reader(f) if len(row) >= 6]


def _block(row: list[str]) -> str:
    options = "".join(f"{letter}. {text}\n" for letter, text in zip("ABCD", row[1:5], strict=True))
    return f"{row[0]}\n{options}Answer:"


def baseline(rev: str) -> Extract:
    """``extract_choice`` from ``examharness/extract.py`` at git revision ``rev``."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:examharness/extract.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = types.ModuleType("extract_baseline")
    sys.modules[module.__name__] = module
    exec(compile(source, f"{rev}:examharness/extract.py", "exec"), module.__dict__)
    found: Extract = module.__dict__["extract_choice"]
    return found


def one_pass(extract: Extract, cases: list[Case]) -> float:
    """µs per reply for one pass from empty caches."""
    re.purge()
    option_patterns.cache_clear()
    choice._MEMO.clear()
    started = time.perf_counter()
    for reply, options, multi in cases:
        extract(reply, options, multi=multi)
    return (time.perf_counter() - started) / len(cases) * 1e6


def best_of(extracts: list[Extract], cases: list[Case], repeat: int) -> list[float]:
    """Best pass of each extractor, passes interleaved so that load changes hit both alike."""
    best = [float("inf")] * len(extracts)
    for _ in range(repeat):
        for i, extract in enumerate(extracts):
            best[i] = min(best[i], one_pass(extract, cases))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--baseline", help="git revision whose examharness/extract.py to compare with")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    extracts: list[Extract] = [extract_choice] + ([baseline(args.baseline)] if args.baseline else [])
    for name, cases in (("short", short_cases()), ("long", long_cases()), ("echo", echo_cases())):
        chars = sum(len(r) for r, _, _ in cases) / len(cases)
        times = best_of(extracts, cases, args.repeat)
        line = f"{name:5} {len(cases):4} replies, mean {chars:4.0f} chars: now {times[0]:7.1f} µs/reply"
        if len(times) > 1:
            line += f", baseline {times[1]:7.1f} µs/reply, now / baseline {times[0] / times[1]:.2f}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
