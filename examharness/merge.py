"""``examharness merge``: join shard runs (``run --shard I/N``) into one run folder.

The runs must be the same run cut in pieces: the same exam files (by content hash), model and
backend, endpoint(s), seed, vision, limit, sampling and prompt templates, and distinct shards of
one ``N``. Anything else is refused with one line naming the run and the field. Shards that are
missing are refused too unless ``allow_partial`` (their items then count as not run, and
``run --resume MERGED`` asks them). The merged ``items.jsonl`` lists the items in the order an
unsharded run plans them; its ``run.json`` summary counts the merged items and adds up the
shards' costs (requests, tokens, sessions, machine time) and per-endpoint counts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from examharness.backends.endpoints import add_sessions, read_stats
from examharness.errors import InputError
from examharness.grading import planned_items
from examharness.outcome import COSTS, run_summary
from examharness.records import ItemRecord, RunConfig, now
from examharness.results import RunFolder, load_run_exams
from examharness.runlock import run_folder_lock
from examharness.runner import Counters
from examharness.shards import Shard

_WHOLE = Shard(index=1, count=1)
_SHOWN = frozenset({"model", "base_url", "seed", "vision", "limit", "edition"})
"""Fields short enough to quote in the refusal."""


def _same_run(first: RunConfig, cfg: RunConfig, path: Path) -> None:
    """Refuse ``cfg`` (at ``path``) unless it is a piece of the same run as ``first``."""
    checks: list[tuple[str, object, object]] = [
        ("exams", [(e.id, e.content_hash) for e in first.exams], [(e.id, e.content_hash) for e in cfg.exams]),
        ("model", (first.backend, first.model), (cfg.backend, cfg.model)),
        ("base_url", first.base_url, cfg.base_url),
        ("seed", first.seed, cfg.seed),
        ("vision", first.vision, cfg.vision),
        ("limit", first.limit, cfg.limit),
        ("sampling", [e.sampling for e in first.exams], [e.sampling for e in cfg.exams]),
        ("prompts", [e.template_hashes for e in first.exams], [e.template_hashes for e in cfg.exams]),
        ("edition", first.edition, cfg.edition),
    ]
    for name, want, got in checks:
        if want != got:
            detail = f": {got!r}, not {want!r}" if name in _SHOWN else ""
            why = f"differs from run {first.run_id}{detail}; not shards of one run"
            raise InputError.one(path, None, name, why)


def _check_shards(cfgs: list[RunConfig], paths: list[Path], allow_partial: bool,
                  warn: Callable[[str], None]) -> None:  # fmt: skip
    shards = [c.shard or _WHOLE for c in cfgs]
    count = shards[0].count
    seen: dict[int, Path] = {}
    for shard, path in zip(shards, paths, strict=True):
        if shard.count != count:
            why = f"shard {shard} is not one of {count} like {paths[0]}'s"
            raise InputError.one(path, None, "shard", why)
        if shard.index in seen:
            raise InputError.one(path, None, "shard", f"shard {shard} overlaps {seen[shard.index]}")
        seen[shard.index] = path
    missing = [i for i in range(1, count + 1) if i not in seen]
    if missing:
        which = ", ".join(f"{i}/{count}" for i in missing)
        if not allow_partial:
            why = f"shards {which} missing (--allow-partial merges anyway)"
            raise InputError.one("command line", None, "runs", why)
        warn(f"merge: shards {which} missing: their items count as not run until the merged run is resumed")


def _merged_items(folders: list[RunFolder], exams_order: list[tuple[str, str]]) -> list[ItemRecord]:
    """Every run's items, each recorded once, in the unsharded order."""
    owner: dict[tuple[str, str], Path] = {}
    records: dict[tuple[str, str], ItemRecord] = {}
    for folder in folders:
        for r in folder.read_items():
            if r.key in owner:
                why = f"item {r.exam_id}/{r.item_id} is also recorded in {owner[r.key]}"
                raise InputError.one(folder.path, None, "items", why)
            owner[r.key], records[r.key] = folder.path, r
    order = {key: n for n, key in enumerate(exams_order)}
    return sorted(records.values(), key=lambda r: order.get(r.key, len(order)))


def _summary(out: RunFolder, cfgs: list[RunConfig]) -> dict[str, Any]:
    """Item counts of the merged items; costs, sessions and endpoint counts added up over the runs."""
    summary = run_summary(out, {}, Counters())
    parts = [c.summary for c in cfgs]
    for key in COSTS:
        total = sum(float(p.get(key, 0)) for p in parts)
        summary[key] = round(total, 3) if key == "elapsed_s" else int(total)
    summary["sessions"] = sum(int(p.get("sessions", 1)) for p in parts)
    stats = [read_stats(p) for p in parts]
    if any(stats):
        merged = stats[0]
        for more in stats[1:]:
            merged = add_sessions(merged, more)
        summary["endpoints"] = [s.model_dump() for s in merged]
    return summary


def merge_runs(paths: list[Path], out: Path, *, allow_partial: bool = False,
               warn: Callable[[str], None] = print) -> Path:  # fmt: skip
    """Write the merged run folder ``out`` (which must not exist, or be empty); returns it.
    A shard run another process is still writing is refused (its writer lock is held)."""
    folders = [RunFolder.open(p) for p in paths]
    resolved = [p.resolve() for p in paths]
    twice = next((p for p, r in zip(paths, resolved, strict=True) if resolved.count(r) > 1), None)
    if twice is not None:
        raise InputError.one(twice, None, "runs", "run given twice")
    with contextlib.ExitStack() as locks:
        for p in paths:
            locks.enter_context(run_folder_lock(p))
        return _merge(folders, paths, out, allow_partial, warn)


def _merge(folders: list[RunFolder], paths: list[Path], out: Path, allow_partial: bool,
           warn: Callable[[str], None]) -> Path:  # fmt: skip
    cfgs = [f.read_config() for f in folders]
    for cfg, path in zip(cfgs[1:], paths[1:], strict=True):
        _same_run(cfgs[0], cfg, path)
    _check_shards(cfgs, paths, allow_partial, warn)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError.one(out, None, "--out", "exists and is not empty: merge writes a new run folder")
    first = cfgs[0]
    exams = load_run_exams(first)
    for ref in first.exams:
        if exams[ref.id].content_hash != ref.content_hash:
            raise InputError.one(ref.path, None, "exam", "exam file changed since the shard runs")
    order = [(ref.id, item.id) for ref in first.exams
             for _, item in planned_items(exams[ref.id].exam, ref.n_items)]  # fmt: skip
    records = _merged_items(folders, order)
    folder = RunFolder(out)
    folder.create()
    folder.write_items(records)
    merged = first.model_copy(update={
        "run_id": out.name, "created_at": now(), "finished_at": now(), "shard": None,
        "merged_from": [c.run_id for c in cfgs],
    })  # fmt: skip
    folder.write_config(merged.model_copy(update={"summary": _summary(folder, cfgs)}))
    return out
