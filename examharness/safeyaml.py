"""Untrusted YAML -> plain data in one bounded pass over the parser's events.

``yaml.safe_load`` cannot run code, but it can still be made to take unbounded time and memory:
a few hundred bytes of nested aliases (a "billion laughs" bomb) or merge keys (``<<``) expand
exponentially in anything that walks the result, a recursive alias builds a cyclic structure,
and it keeps the whole node tree (several hundred bytes per value) in memory. This builder reads
the events of libyaml's parser (PyYAML's C binding when present) and builds the data directly:

- the total number of values after alias and merge expansion is bounded (:data:`MAX_EXPANSION`,
  or a few times the number of values actually written, whichever is larger); a recursive alias
  is an error;
- nesting is bounded (:data:`MAX_DEPTH`); a mapping key must be a scalar, and a key written twice
  in one mapping is an error (PyYAML would silently keep the last);
- only the core tags (``!!str``, ``!!int``, ``!!float``, ``!!bool``, ``!!null``, ``!!map``,
  ``!!seq``) and ``!!timestamp`` as PyYAML resolves it are accepted; integers beyond 64 bits are
  rejected (no exam field needs one, and Python's ``int()`` refuses very long ones).

Scalars resolve exactly as ``yaml.safe_load`` resolves them. Every problem is a
:class:`~examharness.errors.Problem` with the line it was found on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import yaml
import yaml_rs
from yaml.nodes import ScalarNode

from examharness.errors import InputError, Problem

MAX_EXPANSION = 1_000_000
"""Values that aliases and merges may add beyond what is written (and at least 4x that)."""
MAX_DEPTH = 64
MAX_INT = 2**63
Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_CORE}{t}" for t in ("str", "int", "float", "bool", "null", "timestamp")}


class _Frame:
    """An open mapping or sequence: its value, where it started, and (mappings) the pending key."""

    __slots__ = ("anchor", "is_map", "key", "key_line", "line", "merges", "start", "value")

    def __init__(self, value: dict[Any, Any] | list[Any], line: int, anchor: str | None, start: int) -> None:
        self.value: Any = value
        self.is_map = isinstance(value, dict)
        self.line = line
        self.anchor = anchor
        self.start = start
        self.key: Any = _NO_KEY
        self.key_line = line
        self.merges: list[tuple[Any, int]] = []


_NO_KEY = object()
_MERGE = object()
_CACHED = 100_000
"""Plain scalars whose resolved value is remembered (keys and short values repeat a lot)."""


class _Builder:
    """Builds the document from events; see the module docstring for the bounds it enforces."""

    def __init__(self, file: str, loader: Any) -> None:
        self.file = file
        self.loader = loader
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.open_anchors: set[str] = set()
        self.written = 0
        self.expanded = 0
        self.problems: list[Problem] = []
        self.result: Any = None
        self.plain_cache: dict[str, Any] = {}

    def fail(self, line: int, message: str) -> InputError:
        return InputError.one(self.file, line, "", message)

    def on_scalar(self, event: Any) -> None:
        self.written += 1
        self.expanded += 1
        tag = event.tag
        if tag is None and event.implicit[0]:
            value = self.plain_cache.get(event.value, _NO_KEY)
            if value is _NO_KEY:
                value = self.resolve(event)
        elif tag is None or tag == "!":
            value = event.value
        else:
            value = self.construct(tag, event)
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, 1)
        self.add(value, event)

    def resolve(self, event: Any) -> Any:
        text: str = event.value
        tag = self.loader.resolve(ScalarNode, text, (True, False))
        if tag == f"{_CORE}merge":
            return _MERGE
        value = text if tag == f"{_CORE}str" else self.construct(tag, event)
        if len(self.plain_cache) < _CACHED and len(text) < 64:
            self.plain_cache[text] = value
        return value

    def construct(self, tag: str, event: Any) -> Any:
        """A scalar with a resolved or explicit tag other than a plain string."""
        value: str = event.value
        line = event.start_mark.line + 1
        if tag not in _SCALAR_TAGS:
            raise self.fail(line, f"invalid YAML: tag {tag!r} is not allowed (plain data only)")
        if tag == f"{_CORE}str":
            return value
        if tag == f"{_CORE}int" and len(value.lstrip("+-0_")) > 19:
            raise self.fail(line, f"integer {value[:24]}... is out of range (at most 18 digits)")
        node = ScalarNode(tag, value, event.start_mark, event.end_mark)
        try:
            result = self.loader.yaml_constructors[tag](self.loader, node)
        except (ValueError, yaml.YAMLError):
            raise self.fail(line, f"{value[:40]!r} is not a valid {tag[len(_CORE):]}") from None
        if isinstance(result, int) and not isinstance(result, bool) and abs(result) >= MAX_INT:
            raise self.fail(line, f"integer {value[:40]} is out of range (at most 18 digits)")
        return result

    def count(self, n: int, line: int) -> None:
        self.expanded += n
        if self.expanded > max(MAX_EXPANSION, 4 * self.written) + self.written:
            message = f"YAML aliases expand to more than {MAX_EXPANSION:,} values (an alias bomb?)"
            raise self.fail(line, message)

    def add(self, value: Any, event: Any) -> None:
        """Place a finished value into the open container (or make it the document)."""
        if not self.stack:
            self.result = value
            return
        frame = self.stack[-1]
        if not frame.is_map:
            if value is _MERGE:
                value = "<<"
            frame.value.append(value)
            return
        if frame.key is _NO_KEY:
            if isinstance(value, dict | list):
                message = "a mapping key must be a plain value, not a mapping or list"
                raise self.fail(event.start_mark.line + 1, message)
            frame.key, frame.key_line = value, event.start_mark.line + 1
            return
        key, frame.key = frame.key, _NO_KEY
        if value is _MERGE:
            value = "<<"
        if key is _MERGE:
            frame.merges.append((value, frame.key_line))
        elif key in frame.value:
            self.problems.append(Problem(self.file, frame.key_line, str(key), "duplicate key"))
        else:
            frame.value[key] = value

    def on_open(self, event: Any) -> None:
        self.written += 1
        self.expanded += 1
        line = event.start_mark.line + 1
        is_map = isinstance(event, yaml.MappingStartEvent)
        if len(self.stack) >= MAX_DEPTH:
            raise self.fail(line, f"YAML nested more than {MAX_DEPTH} levels deep")
        if event.tag not in (None, "!", f"{_CORE}map" if is_map else f"{_CORE}seq"):
            raise self.fail(line, f"invalid YAML: tag {event.tag!r} is not allowed (plain data only)")
        if event.anchor is not None:
            self.open_anchors.add(event.anchor)
        value: dict[Any, Any] | list[Any] = {} if is_map else []
        self.stack.append(_Frame(value, line, event.anchor, self.expanded))

    def on_close(self, event: Any) -> None:
        frame = self.stack.pop()
        if frame.merges:
            self.merge(frame)
        if frame.anchor is not None:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = (frame.value, self.expanded - frame.start + 1)
        self.add(frame.value, event)

    def merge(self, frame: _Frame) -> None:
        """``<<: *base`` or ``<<: [*a, *b]``: keys not written in the mapping itself, earlier
        sources first (YAML merge-key semantics, as PyYAML applies them)."""
        target = frame.value
        assert isinstance(target, dict)
        for source, line in frame.merges:
            for one in source if isinstance(source, list) else [source]:
                if not isinstance(one, dict):
                    raise self.fail(line, "a merge key (<<) needs a mapping or a list of mappings")
                self.count(len(one), line)
                for key, value in one.items():
                    target.setdefault(key, value)

    def on_alias(self, event: Any) -> None:
        line = event.start_mark.line + 1
        name = event.anchor
        if name in self.open_anchors:
            raise self.fail(line, f"recursive YAML alias *{name}")
        if name not in self.anchors:
            raise self.fail(line, f"unknown YAML alias *{name}")
        value, size = self.anchors[name]
        self.count(size, line)
        self.add(value, event)

    def on_document(self, event: Any) -> None:
        if self.result is not None or self.written:
            raise self.fail(event.start_mark.line + 1, "expected one YAML document, found more")

    def ignore(self, event: Any) -> None:
        pass


def _reader_line(text: str, err: yaml.reader.ReaderError) -> int | None:
    """libyaml reports a byte offset into the UTF-8 text, the pure-Python reader a character one."""
    if not isinstance(err.position, int):
        return None
    if Loader is yaml.SafeLoader:
        return text.count("\n", 0, err.position) + 1
    return text.encode("utf-8")[: err.position].count(b"\n") + 1


def _reader_message(err: yaml.reader.ReaderError) -> str:
    char = err.character
    code = ord(char) if isinstance(char, str | bytes) and len(char) == 1 else char
    return f"unacceptable character #x{code:04x}: {err.reason}" if isinstance(code, int) else err.reason


def _one_line(text: str) -> str:
    return " ".join(text.split())


_AFTER = r"[-:?\[{,\n][ \t]*+"
"""Where a plain scalar may start: after a mapping value's or a sequence entry's indicator and
its blanks, after a flow indicator, at a line's start (the text is searched with a newline in
front). The pattern opens with one character class, so the search skips to those characters at C
speed, and the blanks are taken possessively (what follows is never a blank). ``- - 012``
needs no special case: the second ``-`` is a start of its own."""
_ENDS = r"(?=[ \t\r]*(?:\n|\Z|#|[,\]}]|:(?:[ \t\r\n]|\Z)))"
"""Where it ends, when it is a single word (a key, a value, a flow item)."""
_NUMBERS_READ_APART = r"(?=[-+]?0[0-9a-zA-Z_]|[-+]?[0-9]{19}|[0-9]{4}-|[-+.0-9]*+[_:eE])"
"""A quick guard before the number branches below: each of them has a leading zero followed by a
digit or letter, 19 digits, a year, or an ``_``, ``:``, ``e`` or ``E`` right after its first run
of ``[-+.0-9]``. A plain ``5.0`` fails it after four steps."""


def _read_apart(after: str, ends: str) -> re.Pattern[str]:
    """Plain scalars YAML 1.1 (PyYAML) and YAML 1.2 (yaml-rs) read apart, starting where ``after``
    says a plain scalar may start and, for single words, ending where ``ends`` says."""
    return re.compile(
        # the first character rules out nearly every scalar at once; a "-", ":" or "?" indicator
        # needs a blank after it (the blanks taken, the character before is the indicator only
        # without one)
        after + r"(?=[-+.0-9<=yYnNoO])(?<![-:?])(?:"
        r"(?:yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|<<|=)" + ends  # YAML 1.1 words, merge, value
        + r"|" + _NUMBERS_READ_APART + r"(?:"
        + r"[-+]?0[0-9a-zA-Z_]+" + ends  # 012 (octal in 1.1), 0o12 (octal in 1.2), 0b1, 0x_1
        + r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?" + ends  # 1:30 (base 60 in 1.1)
        + r"|[-+]?(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?[eE][-+]?[0-9_]+" + ends  # 1e3 (a float only in 1.2)
        + r"|[-+.0-9]*_[-+.0-9_]*" + ends  # 1_000 (digit groups)
        + r"|[-+]?[0-9]{19,}" + ends  # beyond 64 bits
        + r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"  # a timestamp (1.1), whatever follows
        + r"))"
    )


_READ_APART = _read_apart(_AFTER, _ENDS)
"""Anywhere, flow collections included: a text holding any of them takes the event-by-event path."""
def _may_hold_flow(lines: str) -> bool:
    """Whether a flow collection (``[a, b]``, ``{a: 1}``) could start somewhere in ``lines`` (the
    text after a newline): a ``[`` or ``{`` at a line's start or after an indicator and blanks (one
    anywhere else is text). A text without one is in block context throughout."""
    for bracket in "[{":  # str.find skips to each at memchr speed, several times a regex's
        at = lines.find(bracket)
        while at != -1:
            before = at - 1
            while lines[before] in " \t":
                before -= 1
            if lines[before] in "-?:\n":
                return True
            at = lines.find(bracket, at + 1)
    return False


_READ_APART_IN_BLOCKS = _read_apart(
    r"(?:\n[ \t]*+(?:[-?:][ \t]++)*+|:[ \t]++)", r"(?=[ \t\r]*(?:\n|\Z|#|:(?:[ \t\r\n]|\Z)))"
)
""":data:`_READ_APART` for a text in block context: a plain scalar starts at a line's start (after
its indentation and ``-``, ``?``, ``:`` indicators) or after a mapping value's ``:``, and ``,``,
``]`` and ``}`` neither start nor end one (``- Yes, because``, ``20,000`` and ``Pat: No, not
always`` in prose are text to both parsers)."""
_STRUCTURE = ("\n---", "\n...", "\n%", "\x85", "\u2028", "\u2029", "\ufeff")
"""Several documents, directives; line breaks only YAML 1.1 knows, a byte order mark."""
_UNREADABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters PyYAML's reader refuses (control characters, surrogates)."""
_READABLE_ASCII = b"\t\n\r" + bytes(range(0x20, 0x7F))
_TAB_INDENT = re.compile(r"\n *\t")
"""A tab in a line's indentation: PyYAML refuses it, yaml-rs reads on."""
_MARKS = re.compile(r"[!&*]")
_BEFORE_MARK = frozenset(" \t\r\n[{,:-")
_AFTER_MARK = frozenset(" \t\r\n,]}")


def _unreadable(text: str) -> bool:
    """Whether ``text`` holds a character PyYAML's reader refuses (:data:`_UNREADABLE`); an ASCII
    text is checked by deleting the readable bytes, several times faster than the search."""
    if text.isascii():
        return bool(text.encode("ascii").translate(None, _READABLE_ASCII))
    return _UNREADABLE.search(text) is not None


def _has_marks(text: str) -> bool:
    """Whether ``text`` holds a tag, an anchor or an alias (``!x``, ``&x``, ``*x`` after a space
    or an indicator); the characters alone are rare enough to look at each one."""
    if "!" not in text and "&" not in text and "*" not in text:
        return False
    for m in _MARKS.finditer(text):
        i = m.start()
        if (i == 0 or text[i - 1] in _BEFORE_MARK) and (i + 1 < len(text) and text[i + 1] not in _AFTER_MARK):
            return True
    return False


def _careful_only(text: str) -> bool:
    """Whether ``text`` holds anything the two parsers could read apart, or structure this module
    bounds itself (the checks cheapest on a large valid text first)."""
    lines = "\n" + text
    return (
        any(s in lines for s in _STRUCTURE) or _unreadable(text)
        or ("\t" in text and _TAB_INDENT.search(lines) is not None)
        or _has_marks(text)
        or (_READ_APART if _may_hold_flow(lines) else _READ_APART_IN_BLOCKS).search(lines) is not None
    )  # fmt: skip


_SLOW = object()
_REFUSE_DUPLICATES = yaml_rs.DuplicateKeyPolicy.Error
_NO_ALIASES = yaml_rs.AliasLimits(max_total_replayed_events=0)


def _quick(text: str) -> Any:
    """``text`` parsed by yaml-rs (ten times faster than libyaml's events through Python), or
    :data:`_SLOW` when the careful path must decide: yaml-rs refuses it, or the text holds anything
    the two parsers could read apart (:data:`_READ_APART`). Otherwise the results are equal
    (``tests/test_safeyaml_fast.py`` checks both paths on tricky texts)."""
    if _careful_only(text):
        return _SLOW
    try:
        data = yaml_rs.loads(text, parse_datetime=False, duplicate_key_policy=_REFUSE_DUPLICATES,
                             alias_limits=_NO_ALIASES)  # fmt: skip
    except Exception:  # any refusal is explained, with its line, by the careful path
        return _SLOW
    return data if data is None or isinstance(data, dict | list | str | int | float | bool) else _SLOW


def beyond_bounds(data: Any) -> bool:
    """Whether quickly parsed ``data`` holds what :func:`careful_parse` refuses with a message of
    its own: nesting deeper than :data:`MAX_DEPTH`, a key that is a mapping or a list. A caller
    whose quickly parsed data did not validate parses carefully only then; otherwise the
    validation messages (with their lines) are the same either way."""
    todo: list[tuple[Any, int]] = [(data, 1)]
    while todo:
        value, depth = todo.pop()
        if isinstance(value, dict):
            if depth >= MAX_DEPTH or any(isinstance(k, tuple | list | dict) for k in value):
                return True
            todo.extend((v, depth + 1) for v in value.values() if isinstance(v, dict | list))
        elif isinstance(value, list):
            if depth >= MAX_DEPTH:
                return True
            todo.extend((v, depth + 1) for v in value if isinstance(v, dict | list))
    return False


def parse_yaml(text: str, file: str) -> Any:
    """The single document in ``text`` as plain data (``None`` for an empty file).

    Raises :class:`InputError`: one problem per duplicate key, else the first problem found.
    """
    data = _quick(text)
    return data if data is not _SLOW else careful_parse(text, file)


def careful_parse(text: str, file: str) -> Any:
    """:func:`parse_yaml` event by event, with every bound of the module doc and the line of
    every problem."""
    loader = Loader(text)
    builder = _Builder(file, loader)
    handlers: dict[type, Callable[[Any], None]] = {
        yaml.ScalarEvent: builder.on_scalar, yaml.MappingStartEvent: builder.on_open,
        yaml.SequenceStartEvent: builder.on_open, yaml.MappingEndEvent: builder.on_close,
        yaml.SequenceEndEvent: builder.on_close, yaml.AliasEvent: builder.on_alias,
        yaml.DocumentStartEvent: builder.on_document,
    }  # fmt: skip
    try:
        event = loader.get_event()
        while not isinstance(event, yaml.StreamEndEvent):
            handlers.get(type(event), builder.ignore)(event)
            event = loader.get_event()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        message = " ".join(str(x) for x in (err.context, err.problem) if x) or "invalid YAML"
        raise InputError.one(file, line, "", f"invalid YAML: {_one_line(message)}") from None
    except yaml.reader.ReaderError as err:
        message = f"invalid YAML: {_reader_message(err)}"
        raise InputError.one(file, _reader_line(text, err), "", message) from None
    except yaml.YAMLError as err:
        raise InputError.one(file, None, "", f"invalid YAML: {_one_line(str(err))}") from None
    finally:
        loader.dispose()
    if builder.problems:
        raise InputError(builder.problems)
    return builder.result
