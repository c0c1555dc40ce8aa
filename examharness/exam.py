"""Exam files: typed pydantic models and a safe loader with ``FILE:LINE: field: message`` errors.

An exam file is YAML read with ``yaml.safe_load`` semantics only (no tags, no code). The models
are the format's documentation: every field below is what a user may write, nothing else
(``extra="forbid"``), so a typo is an error with its line, never silently ignored.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from examharness.errors import InputError, Problem
from examharness.gcpause import collector_paused
from examharness.scales import Scale
from examharness.yamlpos import Locator, PathError, validation_problems, yaml_with_lines

SectionKind = Literal["multiple_choice", "free_response", "essay", "code"]
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MATHLIKE = re.compile(r"[0-9\\+\-*/^=(),\[\]{}<>]")


MAX_TOKENS = 1_000_000
"""Above any model's reply limit; a larger budget is a typo (and overflows some servers)."""
MAX_POINTS = 1e6
"""Bound on weights and points, so sums and scaled scores stay finite."""


class Strict(BaseModel):
    """Unknown fields are errors; ``.inf`` and ``.nan`` are not numbers an exam can use."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def letters_for(options: list[str]) -> str:
    """Option letters by position: four options are ``ABCD``."""
    return LETTERS[: len(options)]


class Passage(Strict):
    """A shared stimulus (reading passage, table, case) that several items point to by id."""

    text: str
    title: str | None = None
    images: list[str] = Field(default_factory=list)


class Sampling(Strict):
    """Generation settings for a section; unset fields fall back to the report's defaults."""

    mode: Literal["letter_if_needed", "two_stage", "single"] | None = None
    """Multiple choice only (GPT-4 report, A.2). ``two_stage``: an explanation at ``temperature``,
    then always a second request for the letter at temperature 0 given that explanation.
    ``letter_if_needed`` (default): the letter is read from the explanation, as the report did for
    most exams, and the second request is sent only when the explanation was cut off at
    ``max_tokens``, states no answer, or only a loose extraction rule found one (see
    :mod:`examharness.extract`). ``single``: one request, the answer read from it."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0, le=MAX_TOKENS)
    answer_temperature: float | None = Field(default=None, ge=0, le=2)
    samples: int | None = Field(default=None, ge=1, le=1000)
    """Code sections: programs sampled per item (pass@k needs k <= samples); default 1."""


class RubricScale(Strict):
    """Points an essay can earn, e.g. 0-6 in half points (GRE Analytical Writing)."""

    min: float = Field(default=0, ge=-MAX_POINTS, le=MAX_POINTS)
    max: float = Field(default=6, ge=-MAX_POINTS, le=MAX_POINTS)
    step: float = Field(default=0.5, gt=0, le=MAX_POINTS)

    @model_validator(mode="after")
    def _ordered(self) -> RubricScale:
        if self.max <= self.min:
            raise ValueError("max must be greater than min")
        return self


class _ChoiceBase(Strict):
    id: str
    question: str
    options: list[str] = Field(min_length=2, max_length=26)
    passage: str | None = None
    images: list[str] = Field(default_factory=list)
    explanation: str | None = None

    @property
    def max_points(self) -> float:
        return 1.0

    def _check_letter(self, letter: str, where: tuple[str | int, ...]) -> None:
        if len(letter) != 1 or letter not in LETTERS[: len(self.options)]:
            valid = letters_for(self.options)
            raise PathError(where, f"answer {letter!r} is not one of the options {', '.join(valid)}")


class MCItem(_ChoiceBase):
    """Single-answer multiple choice; ``answer`` is the option letter (A = first option)."""

    type: Literal["mc"] = "mc"
    answer: str

    @model_validator(mode="after")
    def _answer_is_option(self) -> MCItem:
        self._check_letter(self.answer, ("answer",))
        return self


class MultiSelectItem(_ChoiceBase):
    """Multiple choice where the answer is a set of letters; all must be chosen, nothing more."""

    type: Literal["multi_select"] = "multi_select"
    answer: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _answers_are_options(self) -> MultiSelectItem:
        for i, letter in enumerate(self.answer):
            self._check_letter(letter, ("answer", i))
        return self


class NumericItem(Strict):
    """Grid-in / short numeric answer: correct when it equals an accepted value within tolerance."""

    type: Literal["numeric"] = "numeric"
    id: str
    question: str
    answer: list[str | float] = Field(min_length=1)
    """Accepted values: numbers, or text a reply's number is read as ("3/4", ".75", "1,250")."""
    tolerance: float = Field(default=0.0, ge=0)
    passage: str | None = None
    images: list[str] = Field(default_factory=list)

    @property
    def max_points(self) -> float:
        return 1.0

    @model_validator(mode="after")
    def _answers_are_numbers(self) -> NumericItem:
        """A text answer is a number as written, or a short math answer compared as text (an
        interval, ``\\frac{\\sqrt{3}}{3}``, ``p+q-r``); a bare word such as ``four`` or ``B`` is a
        number written in words or a choice letter in the wrong item type, so it is refused."""
        from examharness.extract.numeric import is_number

        for i, value in enumerate(self.answer):
            if isinstance(value, str) and not is_number(value) and not _MATHLIKE.search(value):
                message = f"answer {value!r} is neither a number nor a math expression (write digits)"
                raise PathError(("answer", i), message)
        return self


class FreeResponseItem(Strict):
    """A free-response question graded on its rubric (by a grader model or a human)."""

    type: Literal["free_response"] = "free_response"
    id: str
    prompt: str
    rubric: str
    max_points: float = Field(gt=0, le=MAX_POINTS)
    reference: str | None = None
    passage: str | None = None
    images: list[str] = Field(default_factory=list)


class EssayItem(Strict):
    """An essay scored holistically on ``scale`` (two reads plus adjudication, as official scoring)."""

    type: Literal["essay"] = "essay"
    id: str
    prompt: str
    rubric: str
    scale: RubricScale = RubricScale()
    passage: str | None = None
    images: list[str] = Field(default_factory=list)

    @property
    def max_points(self) -> float:
        return self.scale.max


class CodeItem(Strict):
    """A programming problem graded by running the model's program against hidden tests.

    The model sees ``prompt`` (a signature and docstring, or a problem statement); the program
    that runs is ``preamble`` (code put before every reply's code; for HumanEval the prompt
    itself) followed by the code extracted from the reply. ``tests`` is Python defining
    ``check(candidate)``, called with the function named ``entry_point`` (HumanEval's format).
    Tests are never shown to the model.
    """

    type: Literal["code"] = "code"
    id: str
    prompt: str
    language: Literal["python"] = "python"
    entry_point: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    preamble: str = ""
    tests: str
    time_limit_s: float = Field(default=10.0, gt=0, le=600)
    """CPU seconds per program (wall-clock limit: twice this, plus start-up)."""
    memory_mb: int = Field(default=512, ge=64, le=16384)
    """Address space per program."""
    difficulty: str | None = None
    """e.g. easy / medium / hard for Leetcode-style problems (kept as a fact; sections group them)."""
    passage: str | None = None
    images: list[str] = Field(default_factory=list)

    @property
    def max_points(self) -> float:
        return 1.0


Item = Annotated[
    MCItem | MultiSelectItem | NumericItem | FreeResponseItem | EssayItem | CodeItem,
    Field(discriminator="type"),
]


class MCExemplar(Strict):
    """A worked multiple-choice example with its gold explanation (the report's few-shot format)."""

    question: str
    options: list[str] = Field(min_length=2, max_length=26)
    answer: str
    explanation: str
    passage: str | None = None


class ResponseExemplar(Strict):
    """A worked free-response or essay example: the task and a high-scoring response."""

    prompt: str
    response: str
    score: str | None = None


ALLOWED_ITEMS: dict[SectionKind, tuple[str, ...]] = {
    "multiple_choice": ("mc", "multi_select", "numeric"),
    "free_response": ("free_response", "numeric"),
    "essay": ("essay",),
    "code": ("code",),
}
DEFAULT_TEMPLATES: dict[SectionKind, str] = {
    "multiple_choice": "mc_fewshot",
    "free_response": "free_response",
    "essay": "essay",
    "code": "code",
}


class Section(Strict):
    id: str
    title: str | None = None
    kind: SectionKind
    weight: float = Field(default=1.0, ge=0, le=MAX_POINTS)
    template: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
    """Name of a ``prompts/*.j2`` file (without ``.j2``); defaults by kind."""
    instruction: str | None = None
    max_tokens: int | None = Field(default=None, gt=0, le=MAX_TOKENS)
    """Token budget per reply for this section (``sampling.max_tokens`` and the CLI override it)."""
    time_minutes: float | None = Field(default=None, gt=0, le=MAX_POINTS)
    """The human time limit, kept as a fact about the exam; models are not timed."""
    sampling: Sampling | None = None
    exemplars: list[MCExemplar | ResponseExemplar] = []
    items: list[Item] = Field(min_length=1)

    @property
    def template_name(self) -> str:
        return self.template or DEFAULT_TEMPLATES[self.kind]

    @property
    def max_points(self) -> float:
        return sum(item.max_points for item in self.items)

    @model_validator(mode="after")
    def _items_fit_kind(self) -> Section:
        allowed = ALLOWED_ITEMS[self.kind]
        for i, item in enumerate(self.items):
            if item.type not in allowed:
                raise PathError(
                    ("items", i, "type"),
                    f"item {item.id!r} of type {item.type!r} cannot be in a {self.kind} section",
                )
        for k, ex in enumerate(self.exemplars):
            valid = letters_for(ex.options) if isinstance(ex, MCExemplar) else ""
            if isinstance(ex, MCExemplar) and (len(ex.answer) != 1 or ex.answer not in valid):
                message = f"exemplar answer {ex.answer!r} is not one of its options {', '.join(valid)}"
                raise PathError(("exemplars", k, "answer"), message)
        return self


def _scale_kind(value: object) -> str:
    return "inline" if isinstance(value, dict | Scale) else "name"


ScaleRef = Annotated[
    Annotated[str, Tag("name")] | Annotated[Scale, Tag("inline")],
    Discriminator(_scale_kind),
]


class ExamScoring(Strict):
    """How section raw scores combine and which scale turns them into a scaled score."""

    scale: ScaleRef | None = None
    """A scale name from ``exams/scales/``, a path relative to the exam file, or a scale written
    inline (same fields as a scale file; see ``examharness/scales.py``)."""
    edition: int | None = Field(default=None, ge=1900, le=2100)
    """Which edition (test or table year) of the scale to use; default the newest. The command
    line's ``--edition`` overrides it."""

    @property
    def scale_name(self) -> str | None:
        return self.scale.id if isinstance(self.scale, Scale) else self.scale


class TranslationInfo(Strict):
    """Where a translated exam came from (written by ``examharness translate``)."""

    source_exam: str
    source_hash: str
    """SHA-256 of the source exam file's bytes."""
    translator: str
    """The model that translated it."""
    language: str
    """BCP-47 tag of the translation."""
    date: str
    dropped: list[str] = []
    """Items of the source left out because their translation broke a rule."""


class Exam(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    title: str
    edition: str | None = None
    source: str
    license: str
    language: str = "en"
    description: str | None = None
    version: int = Field(default=1, ge=0, le=10**9)
    published_label: str | None = None
    """The published result this exam stands for, e.g. ``SAT Math`` (a row or Figure 4 label of
    ``examharness/data/published/*.json``): charts put the exam in that row's slot, whatever its
    title. None: matched by id and title."""
    passages: dict[str, Passage] = {}
    sections: list[Section] = Field(min_length=1)
    scoring: ExamScoring = ExamScoring()
    translation: TranslationInfo | None = None

    def items(self) -> list[tuple[Section, Item]]:
        return [(section, item) for section in self.sections for item in section.items]

    @property
    def max_points(self) -> float:
        return sum(s.max_points for s in self.sections)


class LoadedExam(BaseModel):
    """An exam together with where it came from (needed for images and content hashes)."""

    model_config = ConfigDict(frozen=True)
    exam: Exam
    path: Path
    content_hash: str


Where = tuple[str | int, ...]


def _dicts(value: object) -> list[tuple[int, dict[str, Any]]]:
    return [(i, v) for i, v in enumerate(value) if isinstance(v, dict)] if isinstance(value, list) else []


def _cross_checks(data: dict[str, Any], root: Path) -> list[tuple[Where, str]]:
    """Checks across the whole file: unique ids, passage references, image paths.

    They read the plain YAML data, not the validated model, so a file with a wrong field
    elsewhere still gets these reported in the same pass (one line per problem).
    """
    errors: list[tuple[Where, str]] = []
    raw_passages = data.get("passages")
    passages: dict[str, Any] = raw_passages if isinstance(raw_passages, dict) else {}
    seen_sections: set[str] = set()
    seen_items: set[str] = set()
    for si, section in _dicts(data.get("sections")):
        section_id = section.get("id")
        if isinstance(section_id, str):  # other types are the model's type errors
            if section_id in seen_sections:
                errors.append((("sections", si, "id"), f"duplicate section id {section_id!r}"))
            seen_sections.add(section_id)
        for ii, item in _dicts(section.get("items")):
            item_id, ref, images = item.get("id"), item.get("passage"), item.get("images")
            if isinstance(item_id, str):
                if item_id in seen_items:
                    errors.append((("sections", si, "items", ii, "id"), f"duplicate item id {item_id!r}"))
                seen_items.add(item_id)
            if isinstance(ref, str) and ref not in passages:
                errors.append((("sections", si, "items", ii, "passage"), f"unknown passage {ref!r}"))
            if images:  # an empty list, or a wrong type (the model's error), has no image to check
                errors.extend(_image_checks(root, images, ("sections", si, "items", ii)))
    for pid, passage in passages.items():
        if isinstance(passage, dict):
            errors.extend(_image_checks(root, passage.get("images"), ("passages", pid)))
    return errors


def _image_checks(root: Path, images: object, where: Where) -> list[tuple[Where, str]]:
    out: list[tuple[Where, str]] = []
    for k, image in enumerate(images if isinstance(images, list) else []):
        problem = _image_problem(root, image) if isinstance(image, str) else None
        if problem:
            out.append(((*where, "images", k), problem))
    return out


def _image_problem(root: Path, image: str) -> str | None:
    if "\x00" in image:
        return f"image path {image!r} contains a NUL byte"
    candidate = (root / image).resolve()
    if Path(image).is_absolute() or not candidate.is_relative_to(root.resolve()):
        return f"image path {image!r} escapes the exam's folder"
    if not candidate.is_file():
        return f"image file {image!r} not found"
    return None


def load_exam(path: str | Path, *, parse_cache: Path | None = None) -> LoadedExam:
    """Read and validate one exam file; raise :class:`InputError` listing every problem found.

    With ``parse_cache`` (a folder), the validated exam is kept as JSON keyed by the file's
    SHA-256 and the examharness version, so a rerun skips YAML parsing (most of the start-up of
    a 2,000-item run); a file whose bytes changed is parsed again.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError.one(path, None, "(file)", f"cannot read file: {err}") from None
    digest = hashlib.sha256(raw).hexdigest()
    cached = _from_parse_cache(parse_cache, digest, path)
    if cached is not None:
        return cached
    try:  # as Path.read_text reads it: universal newlines
        text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as err:
        raise InputError.one(path, None, "", f"cannot read file: {err}") from None
    del raw  # not needed past here: a large exam's bytes need not stay while it is built
    with collector_paused(len(text)):
        exam = _validated(path, text)
    if parse_cache is not None:
        _to_parse_cache(parse_cache, digest, exam)
    return LoadedExam(exam=exam, path=path, content_hash=digest)


def _validated(path: Path, text: str) -> Exam:
    """The exam in ``text`` (read from ``path``), or every problem in it. A quick parse whose data
    does not validate is parsed again carefully if it went past a bound the careful parser names."""
    data, locate = yaml_with_lines(text, str(path))
    try:
        return _checked(path, data, locate)
    except InputError:
        from examharness.safeyaml import beyond_bounds

        if not beyond_bounds(data):
            raise
    return _checked(path, *yaml_with_lines(text, str(path), quick=False))


def _checked(path: Path, data: Any, locate: Locator) -> Exam:
    if not isinstance(data, dict):
        raise InputError.one(path, 1, "(file)", "an exam file must be a YAML mapping")
    checks = _cross_checks(data, path.parent)
    locate.expect(where for where, _ in checks)  # one reading of the lines for every problem
    problems: list[Problem] = []
    try:
        exam = Exam.model_validate(data)
    except ValidationError as err:
        problems = validation_problems(err, str(path), locate)
    problems += [
        Problem(str(path), locate(where), ".".join(map(str, where)), message) for where, message in checks
    ]
    if problems:
        raise InputError(sorted(problems, key=lambda p: p.line or 0))
    return exam


def _cache_file(folder: Path, digest: str) -> Path:
    from examharness import __version__

    return folder / f"{digest[:32]}-{__version__}.json"


def _from_parse_cache(folder: Path | None, digest: str, path: Path) -> LoadedExam | None:
    if folder is None or not _cache_file(folder, digest).is_file():
        return None
    try:
        exam = Exam.model_validate_json(_cache_file(folder, digest).read_bytes())
    except (OSError, ValidationError):
        return None
    if _missing_images(exam, path.parent):
        return None  # parse again to report it with its line
    return LoadedExam(exam=exam, path=path, content_hash=digest)


def _missing_images(exam: Exam, root: Path) -> bool:
    """Whether an image an exam names is gone: of the cross checks, the only one whose answer
    can change while the file's bytes (the parse cache's key) stay the same."""
    images = [image for passage in exam.passages.values() for image in passage.images]
    images += [image for _, item in exam.items() for image in item.images]
    return any(_image_problem(root, image) for image in images)


def _to_parse_cache(folder: Path, digest: str, exam: Exam) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target = _cache_file(folder, digest)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(exam.model_dump_json(), encoding="utf-8")
        tmp.replace(target)
    except OSError:
        pass  # a cache that cannot be written only costs time


def find_exam_files(paths: list[Path]) -> list[Path]:
    """Expand folders to their ``*.yaml``/``*.yml`` exam files (not ``scales/``), sorted."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found.extend(
                f
                for f in sorted(p.rglob("*.y*ml"))
                if f.suffix in (".yaml", ".yml") and "scales" not in f.relative_to(p).parts
            )
        else:
            found.append(p)
    return found
