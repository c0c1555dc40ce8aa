"""Scale files: how an exam's raw points become its official score, and that score a percentile.

A scale lives in ``exams/scales/<id>.yaml`` and opens with a comment citing where its numbers
come from. It has two halves, each a pydantic discriminated union on ``kind``:

* ``raw_to_scaled``: ``table`` (a form's conversion chart), ``section_tables`` (one chart per
  section, summed and multiplied, as SAT EBRW), ``linear`` (a formula on accuracy, as the GPT-4
  report's GRE rule), ``composite_cuts`` (AP: weighted section composite, then cut scores) or
  ``mean_points`` (essay scores averaged, as GRE Analytical Writing).
* ``percentile`` (optional): ``table`` (score -> percent, "below" or "at_or_below") or
  ``distribution`` (percent of takers earning each score, as AP).

This module only describes and validates; the arithmetic is in :mod:`examharness.scoring`.
Validation errors point at the offending row, e.g. ``sat_math.yaml:31: raw_to_scaled.rows.17:
table is not monotonic at raw 17``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from examharness.builtin import scales_dir
from examharness.errors import InputError
from examharness.yamlpos import PathError, load_model

RawRange = tuple[int, int]
ConversionRow = tuple[int | RawRange, float]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SectionTable(Strict):
    """A raw -> scaled chart for one form. ``rows`` are ``[raw, scaled]`` or ``[[lo, hi], scaled]``
    (a printed range, inclusive); together they must cover every raw score 0..form_max_raw once."""

    form_max_raw: int = Field(ge=1)
    rows: list[ConversionRow] = Field(min_length=1)
    _by_raw: dict[int, float] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check_rows(self) -> SectionTable:
        by_raw: dict[int, float] = {}
        row_of: dict[int, int] = {}
        for index, (raw, scaled) in enumerate(self.rows):
            lo, hi = raw if isinstance(raw, tuple) else (raw, raw)
            if lo > hi or lo < 0 or hi > self.form_max_raw:
                raise PathError(("rows", index), f"raw {lo}-{hi} is outside 0..{self.form_max_raw}")
            for r in range(lo, hi + 1):
                if r in by_raw:
                    raise PathError(("rows", index), f"raw {r} is listed twice")
                by_raw[r] = scaled
                row_of[r] = index
        missing = [r for r in range(self.form_max_raw + 1) if r not in by_raw]
        if missing:
            raise PathError(("rows",), f"raw {missing[0]} has no row (every raw 0..max needs one)")
        for r in range(1, self.form_max_raw + 1):
            if by_raw[r] < by_raw[r - 1]:
                raise PathError(("rows", row_of[r]), f"table is not monotonic at raw {r}")
        self._by_raw = by_raw
        return self

    def lookup(self, raw: int) -> float:
        """The scaled score for an integer raw score on this form."""
        return self._by_raw[raw]


class TableConversion(SectionTable):
    kind: Literal["table"]


class SectionTablesConversion(Strict):
    """Per-section charts whose scaled scores are summed and multiplied by ``factor``.

    SAT EBRW: (Reading test score + Writing and Language test score) x 10.
    """

    kind: Literal["section_tables"]
    sections: dict[str, SectionTable] = Field(min_length=1)
    factor: float = 1.0


class LinearConversion(Strict):
    """scaled = intercept + slope x accuracy, rounded half up to ``round_to``, kept in min..max."""

    kind: Literal["linear"]
    intercept: float
    slope: float
    round_to: float = Field(gt=0)
    min: float
    max: float

    @model_validator(mode="after")
    def _check_range(self) -> LinearConversion:
        if self.min > self.max:
            raise PathError(("min",), f"min {self.min} is above max {self.max}")
        return self


class Cut(Strict):
    """One AP score's threshold: ``min_composite`` (inclusive, as official worksheets print
    whole-number ranges) or ``above`` (exclusive, as the calculator source codes
    ``composite > x``)."""

    score: int
    min_composite: float | None = None
    above: float | None = None

    @model_validator(mode="after")
    def _one_threshold(self) -> Cut:
        if (self.min_composite is None) == (self.above is None):
            raise ValueError("give exactly one of min_composite or above")
        return self

    @property
    def threshold(self) -> float:
        return self.min_composite if self.min_composite is not None else float(self.above or 0)


class CompositeCutsConversion(Strict):
    """AP-style: composite = sum of multiplier x (section points on the form's scale - offset);
    the score is the highest cut the composite reaches (the lowest score if it reaches none).

    An exam section whose maximum differs from ``form_section_max`` is put on the form's scale by
    accuracy; scoring records that as an approximation.
    """

    kind: Literal["composite_cuts"]
    section_multipliers: dict[str, float] = Field(min_length=1)
    form_section_max: dict[str, float]
    section_offsets: dict[str, float] = Field(default_factory=dict)
    cuts: list[Cut] = Field(min_length=2)

    @model_validator(mode="after")
    def _check(self) -> CompositeCutsConversion:
        if set(self.form_section_max) != set(self.section_multipliers):
            raise PathError(("form_section_max",),
                            "must name the same sections as section_multipliers")
        if any(v <= 0 for v in self.form_section_max.values()):
            raise PathError(("form_section_max",), "section maxima must be positive")
        if not set(self.section_offsets) <= set(self.section_multipliers):
            raise PathError(("section_offsets",), "names a section not in section_multipliers")
        scores = [c.score for c in self.cuts]
        if len(set(scores)) != len(scores):
            raise PathError(("cuts",), "each score may have only one cut")
        ordered = sorted(enumerate(self.cuts), key=lambda ic: ic[1].score)
        for (_, prev), (index, cut) in itertools.pairwise(ordered):
            if cut.threshold < prev.threshold:
                raise PathError(("cuts", index),
                                f"cut for score {cut.score} is below the cut for {prev.score}")
        return self


class MeanPointsConversion(Strict):
    """scaled = mean essay score, rounded (half up) to ``round_to``.

    Computed as accuracy x ``item_max``, which equals the mean when every essay is scored on
    0..item_max (GRE Analytical Writing: 0-6, half points).
    """

    kind: Literal["mean_points"]
    item_max: float = Field(gt=0)
    round_to: float = Field(gt=0)


RawToScaled = Annotated[
    TableConversion | SectionTablesConversion | LinearConversion | CompositeCutsConversion
    | MeanPointsConversion,
    Field(discriminator="kind"),
]


class PercentileTable(Strict):
    """Score -> percent of takers. ``below``: percent scoring strictly lower (ETS, LSAC);
    ``at_or_below``: percent scoring at or lower (College Board). ``null`` = not reported."""

    kind: Literal["table"]
    convention: Literal["below", "at_or_below"]
    source: str = Field(min_length=1)
    rows: list[tuple[float, float | None]] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> PercentileTable:
        seen: set[float] = set()
        for index, (score, pct) in enumerate(self.rows):
            if score in seen:
                raise PathError(("rows", index), f"score {score:g} is listed twice")
            seen.add(score)
            if pct is not None and not 0 <= pct <= 100:
                raise PathError(("rows", index), f"percent {pct:g} is outside 0..100")
        listed = sorted((s, p, i) for i, (s, p) in enumerate(self.rows) if p is not None)
        for (_, p0, _), (s1, p1, i1) in itertools.pairwise(listed):
            if p1 < p0:
                raise PathError(("rows", i1), f"percent falls as score rises at score {s1:g}")
        return self

    def reported(self) -> list[tuple[float, float]]:
        """The rows with a reported percent, lowest score first."""
        return sorted((s, p) for s, p in self.rows if p is not None)


class Distribution(Strict):
    """Percent of takers earning each score in one administration (AP: scores 1-5)."""

    label: str
    year: int | str
    source: str = Field(min_length=1)
    shares: list[tuple[float, float]] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Distribution:
        total = sum(p for _, p in self.shares)
        if abs(total - 100) > 1.0:
            raise PathError(("shares",), f"shares add up to {total:g}, not 100")
        if len({s for s, _ in self.shares}) != len(self.shares):
            raise PathError(("shares",), "a score is listed twice")
        return self


class PercentileDistribution(Strict):
    """One or more distributions; ``min_max`` reports the lowest low and the highest high across
    them (the GPT-4 report's rule for the two AMC 2021 contests)."""

    kind: Literal["distribution"]
    distributions: list[Distribution] = Field(min_length=1)
    combine: Literal["min_max"] = "min_max"


Percentile = Annotated[PercentileTable | PercentileDistribution, Field(discriminator="kind")]


class ScaleEdition(Strict):
    """Another edition of a scale: the tables of another test or table year.

    A field left out is the scale's own (top-level) one, so an edition that only brings a newer
    percentile table keeps the scale's conversion.
    """

    edition: int = Field(ge=1900, le=2100, description="test year or table year")
    label: str = Field(min_length=1, description="what this edition's tables are, in a phrase")
    source: str = Field(min_length=1, description="citation for this edition's numbers")
    notes: str | None = None
    raw_to_scaled: RawToScaled | None = None
    percentile: Percentile | None = None


class Scale(Strict):
    """One exam's official scoring: raw -> scaled, and (when published) scaled -> percentile.

    The top-level tables are one edition (``edition``, ``edition_label``); ``editions`` lists
    others. :meth:`select` picks one and returns it as a plain scale without ``editions``.
    """

    id: str = Field(min_length=1)
    title: str
    source: str = Field(min_length=1, description="citation for the numbers in this file")
    notes: str | None = None
    edition: int | None = Field(default=None, ge=1900, le=2100,
                                description="test year or table year of the top-level tables")
    edition_label: str | None = None
    raw_to_scaled: RawToScaled
    percentile: Percentile | None = None
    editions: list[ScaleEdition] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_editions(self) -> Scale:
        if self.editions and self.edition is None:
            raise PathError(("editions",), "a scale with other editions must name its own "
                                          "(top-level edition: YEAR)")
        seen = {self.edition}
        for index, ed in enumerate(self.editions):
            if ed.edition in seen:
                raise PathError(("editions", index, "edition"), f"edition {ed.edition} is listed twice")
            seen.add(ed.edition)
        return self

    def edition_years(self) -> list[int]:
        """Every edition's year, newest first."""
        years = [ed.edition for ed in self.editions]
        return sorted([*years, *([self.edition] if self.edition is not None else [])], reverse=True)

    def select(self, year: int | None = None) -> tuple[Scale, str | None]:
        """The edition to score with, as a plain scale, and a note when it is not the one asked.

        ``None`` picks the newest edition. A year picks that edition, else the newest one older
        than it (the tables current in that year), else the oldest one (noted: no edition is
        that old).
        """
        years = self.edition_years()
        if not years or (year is None and years[0] == self.edition):
            return self.model_copy(update={"editions": []}), None
        older = [y for y in years if year is None or y <= year]
        chosen = older[0] if older else years[-1]
        note = None
        if year is not None and chosen != year:
            note = (f"scale {self.id} has no edition {year} (editions: "
                    f"{', '.join(map(str, years))}); used {chosen}")
        if chosen == self.edition:
            return self.model_copy(update={"editions": []}), note
        ed = next(e for e in self.editions if e.edition == chosen)
        inherited = ed.raw_to_scaled is None or ed.percentile is None
        return self.model_copy(update={
            "edition": ed.edition, "edition_label": ed.label,
            "source": f"{ed.source}; otherwise: {self.source}" if inherited else ed.source,
            "notes": ed.notes if ed.notes is not None else self.notes,
            "raw_to_scaled": ed.raw_to_scaled or self.raw_to_scaled,
            "percentile": ed.percentile if ed.percentile is not None else self.percentile,
            "editions": [],
        }), note


REPO_SCALES = scales_dir()
"""The built-in scales (the project's ``exams/scales``)."""


def is_scale_path(name: str) -> bool:
    """The one name-or-path rule: ``scoring.scale`` is a path when it looks like a file, else a name."""
    return name.endswith((".yaml", ".yml")) or "/" in name or "\\" in name


def scale_dirs_for(exam_path: Path, extra: Sequence[Path] = ()) -> list[Path]:
    """Where a scale name is looked up, in order: given folders, ``scales/`` beside the exam or one
    up, the built-in scales."""
    dirs = [*extra, exam_path.parent / "scales", exam_path.parent.parent / "scales", REPO_SCALES]
    out: list[Path] = []
    for d in dirs:
        if d.resolve() not in {o.resolve() for o in out}:
            out.append(d)
    return out


def exam_scale(exam_path: Path, scale: str | Scale | None, extra_dirs: Sequence[Path] = ()) -> Scale | None:
    """The scale an exam file names (a path is relative to the exam file), inlines, or None."""
    if scale is None or isinstance(scale, Scale):
        return scale
    if is_scale_path(scale):
        return load_scale(exam_path.parent / scale, [])
    return load_scale(scale, scale_dirs_for(exam_path, extra_dirs))


def load_scale(name_or_path: str | Path, search_dirs: list[Path]) -> Scale:
    """Load a scale by name (``<dir>/<name>.yaml``, first dir that has it) or by path.

    Raises :class:`InputError` (``FILE:LINE: field: message``) for anything wrong, including a
    file whose ``id`` differs from its file name.
    """
    text = str(name_or_path)
    if is_scale_path(text):
        path = Path(text)
    else:
        candidates = [d / f"{text}.yaml" for d in search_dirs]
        found = [c for c in candidates if c.is_file()]
        if not found:
            where = ", ".join(str(d) for d in search_dirs) or "(no directories)"
            raise InputError.one(text, None, "scale", f"no scale named {text!r} in {where}")
        path = found[0]
    scale, locate = load_model(path, Scale, "a scale file")
    if scale.id != path.stem:
        raise InputError.one(path, locate(("id",)), "id",
                             f"{scale.id!r} differs from the file name {path.stem!r}")
    return scale


def list_scales(directory: Path) -> list[str]:
    """Names of the scale files in ``directory`` (``*.yaml`` stems), sorted."""
    return sorted(p.stem for p in directory.glob("*.yaml")) if directory.is_dir() else []
