"""The lines of a YAML text's nodes, kept for the paths a problem is about.

:class:`~examharness.yamlpos.Locator` needs, for a field path such as ``("sections", 0, "items",
7001, "answer")``, the line of each node the path passes through. PyYAML's ``compose`` gives
that, but it builds a node with two marks for every value and resolves every scalar's tag: for
a 40 MB exam with one wrong answer letter, over a gigabyte and tens of seconds. :func:`line_tree`
reads the parser's events once and keeps only what a lookup can reach:

- a mapping keeps, for each scalar key, the line of its first occurrence and the value;
  a sequence keeps its length and, per index, the item's line and the item;
- when the wanted path parts are known, a child is kept only if its key (as written) or its
  index is one of them, since a lookup only ever steps to a child named by a part; everything
  else is read past without being stored;
- an anchored node is kept whole, and an alias is the anchored node itself, as in ``compose``
  (an alias key stands for the anchored scalar, with that scalar's line).

The result answers every lookup as the composed tree would: same child, same line. A text
``compose`` refuses (several documents, an undefined or repeated anchor, a parser error) has no
tree (``None``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import yaml

PathPart = str | int


class LineNode:
    """One node: its line, and its kept children (by key as written, or by index) with the line
    a lookup reports for each (a mapping value's key's line, a list item's own)."""

    __slots__ = ("children", "closed", "count", "is_map", "line")

    def __init__(self, line: int, is_map: bool | None) -> None:
        self.line = line
        self.is_map = is_map
        """True for a mapping, False for a sequence, None for a scalar."""
        self.closed = is_map is None
        """Read to its end (a scalar always is)."""
        self.children: dict[Any, tuple[int, LineNode]] = {}
        self.count = 0
        """A sequence's length."""

    def child(self, part: PathPart) -> tuple[int, LineNode] | None:
        """What ``compose``'s tree gives for ``part``: the first value under a scalar key written
        as ``str(part)``, or the item at index ``part`` of a sequence."""
        if self.is_map:
            return self.children.get(str(part))
        if self.is_map is False and isinstance(part, int) and 0 <= part < self.count:
            return self.children.get(part)
        return None


class _Open:
    """A mapping or sequence being read: its node (None when not kept), whether all below is kept,
    and for a mapping the pending key (as written, None for a key that is not a scalar)."""

    __slots__ = ("keep_all", "key", "key_line", "node", "waiting_key")

    def __init__(self, node: LineNode | None, keep_all: bool) -> None:
        self.node = node
        self.keep_all = keep_all
        self.waiting_key = True
        self.key: str | None = None
        self.key_line = 0


def line_tree(
    text: str, loader: Any, wanted: Iterable[Sequence[PathPart]] | None = None
) -> LineNode | None:
    """The :class:`LineNode` tree of the single document in ``text`` (parsed with ``loader``, a
    PyYAML loader class), keeping only children named by parts of the ``wanted`` paths (all
    when None). With ``wanted``, reading stops once every wanted lookup is settled
    (:func:`settled`), checked every :data:`CHECK_EVERY` events or more: a problem near the top
    of a 40 MB file costs no more than reading to it."""
    paths = None if wanted is None else [tuple(path) for path in wanted]
    parser = loader(text)
    try:
        return _Reader(paths).read(parser)
    except (yaml.YAMLError, _Refused):
        return None
    finally:
        parser.dispose()


CHECK_EVERY = 50_000
"""Events between checks whether every wanted lookup is settled (or 20 per wanted path, if more)."""


def settled(root: LineNode | None, path: Sequence[PathPart]) -> bool:
    """Whether reading further could change the lookup of ``path``: it could if a part not found
    names a key or an index that a mapping or sequence still being read might yet bring (a
    key's first occurrence, an index within a length, are final once read)."""
    node = root
    if node is None:
        return False
    for part in path:
        found = node.child(part)
        if found is None:
            if not node.closed:
                return False
            continue
        node = found[1]
    return True


def lookup(
    root: LineNode | None, path: Sequence[PathPart], *, keep_missing_last: bool = True
) -> tuple[int | None, tuple[PathPart, ...]]:
    """(line of the deepest node ``path`` reaches from ``root``, the path without skipped parts).

    A part that names no child is skipped (pydantic's tags and union-branch names); an unmatched
    last part is kept when ``keep_missing_last`` (it names a missing key, reported at its
    parent's line). Without a tree, no line and the path as it is.
    """
    if root is None:
        return None, tuple(path)
    node, line = root, root.line
    kept: list[PathPart] = []
    for i, part in enumerate(path):
        found = node.child(part)
        if found is None:
            if keep_missing_last and i == len(path) - 1:
                kept.append(part)
            continue
        line, node = found
        kept.append(part)
    return line, tuple(kept)


class _Refused(Exception):
    """What ``compose`` would raise: the text has no single composable document."""


class _Reader:
    def __init__(self, paths: list[tuple[PathPart, ...]] | None) -> None:
        self.paths = paths
        parts = None if paths is None else {part for path in paths for part in path}
        self.names = None if parts is None else {str(p) for p in parts}
        self.indices = None if parts is None else {p for p in parts if isinstance(p, int)}
        self.stack: list[_Open] = []
        self.anchors: dict[str, LineNode | tuple[str, int]] = {}
        self.root: LineNode | None = None
        self.documents = 0

    def read(self, parser: Any) -> LineNode | None:
        handlers: dict[type, Callable[[Any], None]] = {
            yaml.DocumentStartEvent: self.document, yaml.ScalarEvent: self.value, yaml.AliasEvent: self.value,
            yaml.MappingStartEvent: self.open, yaml.SequenceStartEvent: self.open,
            yaml.MappingEndEvent: self.close, yaml.SequenceEndEvent: self.close,
        }  # fmt: skip
        every = None if self.paths is None else max(CHECK_EVERY, 20 * len(self.paths))
        count = 0
        while parser.check_event():
            event = parser.get_event()
            handler = handlers.get(type(event))
            if handler is not None:
                handler(event)
            count += 1
            if every is not None and count % every == 0 and self.done():
                break
        return self.root

    def done(self) -> bool:
        return self.paths is not None and all(settled(self.root, path) for path in self.paths)

    def document(self, event: Any) -> None:
        self.documents += 1
        if self.documents > 1:
            raise _Refused

    def close(self, event: Any) -> None:
        node = self.stack.pop().node
        if node is not None:
            node.closed = True

    def keeps(self, event: Any) -> bool:
        """Whether the node starting at ``event`` is kept: under a kept-whole parent, anchored,
        the document itself, or named by a wanted part."""
        if not self.stack or event.anchor is not None or self.names is None:
            return True
        top = self.stack[-1]
        if top.keep_all:
            return True
        if top.node is None:
            return False
        if top.node.is_map:
            return top.key is not None and top.key in self.names
        return self.indices is not None and top.node.count in self.indices

    def open(self, event: Any) -> None:
        is_map = isinstance(event, yaml.MappingStartEvent)
        top = self.stack[-1] if self.stack else None
        as_key = top is not None and top.node is not None and bool(top.node.is_map) and top.waiting_key
        kept = event.anchor is not None or (not as_key and self.keeps(event))
        node = LineNode(event.start_mark.line + 1, is_map) if kept else None
        if event.anchor is not None and node is not None:
            self.anchor(event.anchor, node)
        keep_all = self.names is None or event.anchor is not None or (top is not None and top.keep_all)
        self.place(node, None)  # in its parent from its start, for the settled checks
        self.stack.append(_Open(node, keep_all))

    def anchor(self, name: str, value: LineNode | tuple[str, int]) -> None:
        if name in self.anchors:
            raise _Refused  # compose refuses a repeated anchor
        self.anchors[name] = value

    def value(self, event: Any) -> None:
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            target = self.anchors.get(event.anchor or "")
            if target is None:
                raise _Refused  # an undefined alias
            self.place(target if isinstance(target, LineNode) else LineNode(target[1], None), target)
            return
        if event.anchor is not None:
            self.anchor(event.anchor, (event.value, line))
        self.place(LineNode(line, None) if self.keeps(event) else None, (event.value, line))

    def place(self, node: LineNode | None, scalar: LineNode | tuple[str, int] | None) -> None:
        """Put a node in its parent (a mapping or sequence as it starts): as a key (``scalar`` is
        its text and line when it is one), a mapping value, or a sequence item."""
        if not self.stack:
            self.root = node
            return
        top = self.stack[-1]
        parent = top.node
        if parent is not None and parent.is_map and top.waiting_key:
            top.waiting_key = False
            top.key, top.key_line = scalar if isinstance(scalar, tuple) else (None, 0)
            return
        if parent is not None and parent.is_map:
            top.waiting_key = True
            if top.key is not None and node is not None:
                parent.children.setdefault(top.key, (top.key_line, node))
            return
        if parent is not None:
            if node is not None:
                parent.children[parent.count] = (node.line, node)
            parent.count += 1
