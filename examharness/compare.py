"""``compare``: are two runs on the same exams really different, item by item?

Built from each run's ``run.json``, ``grades.jsonl`` and ``scores.json`` alone (a view never calls
a model). Every run is compared with the first. Per shared exam and pair of runs:

* score deltas (second minus first) of raw, scaled and percentile lower bound, as scored;
* on the *paired* items — graded in both runs, status neither ``error`` nor without a grade —
  McNemar's exact test on the choice/numeric items (right/wrong), two-sided binomial on the
  discordant pairs ``b`` (right in the first, wrong in the second) and ``c`` (the reverse);
* a paired bootstrap (items resampled, seeded) of the difference in mean points per item, which
  covers free-response and essay points too;
* the flipped item ids.

A comparison is only meaningful on like terms, so differing exam content, templates, sampling
or item sets are reported as loud ``warnings`` rather than silently compared.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict
from rich.console import Console
from rich.table import Table

from examharness.code.models import PassCount
from examharness.code.views import PassAtKDelta, delta_lines, paired_pass_at_k
from examharness.errors import InputError
from examharness.jsonfiles import read_jsonl
from examharness.languages import LanguageScore, by_language
from examharness.records import (
    GRADES_FILE,
    SCHEMA_VERSION,
    UNPAIRED,
    ExamScore,
    GradeStatus,
    Reported,
    RunConfig,
    RunScores,
    SchemaVersion,
)
from examharness.results import RunFolder
from examharness.scoring import PercentileRange, summable

CHOICE_TYPES = frozenset({"mc", "multi_select", "numeric", "code"})
"""Items that are right or wrong (a code item is right when some sample passed every test)."""


class RunInfo(BaseModel):
    run_id: str
    model: str
    path: str


class ExamRunScore(BaseModel):
    run_id: str
    raw: float
    scaled: float | None
    percentile: PercentileRange | None
    reported: Reported | None = None
    """After the contamination rule: the lower of the full and clean-subset score."""


class McNemar(BaseModel):
    b: int
    """Items right in the first run and wrong in the second."""
    c: int
    """Items wrong in the first run and right in the second."""
    p_value: float


class PairedBootstrap(BaseModel):
    mean_diff: float
    """Mean over paired items of (second run's points - first run's points)."""
    ci: tuple[float, float] | None
    """95% percentile interval over item resamples; None with no resamples or no items."""
    resamples: int


class Flipped(BaseModel):
    a_right_b_wrong: list[str]
    a_wrong_b_right: list[str]


class PairComparison(BaseModel):
    a: str
    b: str
    delta_raw: float
    delta_scaled: float | None
    delta_percentile: float | None
    n_paired: int
    mcnemar: McNemar
    bootstrap: PairedBootstrap
    flipped: Flipped
    pass_at_k: list[PassAtKDelta] = []
    """Code items: pass@k of both runs paired per problem, with a paired bootstrap CI."""


class ExamComparison(BaseModel):
    exam: str
    title: str
    runs: list[ExamRunScore]
    pairs: list[PairComparison]


class Comparison(BaseModel):
    runs: list[RunInfo]
    exams: list[ExamComparison]
    warnings: list[str]
    languages: dict[str, list[LanguageScore]] = {}
    """Run id -> accuracy per language (module ``languages``), for runs of translated exams."""


class PairedGrade(BaseModel):
    """What a comparison reads of each line of ``grades.jsonl`` (a
    :class:`~examharness.records.GradedItem`): only these fields are turned into Python objects,
    which reads a 20,000-item run's grades in well under half the time of whole grades."""

    model_config = ConfigDict(extra="ignore")
    schema_version: SchemaVersion = SCHEMA_VERSION
    exam_id: str
    item_id: str
    item_type: str
    status: GradeStatus
    points: float | None = None
    passes: PassCount | None = None


class _Run(BaseModel):
    path: Path
    config: RunConfig
    scores: RunScores
    grades: dict[tuple[str, str], PairedGrade]


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar: ``min(1, 2 * P(X <= min(b, c)))`` for ``X ~ Bin(b + c, 1/2)``."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    return min(1.0, 2 * tail / (1 << n))


def paired_bootstrap(diffs: list[float], n_boot: int, seed: int) -> PairedBootstrap:
    """Resample paired items with replacement; the interval is the 2.5th-97.5th percentile."""
    if not diffs:
        return PairedBootstrap(mean_diff=0.0, ci=None, resamples=0)
    arr = np.asarray(diffs, dtype=float)
    mean = float(arr.mean())
    arr = summable(arr)  # right/wrong differences: the same exact means, gathered from bytes
    if n_boot <= 0:
        return PairedBootstrap(mean_diff=mean, ci=None, resamples=0)
    rng = np.random.default_rng(seed)
    # Drawn a block of rows at a time: the same numbers as one n_boot x n draw, without holding
    # two n_boot x n arrays (a few hundred MB for a 10,000-item exam).
    rows = max(1, 2_000_000 // len(arr))
    means = np.concatenate([
        arr[rng.integers(0, len(arr), size=(min(rows, n_boot - start), len(arr)))].mean(axis=1)
        for start in range(0, n_boot, rows)
    ])  # fmt: skip
    lo, hi = np.percentile(means, [2.5, 97.5])
    return PairedBootstrap(mean_diff=mean, ci=(float(lo), float(hi)), resamples=n_boot)


def _load(path: Path) -> _Run:
    folder = RunFolder.open(path)
    lines = read_jsonl(folder.file(GRADES_FILE), PairedGrade)
    lines.check(f"run `examharness score {path}` to grade the run again")
    grades = {(g.exam_id, g.item_id): g for g in lines.records}  # the latest grade of each item
    if not grades:
        raise InputError.one(path / GRADES_FILE, None, "grades", "no grades: run `examharness score`")
    return _Run(path=path, config=folder.read_config(), scores=folder.read_scores(), grades=grades)


def _pair(a: _Run, b: _Run, ea: ExamScore, eb: ExamScore, n_boot: int, seed: int) -> PairComparison:
    ids = [i for (x, i) in a.grades if x == ea.exam and (x, i) in b.grades]
    paired = [(a.grades[(ea.exam, i)], b.grades[(ea.exam, i)]) for i in ids]
    paired = [(ga, gb) for ga, gb in paired if ga.status not in UNPAIRED and gb.status not in UNPAIRED]
    choice = [(ga, gb) for ga, gb in paired if ga.item_type in CHOICE_TYPES]
    a_only = [ga.item_id for ga, gb in choice if ga.status == "correct" and gb.status != "correct"]
    b_only = [ga.item_id for ga, gb in choice if ga.status != "correct" and gb.status == "correct"]
    diffs = [(gb.points or 0.0) - (ga.points or 0.0) for ga, gb in paired]
    pa, pb = ea.percentile, eb.percentile
    return PairComparison(
        a=a.scores.run_id, b=b.scores.run_id, delta_raw=eb.raw - ea.raw,
        delta_scaled=None if ea.scaled is None or eb.scaled is None else eb.scaled - ea.scaled,
        delta_percentile=None if pa is None or pb is None else pb.low - pa.low,
        n_paired=len(paired),
        mcnemar=McNemar(b=len(a_only), c=len(b_only), p_value=mcnemar_exact(len(a_only), len(b_only))),
        bootstrap=paired_bootstrap(diffs, n_boot, seed),
        flipped=Flipped(a_right_b_wrong=a_only, a_wrong_b_right=b_only),
        pass_at_k=paired_pass_at_k(
            {ga.item_id: ga.passes for ga, _ in paired if ga.passes is not None},
            {gb.item_id: gb.passes for _, gb in paired if gb.passes is not None}, n_boot=n_boot, seed=seed,
        ),
    )  # fmt: skip


def _warnings(first: _Run, other: _Run, exam: str) -> list[str]:
    """Differences that make a comparison of this exam unlike-for-like."""
    ra = next(e for e in first.config.exams if e.id == exam)
    rb = next((e for e in other.config.exams if e.id == exam), None)
    who = f"{exam}: {first.config.run_id} vs {other.config.run_id}"
    out = []
    if rb is not None:
        if ra.content_hash != rb.content_hash:
            out.append(f"{who}: exam content differs (content hash)")
        if ra.template_hashes != rb.template_hashes:
            out.append(f"{who}: prompt templates differ (template hashes)")
        if {k: v.model_dump() for k, v in ra.sampling.items()} != {
            k: v.model_dump() for k, v in rb.sampling.items()
        }:
            out.append(f"{who}: sampling parameters differ")
    ids_a = {i for (x, i) in first.grades if x == exam}
    ids_b = {i for (x, i) in other.grades if x == exam}
    if ids_a != ids_b:
        out.append(f"{who}: item sets differ ({len(ids_a - ids_b)} only in the first, "
                   f"{len(ids_b - ids_a)} only in the second)")  # fmt: skip
    return out


def compare_runs(run_dirs: list[Path], n_boot: int = 2000, seed: int = 0) -> Comparison:
    """Compare every run with the first, per exam the first shares with at least one other."""
    if len(run_dirs) < 2:
        raise InputError.one("command line", None, "runs", "compare needs at least two run folders")
    runs = [_load(Path(p)) for p in run_dirs]
    first, rest = runs[0], runs[1:]
    warnings: list[str] = []
    exams = []
    for ea in first.scores.exams:
        others = [(r, e) for r in rest for e in r.scores.exams if e.exam == ea.exam]
        missing = [r.config.run_id for r in rest if all(e.exam != ea.exam for e in r.scores.exams)]
        if missing:
            warnings.append(f"{ea.exam}: not in run(s) {', '.join(missing)}")
        if not others:
            continue
        for r, _ in others:
            warnings.extend(_warnings(first, r, ea.exam))
        scores = [(first, ea), *others]
        exams.append(ExamComparison(
            exam=ea.exam, title=ea.title,
            runs=[ExamRunScore(run_id=r.scores.run_id, raw=e.raw, scaled=e.scaled,
                               percentile=e.percentile, reported=e.headline()) for r, e in scores],
            pairs=[_pair(first, r, ea, e, n_boot, seed) for r, e in others],
        ))  # fmt: skip
    known = {e.exam for e in first.scores.exams}
    for r in rest:
        extra = [e.exam for e in r.scores.exams if e.exam not in known]
        if extra:
            warnings.append(f"run {r.config.run_id} has exam(s) not in the first run: {', '.join(extra)}")
    if not exams:
        warnings.append("the runs share no exam: nothing to compare")
    info = [RunInfo(run_id=r.config.run_id, model=r.config.model, path=str(r.path)) for r in runs]
    languages = {r.config.run_id: by_language(r.scores) for r in runs}
    return Comparison(runs=info, exams=exams, warnings=warnings, languages=languages)


def _num(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "-"
    text = f"{x:+.2f}" if signed and round(x, 2) != 0 else f"{abs(x) if round(x, 2) == 0 else x:.2f}"
    return text.rstrip("0").rstrip(".")


def _ids(ids: list[str], limit: int = 12) -> str:
    if not ids:
        return "none"
    return ", ".join(ids[:limit]) + (f" (+{len(ids) - limit} more)" if len(ids) > limit else "")


def _print_languages(c: Comparison, name: dict[str, str], console: Console) -> None:
    tags = list(dict.fromkeys(x.language for rows in c.languages.values() for x in rows))
    if len(tags) < 2 and tags in ([], ["en"]):
        return
    table = Table("language", *(name[r.run_id] for r in c.runs), title="accuracy by language [95% CI]",
                  title_justify="left")  # fmt: skip
    for tag in tags:
        cells = []
        for r in c.runs:
            found = [x for x in c.languages.get(r.run_id, []) if x.language == tag]
            x = found[0] if found else None
            ci = f" [{x.ci[0]:.1f}, {x.ci[1]:.1f}]" if x is not None and x.ci else ""
            cells.append("-" if x is None else f"{x.accuracy:.1f}%{ci}")
        table.add_row(tag, *cells)
    console.print(table)


def print_comparison(c: Comparison, console: Console | None = None) -> None:
    """Tables per exam; warnings in bold red before and after, so they cannot be missed."""
    console = console or Console()
    for w in c.warnings:
        console.print(f"WARNING: {w}", style="bold red", markup=False)
    name = {r.run_id: f"#{i + 1} {r.model}" for i, r in enumerate(c.runs)}
    for r in c.runs:
        console.print(f"{name[r.run_id]}: {r.run_id}", style="dim", markup=False)
    for e in c.exams:
        scores = Table("run", "raw", "scaled", "percentile", title=e.title, title_justify="left")
        for s in e.runs:
            pct = "-" if s.percentile is None else f"{_num(s.percentile.low)}-{_num(s.percentile.high)}"
            scores.add_row(name[s.run_id], _num(s.raw), _num(s.scaled), pct)
        console.print(scores)
        pairs = Table("vs #1", "Δraw", "Δscaled", "Δpct", "paired", "McNemar b/c (p)",
                      "Δmean points [95% CI]")  # fmt: skip
        for p in e.pairs:
            ci = p.bootstrap.ci
            boot = _num(p.bootstrap.mean_diff, True)
            if ci is not None:
                boot += f" [{_num(ci[0], True)}, {_num(ci[1], True)}]"
            pairs.add_row(
                name[p.b], _num(p.delta_raw, True), _num(p.delta_scaled, True),
                _num(p.delta_percentile, True), str(p.n_paired),
                f"{p.mcnemar.b}/{p.mcnemar.c} ({p.mcnemar.p_value:.3g})", boot,
            )  # fmt: skip
        console.print(pairs)
        for p in e.pairs:
            for line in delta_lines(p.pass_at_k):
                console.print(f"  {name[p.b]}: {line}", markup=False)
            console.print(f"  {name[p.b]}: right only in #1: {_ids(p.flipped.a_right_b_wrong)}; "
                          f"right only here: {_ids(p.flipped.a_wrong_b_right)}", markup=False)  # fmt: skip
    _print_languages(c, name, console)
    if c.warnings:
        console.print(f"{len(c.warnings)} WARNING(S) above: the runs are not like for like.",
                      style="bold red", markup=False)  # fmt: skip
