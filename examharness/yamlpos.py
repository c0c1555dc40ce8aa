"""Safe YAML loading that remembers where each value came from, so errors can say ``FILE:LINE``.

Every file a user writes (exams, scales) is read through :func:`load_yaml_with_lines`: it parses
once with :func:`~examharness.safeyaml.parse_yaml` (safe tags only, bounded aliases and
nesting, no duplicate keys) and returns a :class:`Locator` that maps a field path such as
``("sections", 2, "items", 0, "answer")`` to the 1-based line of that value.
:func:`validation_problems` turns a pydantic ``ValidationError`` into
:class:`~examharness.errors.Problem` rows with those lines; validators that know *which element*
is wrong (row 17 of a table, not the table) raise :class:`PathError` to point deeper.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from examharness.errors import InputError, Problem

if TYPE_CHECKING:  # the YAML parsers are imported when a file is first parsed: an exam served from
    # the parse cache (a run, a rerun, a score) never loads them
    from examharness.linetree import LineNode

M = TypeVar("M", bound=BaseModel)
PathPart = str | int
FieldPath = tuple[PathPart, ...]


class PathError(ValueError):
    """A validator error about an element below the validated value.

    ``where`` is the path relative to the field being validated; :func:`validation_problems`
    appends it to pydantic's location so the reported line is the offending element's.
    """

    def __init__(self, where: Sequence[PathPart], message: str) -> None:
        super().__init__(message)
        self.where: FieldPath = tuple(where)
        self.message = message


class Locator:
    """Maps a field path to the line of the deepest YAML node that path reaches.

    Path parts that do not name a child (pydantic's discriminator tags and union-branch
    names) are skipped, so a raw pydantic ``loc`` can be passed as is. The lines are read on
    the first lookup only, so a valid file never pays for them, and then only for the children
    the paths can reach (:func:`~examharness.linetree.line_tree`): a caller with several paths
    names them all first with :meth:`expect`, for one pass over the text. A file reaching here
    has passed :func:`parse_yaml`'s bounds, so that pass is linear.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._paths: set[FieldPath] = set()
        self._read_for: set[FieldPath] | None = None
        self._root: LineNode | None = None

    def expect(self, paths: Iterable[Sequence[PathPart]]) -> None:
        """Name paths that will be looked up, so that one reading of the text serves them all."""
        self._paths.update(tuple(path) for path in paths)

    def _tree(self, path: Sequence[PathPart]) -> LineNode | None:
        self._paths.add(tuple(path))
        if self._read_for is None or not self._paths <= self._read_for:
            self._read_for = set(self._paths)
            from examharness.linetree import line_tree
            from examharness.safeyaml import Loader

            self._root = line_tree(self._text, Loader, self._read_for)
        return self._root

    def __call__(self, path: Sequence[PathPart]) -> int | None:
        return self.resolve(path)[0]

    def resolve(
        self, path: Sequence[PathPart], *, keep_missing_last: bool = True
    ) -> tuple[int | None, FieldPath]:
        """Return (line of the deepest node reached, the path without skipped parts).

        An unmatched last part is kept when ``keep_missing_last`` (it names a missing key,
        reported at its parent's line); unmatched inner parts are tags and are dropped.
        """
        from examharness.linetree import lookup

        return lookup(self._tree(path), path, keep_missing_last=keep_missing_last)


def load_yaml_with_lines(path: str | Path, *, quick: bool = True) -> tuple[Any, Locator]:
    """Parse ``path`` safely; return (plain data, locator).

    Raises :class:`InputError` for an unreadable file, broken YAML (one problem, at the line
    of the parser's mark), duplicate mapping keys, or anything :func:`parse_yaml` bounds.
    ``quick=False`` parses event by event (:func:`~examharness.safeyaml.careful_parse`): a caller
    whose data did not validate asks again that way, since a quick parse may have read past a
    bound (nesting, key shapes) whose own message is the one to give.
    """
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise InputError.one(file, None, "", f"cannot read file: {err}") from None
    return yaml_with_lines(text, file, quick=quick)


def yaml_with_lines(text: str, file: str, *, quick: bool = True) -> tuple[Any, Locator]:
    """:func:`load_yaml_with_lines` for a text already read."""
    from examharness.safeyaml import careful_parse, parse_yaml

    return (parse_yaml(text, file) if quick else careful_parse(text, file)), Locator(text)


def load_model(path: Path, model: type[M], what: str) -> tuple[M, Locator]:
    """Load a YAML mapping into ``model``; every problem is an :class:`InputError` with lines."""
    data, locate = load_yaml_with_lines(path)
    try:
        return _validated_model(path, data, locate, model, what)
    except InputError:
        from examharness.safeyaml import beyond_bounds

        if not beyond_bounds(data):
            raise
    return _validated_model(path, *load_yaml_with_lines(path, quick=False), model, what)  # names the bound


def _validated_model(path: Path, data: Any, locate: Locator, model: type[M], what: str) -> tuple[M, Locator]:
    if not isinstance(data, dict):
        raise InputError.one(path, 1, "(file)", f"{what} must be a YAML mapping")
    try:
        return model.model_validate(data), locate
    except ValidationError as err:
        raise InputError(validation_problems(err, str(path), locate)) from None


def _message(error: Any) -> tuple[FieldPath, str]:
    """pydantic's message, minus its ``Value error, `` prefix, plus any :class:`PathError` depth."""
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, PathError):
        return cause.where, cause.message
    if isinstance(cause, ValueError):
        return (), str(cause)
    return (), str(error["msg"])


def validation_problems(err: ValidationError, file: str, locate: Locator) -> list[Problem]:
    """One :class:`Problem` per wrong value, with the line of the value it is about.

    pydantic reports a value that fits no member of a union (``str | float``) once per member;
    those errors share the value's path once branch names are dropped, and become one line.
    """
    messages: dict[tuple[int | None, str], list[str]] = {}
    errors = [(error, *_message(error)) for error in err.errors()]
    locate.expect(tuple(error["loc"]) + extra for error, extra, _ in errors)
    for error, extra, message in errors:
        loc: FieldPath = tuple(error["loc"]) + extra
        line, kept = locate.resolve(loc, keep_missing_last=error["type"] == "missing")
        found = messages.setdefault((line, ".".join(str(p) for p in kept)), [])
        if message not in found:
            found.append(message)
    return [Problem(file, line, field, "; or ".join(found)) for (line, field), found in messages.items()]
