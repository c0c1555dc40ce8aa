"""From a run's graded items to its ``scores.json`` (:class:`RunScores`): per exam the raw,
scaled and percentile scores with intervals, item counts, provisional notes, grader agreement and
the contamination rule (the clean subset's score when it is lower).

Grades come from :mod:`examharness.grading`; this module reads no file and calls no model.
Every view (report, compare, chart, HTML) reads the result; views never recompute.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from examharness.code.scores import SectionPassAtK, code_items, section_values
from examharness.contamfile import ContaminationReport, clean_item_ids
from examharness.exam import Exam, LoadedExam
from examharness.records import (
    Agreement,
    ContaminationScore,
    EditionUsed,
    ExamScore,
    GradedItem,
    ItemCounts,
    Reported,
    RunConfig,
    RunScores,
    SectionScore,
    SubScore,
    now,
)
from examharness.rubric import agreement
from examharness.scales import Scale, exam_scale
from examharness.scoring import SectionItems, score_exam

if TYPE_CHECKING:
    from examharness.memo import ResultMemo


def select_edition(scale: Scale | None, exam: Exam, edition: int | None
                   ) -> tuple[Scale | None, str | None]:
    """The scale edition to score ``exam`` with: ``edition`` if given, else the exam's
    ``scoring.edition``, else the newest (see :meth:`Scale.select`)."""
    if scale is None:
        return None, None
    return scale.select(edition if edition is not None else exam.scoring.edition)


def _section_items(exam: Exam, graded: dict[str, GradedItem], keep: set[str] | None) -> list[SectionItems]:
    out = []
    for section in exam.sections:
        items = [i for i in section.items if keep is None or i.id in keep]
        if not items:
            continue
        out.append(SectionItems(
            section_id=section.id, weight=section.weight,
            points=[graded[i.id].points or 0.0 for i in items],
            max_points=[i.max_points for i in items],
        ))  # fmt: skip
    return out


def _contamination(
    exam: Exam, scale: Scale | None, graded: dict[str, GradedItem], report: ContaminationReport,
    full_key: float, seed: int,
) -> ContaminationScore | None:  # fmt: skip
    clean_ids = clean_item_ids(report, exam.id) & set(graded)
    all_ids = [item.id for _, item in exam.items() if item.id in graded]
    dirty = [i for i in all_ids if i not in clean_ids]
    if not any(r.exam_id == exam.id for r in report.exams):
        return None
    sections = _section_items(exam, graded, clean_ids)
    clean = None
    reported = "full"
    if sections and dirty:
        core = score_exam(scale, sections, n_boot=0, seed=seed)
        clean = SubScore(
            raw=core.raw, max_raw=core.max_raw, scaled=core.scaled, percentile=core.percentile,
            n_items=len(clean_ids & set(all_ids)),
        )  # fmt: skip
        clean_key = core.scaled if core.scaled is not None else core.accuracy
        reported = "clean" if clean_key < full_key else "full"
    share = len(dirty) / len(all_ids) if all_ids else 0.0
    return ContaminationScore(contaminated=dirty, share=share, clean=clean, reported=reported)


def _section_scores(exam: Exam, graded: dict[str, GradedItem]) -> list[SectionScore]:
    out = []
    for s in exam.sections:
        mine = [graded[i.id] for i in s.items if i.id in graded]
        if mine:
            raw = sum(g.points or 0.0 for g in mine)
            max_raw = sum(g.max_points for g in mine)
            items = ItemCounts.of(mine)
            out.append(SectionScore(id=s.id, weight=s.weight, raw=raw, max_raw=max_raw, items=items))
    return out


def _read_pairs(graded: list[GradedItem]) -> list[tuple[float, float]]:
    pairs = []
    for g in graded:
        if len(g.reads) >= 2:
            first, second = g.reads[0], g.reads[1]
            if first is not None and second is not None:
                pairs.append((first, second))
    return pairs


def score_graded(
    cfg: RunConfig, exams: dict[str, LoadedExam], graded: list[GradedItem],
    contamination: ContaminationReport | None,
    *, scale_dirs: Sequence[Path] = (), n_boot: int = 1000, seed: int = 0,
    edition: int | None = None, memo: ResultMemo | None = None,
) -> RunScores:  # fmt: skip
    """Score every exam of a run. ``edition`` (the command line's) overrides each exam's
    ``scoring.edition``; with neither, each scale's newest edition is used (:meth:`Scale.select`)."""
    scores = []
    by_exam: dict[str, dict[str, GradedItem]] = {}
    for g in graded:
        by_exam.setdefault(g.exam_id, {})[g.item_id] = g
    for ref in cfg.exams:
        loaded = exams[ref.id]
        exam = loaded.exam
        mine = by_exam.get(ref.id, {})
        base = exam_scale(loaded.path, exam.scoring.scale, scale_dirs)
        year = edition if edition is not None else exam.scoring.edition
        scale, edition_note = base.select(year) if base is not None else (None, None)
        sections = _section_items(exam, mine, set(mine))
        core = (memo.exam_score(scale, sections, n_boot=n_boot, seed=seed) if memo is not None
                else score_exam(scale, sections, n_boot=n_boot, seed=seed))  # fmt: skip
        c = ItemCounts.of(mine.values())
        provisional = []
        if c.error:
            provisional.append(f"{c.error} error item(s) scored 0: run --resume RUN --retry-errors")
        if n := c.needs_grade:
            provisional.append(
                f"{n} free-response item(s) without a grade scored 0: grade them with --grader-model, "
                "or by hand with `examharness grade export`"
            )
        if ref.n_items < len(exam.items()):
            provisional.append(
                f"only the first {ref.n_items} of {len(exam.items())} items were run (--limit)"
            )
        if loaded.content_hash != ref.content_hash:
            provisional.append("the exam file changed since the run (content hash differs)")
        pairs = _read_pairs(list(mine.values()))
        agree = None
        if pairs:
            a = agreement(pairs, 0.5)
            agree = Agreement(n=a.n, exact=a.exact, adjacent=a.adjacent)
        full_key = core.scaled if core.scaled is not None else core.accuracy
        scores.append(ExamScore(
            exam=exam.id, title=exam.title, language=exam.language,
            published_label=exam.published_label, raw=core.raw, max_raw=core.max_raw,
            accuracy=core.accuracy, scale=core.scale_id, scaled=core.scaled,
            edition=EditionUsed(year=scale.edition, label=scale.edition_label, source=scale.source)
            if scale is not None else None,
            composite=core.composite, percentile=core.percentile, ci=core.ci, items=c,
            sections=_section_scores(exam, mine),
            approximation="; ".join(n for n in (edition_note, core.approximation) if n) or None,
            provisional=provisional,
            contamination=_contamination(exam, scale, mine, contamination, full_key, seed)
            if contamination else None,
            agreement=agree, content_hash=ref.content_hash,
            pass_at_k=_pass_at_k(exam, list(mine.values()), n_boot, seed),
        ))  # fmt: skip
    return RunScores(
        run_id=cfg.run_id, model=cfg.model, scored_at=now(), exams=[_with_reported(e) for e in scores]
    )


def _pass_at_k(exam: Exam, graded: list[GradedItem], n_boot: int, seed: int) -> list[SectionPassAtK] | None:
    sections = [s.id for s in exam.sections]
    return section_values(code_items(graded), sections, n_boot=n_boot, seed=seed) or None


def _with_reported(e: ExamScore) -> ExamScore:
    c = e.contamination
    if c is not None and c.reported == "clean" and c.clean is not None:
        clean = c.clean
        rep = Reported(
            basis="clean",
            raw=clean.raw,
            max_raw=clean.max_raw,
            scaled=clean.scaled,
            percentile=clean.percentile,
        )
    else:
        rep = e.headline()
    return e.model_copy(update={"reported": rep})
