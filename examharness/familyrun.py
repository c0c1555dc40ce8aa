"""``examharness run --family FILE EXAMS``: every member sits the exams, several samples each.

A capability fit needs a pass rate per problem and member, not one right-or-wrong answer. Code
items sampled k times per run (``--samples k``) count every program from the run's own
``pass_rates.json``; every item is answered ``samples`` times, as ``samples`` ordinary runs
seeded ``seed``, ``seed+1``, … (so every sample is a normal, resumable, reportable run folder
and a cached rerun costs nothing); an item's pass rate is the share of its answered samples
that earned full points. Error items are not answers: they are counted per problem and left out of the rate.

``results/<run-id>/``: ``family_run.json`` (:class:`FamilyRunConfig`), ``<member>/sample-<s>/``
(run folders) and ``pass_rates.json`` (:class:`FamilyPassRates`, what ``examharness scaling``
reads). ``--resume`` with the family folder finishes every unfinished sample run.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field

from examharness import __version__
from examharness.api import RunOptions, run_exams, score_run
from examharness.code.scores import ProblemRate
from examharness.errors import InputError
from examharness.family import FamilyMember, ResolvedCompute, load_family, recorded_members
from examharness.jsonfiles import read_model, write_model
from examharness.records import RUN_FILE, SCHEMA_VERSION, Model, SchemaVersion, now
from examharness.results import RunFolder
from examharness.runner import ProgressFn

FAMILY_RUN_FILE = "family_run.json"
PASS_RATES_FILE = "pass_rates.json"


class FamilyRunConfig(Model):
    schema_version: SchemaVersion = SCHEMA_VERSION
    run_id: str
    created_at: str = Field(default_factory=now)
    finished_at: str | None = None
    examharness_version: str
    family: str
    members: list[FamilyMember]
    exam_paths: list[str]
    samples: int
    seed: int


class MemberPassRates(Model):
    member: str
    label: str | None = None
    compute: ResolvedCompute | None
    samples: int
    problems: list[ProblemRate]
    accuracy: dict[str, float]
    """Mean pass rate per exam (the report's Figure 3 plots this per member)."""


class FamilyPassRates(Model):
    schema_version: SchemaVersion = SCHEMA_VERSION
    run_id: str
    family: str
    members: list[MemberPassRates]


def sample_dir(family_dir: Path, member: str, sample: int) -> Path:
    return family_dir / member / f"sample-{sample}"


def _prepare(family: Path | None, opts: RunOptions, samples: int) -> tuple[Path, FamilyRunConfig, bool]:
    if opts.resume is not None:
        path = opts.resume / FAMILY_RUN_FILE
        if not path.exists():
            raise InputError.one(
                opts.resume, None, "--resume", f"not a family run folder (no {FAMILY_RUN_FILE})"
            )
        return opts.resume, read_model(path, FamilyRunConfig), True
    assert family is not None
    fam = load_family(family)
    if not opts.paths:
        raise InputError.one("command line", None, "paths", "give exam files or folders")
    run_id = f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-family-{fam.name}-{secrets.token_hex(3)}"
    cfg = FamilyRunConfig(
        run_id=run_id,
        examharness_version=__version__,
        family=fam.name,
        members=recorded_members(fam),
        exam_paths=[str(p.resolve()) for p in opts.paths],
        samples=samples,
        seed=opts.seed,
    )
    return opts.out / run_id, cfg, False


def run_family(
    family: Path | None,
    opts: RunOptions,
    *,
    samples: int = 1,
    n_boot: int = 0,
    on_progress: ProgressFn | None = None,
) -> tuple[Path, FamilyPassRates]:
    """Run (or, with ``opts.resume`` a family folder, resume) every member on the exams."""
    if samples < 1:
        raise InputError.one("command line", None, "--family-samples", "must be at least 1")
    family_dir, cfg, resumed = _prepare(family, opts, samples)
    family_dir.mkdir(parents=True, exist_ok=resumed)
    write_model(family_dir / FAMILY_RUN_FILE, cfg)
    for member in cfg.members:
        for s in range(cfg.samples):
            folder = sample_dir(family_dir, member.name, s)
            started = (folder / RUN_FILE).exists()
            if started and RunFolder(folder).read_config().finished_at is not None and not opts.retry_errors:
                continue
            member_opts = opts.model_copy(
                update={
                    "paths": [Path(p) for p in cfg.exam_paths],
                    "model": member.model,
                    "base_url": member.base_url,
                    "api_key_env": member.api_key_env,
                    "seed": cfg.seed + s,
                    "out": folder.parent,
                    "run_id": folder.name,
                    "resume": folder if started else None,
                }
            )
            run_exams(member_opts, on_progress)
            score_run(
                folder,
                n_boot=n_boot,
                use_cache=opts.use_cache,
                cache_path=opts.cache_path,
                prompts_dir=opts.prompts_dir,
            )
    rates = pass_rates(family_dir, cfg)
    write_model(family_dir / PASS_RATES_FILE, rates)
    write_model(family_dir / FAMILY_RUN_FILE, cfg.model_copy(update={"finished_at": now()}))
    return family_dir, rates


def pass_rates(family_dir: Path, cfg: FamilyRunConfig) -> FamilyPassRates:
    """Per-problem pass rates from the members' graded samples."""
    members: list[MemberPassRates] = []
    for member in cfg.members:
        tally: dict[tuple[str, str], ProblemRate] = {}
        for s in range(cfg.samples):
            folder = RunFolder(sample_dir(family_dir, member.name, s))
            code = folder.read_pass_rates()
            for c in code.problems if code is not None else []:
                rate = tally.get((c.exam_id, c.item_id)) or ProblemRate(
                    exam_id=c.exam_id, item_id=c.item_id, n=0, passed=0
                )
                tally[(c.exam_id, c.item_id)] = rate.model_copy(
                    update={
                        "n": rate.n + c.n,
                        "passed": rate.passed + c.passed,
                        "errors": rate.errors + c.errors,
                    }
                )
            coded = {(c.exam_id, c.item_id) for c in (code.problems if code is not None else [])}
            for g in folder.read_grades().values():
                key = (g.exam_id, g.item_id)
                if key in coded:
                    continue  # code items: their k samples' passes, from the run's own pass rates
                rate = tally.get(key) or ProblemRate(exam_id=g.exam_id, item_id=g.item_id, n=0, passed=0)
                if g.status in ("error", "ungraded", "grading_error"):
                    rate = rate.model_copy(update={"errors": rate.errors + 1})
                else:
                    full = g.points is not None and g.points >= g.max_points
                    rate = rate.model_copy(update={"n": rate.n + 1, "passed": rate.passed + full})
                tally[key] = rate
        problems = sorted(tally.values(), key=lambda r: (r.exam_id, r.item_id))
        accuracy: dict[str, float] = {}
        for exam_id in sorted({p.exam_id for p in problems}):
            rated = [p.pass_rate for p in problems if p.exam_id == exam_id and p.pass_rate is not None]
            if rated:
                accuracy[exam_id] = sum(rated) / len(rated)
        members.append(
            MemberPassRates(
                member=member.name,
                label=member.label,
                compute=member.compute,
                samples=cfg.samples,
                problems=problems,
                accuracy=accuracy,
            )
        )
    return FamilyPassRates(run_id=cfg.run_id, family=cfg.family, members=members)
