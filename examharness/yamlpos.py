"""Safe YAML loading that remembers where each value came from, so errors can say ``FILE:LINE``.

Every file a user writes (exams, scales) is read through :func:`load_yaml_with_lines`: it parses
once with ``yaml.SafeLoader`` (no arbitrary objects), keeps the node tree, and returns a
:class:`Locator` that maps a field path such as ``("sections", 2, "items", 0, "answer")`` to the
1-based line of that value. :func:`validation_problems` turns a pydantic ``ValidationError`` into
:class:`~examharness.errors.Problem` rows with those lines; validators that know *which element*
is wrong (row 17 of a table, not the table) raise :class:`PathError` to point deeper.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from examharness.errors import InputError, Problem

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
    names) are skipped, so a raw pydantic ``loc`` can be passed as is.
    """

    def __init__(self, root: yaml.Node | None) -> None:
        self._root = root

    def __call__(self, path: Sequence[PathPart]) -> int | None:
        return self.resolve(path)[0]

    def resolve(
        self, path: Sequence[PathPart], *, keep_missing_last: bool = True
    ) -> tuple[int | None, FieldPath]:
        """Return (line of the deepest node reached, the path without skipped parts).

        An unmatched last part is kept when ``keep_missing_last`` (it names a missing key,
        reported at its parent's line); unmatched inner parts are tags and are dropped.
        """
        node = self._root
        if node is None:
            return None, tuple(path)
        line = node.start_mark.line + 1
        kept: list[PathPart] = []
        for i, part in enumerate(path):
            found = _child(node, part)
            if found is None:
                if keep_missing_last and i == len(path) - 1:
                    kept.append(part)
                continue
            line, node = found
            kept.append(part)
        return line, tuple(kept)


def _child(node: yaml.Node, part: PathPart) -> tuple[int, yaml.Node] | None:
    """The child named ``part`` and its line: a mapping value's line is its key's (where
    ``rows:`` is written), a list item's is its own."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return key.start_mark.line + 1, value
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(
        node.value
    ):
        item = node.value[part]
        return item.start_mark.line + 1, item
    return None


def _duplicate_keys(node: yaml.Node | None, file: str) -> list[Problem]:
    """PyYAML silently keeps the last of two equal keys; a hand-written file rarely means that."""
    problems: list[Problem] = []
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        problems.append(Problem(
                            file, key.start_mark.line + 1, str(key.value), "duplicate key"
                        ))
                    seen.add(key.value)
                stack.append(value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    return sorted(problems, key=lambda p: p.line or 0)


def load_yaml_with_lines(path: str | Path) -> tuple[Any, Locator]:
    """Parse ``path`` safely; return (plain data, locator).

    Raises :class:`InputError` for an unreadable file, broken YAML (one problem, at the line
    of the parser's mark) or duplicate mapping keys.
    """
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError.one(file, None, "", f"cannot read file: {err}") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        message = " ".join(str(x) for x in (err.context, err.problem) if x) or "invalid YAML"
        raise InputError.one(file, line, "", f"invalid YAML: {message}") from None
    except yaml.YAMLError as err:
        raise InputError.one(file, None, "", f"invalid YAML: {err}") from None
    finally:
        loader.dispose()
    duplicates = _duplicate_keys(node, file)
    if duplicates:
        raise InputError(duplicates)
    return data, Locator(node)


def load_model(path: Path, model: type[M], what: str) -> tuple[M, Locator]:
    """Load a YAML mapping into ``model``; every problem is an :class:`InputError` with lines."""
    data, locate = load_yaml_with_lines(path)
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
    """One :class:`Problem` per pydantic error, with the line of the value it is about."""
    problems: list[Problem] = []
    for error in err.errors():
        extra, message = _message(error)
        loc: FieldPath = tuple(error["loc"]) + extra
        line, kept = locate.resolve(loc, keep_missing_last=error["type"] == "missing")
        problems.append(Problem(file, line, ".".join(str(p) for p in kept), message))
    return problems
