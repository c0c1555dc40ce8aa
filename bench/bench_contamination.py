"""Benchmark the contamination scan: throughput, and cost of 10,000 items versus 10.

Not part of the test suite. Writes a corpus of random words (``--size-mb``, default 1024) into a
temporary folder, plants the texts of 10,000 synthetic items in it, then times the whole scan
(reading, normalising, matching) once with the first 10 items and once with all 10,000. Targets:
at least 100 MB/s, and the 10,000-item scan at most 1.5x the 10-item one.

    .venv/bin/python bench/bench_contamination.py [--size-mb 1024] [--files 4]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from examharness.contamination import ContaminationReport, ContamTarget, scan

N_ITEMS = 10_000
BLOCK_BYTES = 1 << 20


def _words(rng: random.Random, n: int, alphabet: str) -> list[str]:
    return ["".join(rng.choices(alphabet, k=rng.randint(2, 9))) for _ in range(n)]


def _items(rng: random.Random) -> list[ContamTarget]:
    """Item texts from their own vocabulary (with capitals) so they never occur by chance."""
    vocab = _words(rng, 20_000, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return [
        ContamTarget(exam_id="bench", item_id=f"q{i:05d}",
                     text=" ".join(rng.choices(vocab, k=40)) + "?")
        for i in range(N_ITEMS)
    ]


def _write_corpus(folder: Path, size_mb: int, files: int, items: list[ContamTarget]) -> None:
    rng = random.Random(1)
    vocab = _words(rng, 50_000, "abcdefghijklmnopqrstuvwxyz")
    blocks = []
    for _ in range(16):
        text = ""
        while len(text) < BLOCK_BYTES:
            line = " ".join(rng.choices(vocab, k=rng.randint(5, 30)))
            text += line.capitalize() + rng.choice([". ", ", ", "; ", ".\n"])
        blocks.append(text[:BLOCK_BYTES])
    n_blocks = size_mb * (1 << 20) // BLOCK_BYTES
    plants = sorted((rng.randrange(n_blocks), item.text.lower().replace(" ", "  "))
                    for item in items)
    per_file = -(-n_blocks // files)
    for f in range(files):
        with (folder / f"part{f:02d}.txt").open("w", encoding="utf-8") as out:
            for b in range(f * per_file, min((f + 1) * per_file, n_blocks)):
                out.write(rng.choice(blocks))
                while plants and plants[0][0] == b:
                    out.write("\n" + plants.pop(0)[1] + "\n")


def _run(label: str, targets: list[ContamTarget], folder: Path) -> ContaminationReport:
    started = time.perf_counter()
    report = scan(targets, [folder], seed=0)
    seconds = time.perf_counter() - started
    found = sum(len(e.contaminated) for e in report.exams)
    print(f"{label:>12}: {report.bytes_scanned / 1e6:8.0f} MB in {seconds:6.2f} s = "
          f"{report.bytes_scanned / 1e6 / seconds:6.1f} MB/s; contaminated {found}/{len(targets)}")
    return report.model_copy(update={"seconds": seconds})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--files", type=int, default=4)
    args = parser.parse_args()
    items = _items(random.Random(0))
    folder = Path(tempfile.mkdtemp(prefix="contam-bench-"))
    try:
        started = time.perf_counter()
        _write_corpus(folder, args.size_mb, args.files, items)
        os.sync()
        print(f"corpus: {args.size_mb} MB in {args.files} files, written in "
              f"{time.perf_counter() - started:.1f} s")
        few = _run("10 items", items[:10], folder)
        many = _run("10000 items", items, folder)
        print(f"ratio 10000/10 items: {many.seconds / few.seconds:.2f}  (target <= 1.5; "
              f"throughput target >= 100 MB/s)")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
