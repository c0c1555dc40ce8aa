"""Published exam results (e.g. the GPT-4 Technical Report's Table 1) as data files.

A published-results file keeps the report's own cell strings (``score``, ``percentile``) next to
the numbers derived from them (``percentile_low``, ``percentile_high``), so the chart can put a
user's run beside the published bars and anyone can check the derivation against the report.
Files ship in ``examharness/data/published/<id>.json``; any other path can be loaded too.

Matching a run's exam to a published row (:func:`exam_key`, :func:`find_exam`): a name is reduced
to its lower-case letters and digits (``&`` read as ``and``), so ``"sat-math"``, ``"SAT Math"``
and ``"sat_math"`` all become ``"satmath"``. A name matches a row when its key equals the key of
the row label, the short (Figure 4) label, or one of the row's aliases.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from examharness.errors import InputError, Problem

_ORDINAL = r"(\d+(?:\.\d+)?)(?:st|nd|rd|th)"
_PERCENTILE_FORMS: tuple[tuple[re.Pattern[str], Literal["about", "range", "below"]], ...] = (
    (re.compile(rf"~{_ORDINAL}"), "about"),
    (re.compile(rf"{_ORDINAL}\s*-\s*{_ORDINAL}"), "range"),
    (re.compile(rf"below {_ORDINAL}"), "below"),
)


def parse_percentile(text: str | None) -> tuple[float | None, float | None]:
    """Read a printed percentile string as ``(low, high)``.

    ``"~90th"`` -> ``(90, 90)``; ``"86th - 100th"`` -> ``(86, 100)``; ``"below 5th"`` ->
    ``(None, 5)`` (the report does not say which lower bound it plots for it); ``None`` ->
    ``(None, None)``. Anything else raises ``ValueError``: a new form needs a deliberate rule.
    """
    if text is None:
        return None, None
    for pattern, form in _PERCENTILE_FORMS:
        m = pattern.fullmatch(text.strip())
        if m is None:
            continue
        if form == "about":
            return float(m[1]), float(m[1])
        if form == "range":
            return float(m[1]), float(m[2])
        return None, float(m[1])
    raise ValueError(
        f"unrecognised percentile {text!r} (expected '~Nth', 'Nth - Mth' or 'below Nth')"
    )


class PublishedScore(BaseModel):
    """One Table cell: the printed strings and the percentile bounds derived from them."""

    model_config = ConfigDict(extra="forbid")

    score: str
    """The report's score string, e.g. ``"298 / 400"``."""
    percentile: str | None = None
    """The report's percentile string without parentheses, e.g. ``"~90th"``; None if not printed."""
    percentile_low: float | None = None
    """DERIVED lower end of the percentile range (what Figure 4 plots); None if unknown."""
    percentile_high: float | None = None
    """DERIVED upper end of the percentile range."""

    @model_validator(mode="after")
    def _bounds_match_string(self) -> PublishedScore:
        """Hand-edited bounds must agree with the printed string they claim to come from."""
        low, high = parse_percentile(self.percentile)
        if (low, high) != (self.percentile_low, self.percentile_high):
            raise ValueError(
                f"percentile {self.percentile!r} gives low={low}, high={high}; "
                f"file has low={self.percentile_low}, high={self.percentile_high}"
            )
        return self


class PublishedExam(BaseModel):
    """One row of the published table."""

    model_config = ConfigDict(extra="forbid")

    exam: str
    """Row label as printed in the table."""
    short_label: str | None = None
    """Label as printed on the figure's x axis; None = the row is not plotted."""
    aliases: list[str] = Field(default_factory=list)
    """Other names a run may use for this exam (examharness additions, not from the report)."""
    footnote: str | None = None
    scores: dict[str, PublishedScore]
    """Run label -> cell."""

    @property
    def label(self) -> str:
        """The name used on charts: the figure's short label, else the row label."""
        return self.short_label or self.exam


class PublishedRun(BaseModel):
    """One column of the table (a model / setting)."""

    model_config = ConfigDict(extra="forbid")

    label: str
    """Column header as printed in the table, e.g. ``"GPT-4 (no vision)"``."""
    figure_legend: str | None = None
    """Legend text as printed on the figure, e.g. ``"gpt3.5"``."""
    color: str | None = None
    """Bar colour for charts (a matplotlib colour); None = chart default."""


class PublishedFigure(BaseModel):
    """How the source drew its chart: title, ordering series, caption."""

    model_config = ConfigDict(extra="forbid")

    title: str
    baseline: str
    """Run label whose values order the exams."""
    caption: str | None = None


class PublishedResults(BaseModel):
    """A published results table, with its citation."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    id: str
    title: str
    source: str
    table_caption: str | None = None
    notes: list[str] = Field(default_factory=list)
    figure: PublishedFigure | None = None
    runs: list[PublishedRun]
    exams: list[PublishedExam]

    @model_validator(mode="after")
    def _cells_match_runs(self) -> PublishedResults:
        """Every row has exactly one cell per declared run, so no bar silently goes missing."""
        labels = [r.label for r in self.runs]
        if len(set(labels)) != len(labels):
            raise ValueError(f"duplicate run labels: {labels}")
        for row in self.exams:
            if sorted(row.scores) != sorted(labels):
                raise ValueError(
                    f"exam {row.exam!r} has cells {sorted(row.scores)}, runs are {labels}"
                )
        if self.figure is not None and self.figure.baseline not in labels:
            raise ValueError(f"figure.baseline {self.figure.baseline!r} is not a run label")
        return self

    def plotted_exams(self) -> list[PublishedExam]:
        """Rows the source plots: those with a short (figure) label, in table order."""
        return [row for row in self.exams if row.short_label is not None]


def exam_key(name: str) -> str:
    """Matching key: lower-case letters and digits only, ``&`` read as ``and``."""
    return re.sub(r"[^0-9a-z]", "", name.casefold().replace("&", "and"))


def find_exam(pub: PublishedResults, name: str) -> PublishedExam | None:
    """The row whose label, short label or alias has the same :func:`exam_key` as ``name``."""
    key = exam_key(name)
    for row in pub.exams:
        names = [row.exam, *([row.short_label] if row.short_label else []), *row.aliases]
        if key in {exam_key(n) for n in names}:
            return row
    return None


def _data_dir() -> Traversable:
    return resources.files("examharness").joinpath("data", "published")


def list_published() -> list[str]:
    """Names of the published-results files shipped with examharness (file stems, sorted)."""
    folder = _data_dir()
    return sorted(
        p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")
    )


def load_published(name_or_path: str | Path) -> PublishedResults:
    """Load a shipped file by name (``"gpt-4-technical-report"``) or any file by path.

    A string is taken as a path when it ends in ``.json`` or names an existing file. Bad files
    raise :class:`InputError` naming the file and the field.
    """
    as_path = Path(name_or_path)
    if isinstance(name_or_path, Path) or as_path.suffix == ".json" or as_path.is_file():
        where = str(as_path)
        try:
            text = as_path.read_text(encoding="utf-8")
        except OSError as err:
            raise InputError.one(where, None, "", f"cannot read: {err.strerror}") from err
    else:
        resource = _data_dir().joinpath(f"{name_or_path}.json")
        if not resource.is_file():
            known = ", ".join(list_published()) or "(none)"
            raise InputError.one(
                str(name_or_path), None, "", f"no published results of that name; known: {known}"
            )
        where = f"examharness/data/published/{name_or_path}.json"
        text = resource.read_text(encoding="utf-8")
    return _parse(text, where)


def _parse(text: str, where: str) -> PublishedResults:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError.one(where, err.lineno, "", f"invalid JSON: {err.msg}") from err
    try:
        return PublishedResults.model_validate(raw)
    except ValidationError as err:
        raise InputError(
            [
                Problem(where, None, ".".join(str(p) for p in e["loc"]), e["msg"])
                for e in err.errors()
            ]
        ) from err
