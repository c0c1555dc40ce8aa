"""``examharness validate``: everything that can be checked about exam files without a model.

For each exam file: it loads (schema, ids, passages, images), its scale exists and loads, each
section's template exists, and every item (every shape of item, past 5,000 items) renders both
text-only and with images, so a missing template variable or a broken image shows up here as
``FILE:LINE: field: message`` instead of halfway through a paid run. The CLI exits 0 when
:func:`validate_paths` returns nothing, else 1.
"""

from __future__ import annotations

from pathlib import Path

from examharness.errors import InputError, Problem
from examharness.exam import Item, LoadedExam, Section, find_exam_files, load_exam
from examharness.gcpause import collector_paused
from examharness.prompts import Renderer, template_dirs
from examharness.scales import exam_scale, is_scale_path, load_scale, scale_dirs_for
from examharness.yamlpos import load_yaml_with_lines, yaml_with_lines


def _line(path: Path, where: tuple[str | int, ...]) -> int | None:
    """Line of a field, for problems found after loading (load_exam keeps no locator)."""
    try:
        return load_yaml_with_lines(path)[1](where)
    except InputError:
        return None


def scale_problems(loaded: LoadedExam, scale_dirs: list[Path]) -> list[Problem]:
    """The scale named in ``scoring.scale`` must exist and load."""
    name = loaded.exam.scoring.scale
    if name is None or not isinstance(name, str):
        return []
    try:
        exam_scale(loaded.path, name, scale_dirs)
    except InputError as err:
        # A scale that is not found is the exam's problem; one that is broken is the scale file's.
        return [p if p.line is not None else _at_scale(loaded, p.message) for p in err.problems]
    return []


def _at_scale(loaded: LoadedExam, message: str) -> Problem:
    line = _line(loaded.path, ("scoring", "scale"))
    return Problem(str(loaded.path), line, "scoring.scale", message)


def template_problems(loaded: LoadedExam, user_prompts: Path | None) -> list[Problem]:
    """Each section's template must be found on the search path the run will use."""
    dirs = template_dirs(loaded.path, user_prompts)
    problems = []
    for i, section in enumerate(loaded.exam.sections):
        name = section.template_name
        if not any((d / f"{name}.j2").is_file() for d in dirs):
            where = ("sections", i, "template")
            searched = ", ".join(str(d) for d in dirs)
            message = f"template {name!r} not found (searched {searched})"
            line = _line(loaded.path, where)
            problems.append(Problem(str(loaded.path), line, f"sections.{i}.template", message))
    return problems


RENDER_ALL_UP_TO = 5_000
"""Exams up to this many items have every item rendered; larger ones one item per shape."""


def _shape(item: Item) -> tuple[object, ...]:
    """What a template can branch on without reading the text: type, which fields are set,
    how many options and images. (A model's ``__dict__`` holds its fields, in field order.)"""
    values = item.__dict__
    fields = tuple(name for name, value in values.items() if value is not None)
    return (item.type, fields, len(values.get("options", ())), len(item.images))


def items_to_render(loaded: LoadedExam) -> list[tuple[Section, int]]:
    """Every item of an exam of up to :data:`RENDER_ALL_UP_TO` items; for a larger one the first
    item of each shape in each section, so validating 250,000 items takes seconds, not minutes
    (the run renders every item anyway, before any request is sent)."""
    every = sum(len(section.items) for section in loaded.exam.sections) <= RENDER_ALL_UP_TO
    chosen: list[tuple[Section, int]] = []
    for section in loaded.exam.sections:
        seen: set[tuple[object, ...]] = set()
        for index, item in enumerate(section.items):
            shape = _shape(item)
            if every or shape not in seen:
                seen.add(shape)
                chosen.append((section, index))
    return chosen


def render_problems(loaded: LoadedExam, renderers: list[Renderer]) -> list[Problem]:
    """Render items (see :func:`items_to_render`) with every renderer; one problem per distinct
    template error."""
    seen: dict[str, Problem] = {}
    chosen = items_to_render(loaded)
    for renderer in renderers:
        for section, index in chosen:
            try:
                renderer.render(loaded, section, index)
            except InputError as err:
                for problem in err.problems:
                    seen.setdefault(str(problem), problem)
            except OSError as err:
                item = section.items[index]
                message = f"item {item.id!r}: cannot read image: {err}"
                problem = Problem(str(loaded.path), None, "images", message)
                seen.setdefault(str(problem), problem)
    return list(seen.values())


def _named_scale_problems(path: Path, scale_dirs: list[Path]) -> list[Problem]:
    """For a file that did not validate: is the scale it names by name (not path) there at all?
    (A file without the word ``scale`` names none, and is not parsed a second time.)"""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError):
        return []
    if "scale" not in text:
        return []
    try:
        with collector_paused(len(text)):
            data, locate = yaml_with_lines(text, str(path))
    except InputError:
        return []
    scoring = data.get("scoring") if isinstance(data, dict) else None
    name = scoring.get("scale") if isinstance(scoring, dict) else None
    if not isinstance(name, str) or is_scale_path(name):
        return []
    dirs = scale_dirs_for(path, scale_dirs)
    if any((d / f"{name}.yaml").is_file() for d in dirs):
        return []
    where = ", ".join(str(d) for d in dirs)
    message = f"no scale named {name!r} in {where}"
    return [Problem(str(path), locate(("scoring", "scale")), "scoring.scale", message)]


_SCALE_KEY = "raw_to_scaled:"
_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
"""Where :meth:`str.splitlines` ends a line."""


def _is_scale_file(path: Path) -> bool:
    """Scale files sit in a ``scales/`` folder or carry a top-level ``raw_to_scaled:``; exams never
    do. A look at the text, not a parse: the file is parsed once, by whichever loader it needs."""
    if path.parent.name == "scales":
        return True
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    at = text.find(_SCALE_KEY)
    while at != -1:
        if at == 0 or text[at - 1] in _LINE_BREAKS:
            return True
        at = text.find(_SCALE_KEY, at + 1)
    return False


def _scale_file_problems(path: Path) -> list[Problem]:
    try:
        load_scale(path, [])
    except InputError as err:
        return err.problems
    return []


def validate_paths(
    paths: list[Path], *, user_prompts: Path | None, scale_dirs: list[Path]
) -> list[Problem]:
    """Every problem in the exam files under ``paths`` (folders are searched for ``*.yaml``)."""
    problems: list[Problem] = []
    missing = [p for p in paths if not p.exists()]
    problems += [Problem(str(p), None, "", "no such file or folder") for p in missing]
    files: list[Path] = []
    for path in (p for p in paths if p.exists()):
        found = find_exam_files([path])
        if not found:
            problems.append(Problem(str(path), None, "", "no exam files (*.yaml) found"))
        files += found
    for path in (p for p in paths if p.is_dir()):
        files += sorted(f for f in path.rglob("scales/*.y*ml") if f.suffix in (".yaml", ".yml"))
    renderers = [Renderer(vision=v, user_dir=user_prompts) for v in (False, True)]
    for file in files:
        if _is_scale_file(file):
            problems += _scale_file_problems(file)
            continue
        try:
            loaded = load_exam(file)
        except InputError as err:
            problems += err.problems + _named_scale_problems(file, scale_dirs)
            continue
        problems += scale_problems(loaded, scale_dirs)
        missing_templates = template_problems(loaded, user_prompts)
        problems += missing_templates
        if not missing_templates:
            problems += render_problems(loaded, renderers)
    return problems
