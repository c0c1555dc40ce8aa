"""The check itself: sample every item's substrings, scan the corpus once, build the report."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from examharness.contamfile import (
    ContamHit,
    ContaminationReport,
    ExamContamination,
    SkippedFile,
)
from examharness.contamination.corpus import CHUNK_BYTES, Stream, corpus_files, feed_file
from examharness.contamination.method import (
    SUBSTRING_LENGTH,
    SUBSTRINGS_PER_ITEM,
    ContamTarget,
    Matcher,
    item_rng,
    sample_substrings,
    targets_from_exam,
)
from examharness.exam import load_exam

MAX_HITS_PER_PATTERN = 3


def scan(
    targets: list[ContamTarget],
    corpus_paths: list[Path],
    seed: int,
    text_field: str = "text",
    progress: Callable[[int, int], None] | None = None,
    *,
    chunk_bytes: int = CHUNK_BYTES,
) -> ContaminationReport:
    """Check every target against the corpus in one streaming pass."""
    started = time.perf_counter()
    files = corpus_files(corpus_paths)
    owners: dict[str, list[int]] = {}
    for t, target in enumerate(targets):
        for pattern in sample_substrings(target.text, rng=item_rng(seed, target)):
            owners.setdefault(pattern, []).append(t)
    patterns = list(owners)
    matcher = Matcher(patterns, SUBSTRING_LENGTH)
    places: list[list[tuple[str, int, int]]] = [[] for _ in patterns]
    skipped: list[SkippedFile] = []
    total, done = sum(f.stat().st_size for f in files), 0
    for file in files:
        stream = Stream(matcher)

        def on_match(pid: int, position: int, file: Path = file, stream: Stream = stream) -> None:
            if len(places[pid]) < MAX_HITS_PER_PATTERN:
                places[pid].append((str(file), *stream.locate(position)))

        def tick(at: int, base: int = done) -> None:
            if progress is not None:
                progress(base + at, total)

        feed_file(stream, file, text_field, chunk_bytes, on_match, tick, skipped)
        done += file.stat().st_size
    hits = [
        ContamHit(
            exam_id=targets[t].exam_id,
            item_id=targets[t].item_id,
            pattern=patterns[pid],
            file=f,
            line=line,
            offset=offset,
        )
        for pid, found in enumerate(places)
        for f, line, offset in found
        for t in owners[patterns[pid]]
    ]
    seconds = time.perf_counter() - started
    return ContaminationReport(
        seed=seed, substrings_per_item=SUBSTRINGS_PER_ITEM, substring_length=SUBSTRING_LENGTH,
        text_field=text_field,
        corpus_files=[str(f) for f in files],
        exams=_per_exam(targets, hits),
        hits=hits,
        skipped=skipped,
        bytes_scanned=done,
        seconds=round(seconds, 3),
        mb_per_s=round(done / 1e6 / max(seconds, 1e-9), 1),
    )


def _per_exam(targets: list[ContamTarget], hits: list[ContamHit]) -> list[ExamContamination]:
    dirty = {(h.exam_id, h.item_id) for h in hits}
    ids: dict[str, list[str]] = {}
    for target in targets:
        ids.setdefault(target.exam_id, []).append(target.item_id)
    return [
        ExamContamination(
            exam_id=exam_id,
            n_items=len(items),
            item_ids=items,
            contaminated=[i for i in items if (exam_id, i) in dirty],
            share_contaminated=sum((exam_id, i) in dirty for i in items) / len(items),
        )
        for exam_id, items in ids.items()
    ]


def run_contamination(
    exam_paths: list[Path],
    corpus_paths: list[Path],
    seed: int = 0,
    include_options: bool = False,
    text_field: str = "text",
    progress: Callable[[int, int], None] | None = None,
) -> ContaminationReport:
    """What ``examharness contamination`` does: load the exams, scan, return the report."""
    targets = [
        target for path in exam_paths for target in targets_from_exam(load_exam(path).exam, include_options)
    ]
    report = scan(targets, corpus_paths, seed, text_field, progress)
    return report.model_copy(update={"include_options": include_options})
