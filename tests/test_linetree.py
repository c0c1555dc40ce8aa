"""The line tree answers every lookup as PyYAML's composed node tree does (the Locator's former
way), whether it keeps every child or only those the wanted paths name."""

from __future__ import annotations

import random
from pathlib import Path

import yaml

from examharness.linetree import LineNode, line_tree, lookup
from examharness.safeyaml import Loader
from examharness.yamlpos import Locator

ROOT = Path(__file__).resolve().parents[1]
TEXTS = [
    "", "a: 1", "- x\n- y: 2\n  z: [1, 2]\n", "base: &b {k: 1, j: [3]}\nd:\n  <<: *b\n  k: 2\ne: *b\n",
    "s: &s key\n*s : 5\nlist:\n  - *s\n  - &n [1, 2]\n  - *n\n", "? [a, b]\n: c\nd: 1\n",
    "a: 1\na: 2\nb: 3\n", "0: zero\n'1': one\nx:\n  - [a, [b, c]]\n", "a: 1\n---\nb: 2\n", "a: *nowhere\n",
    "a: &x 1\nb: &x 2\n", "a: [1, 2",
    "sections:\n  - id: s\n    items:\n      - id: q\n        mc: {answer: E}\n        answer: F\n",
]  # fmt: skip
JUNK: list[str | int] = ["mc", "numeric", "function-after[...]", "zz", 7, 99, -1, "0", "1"]


def _composed(text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=Loader)
    except yaml.YAMLError:
        return None


def _from_composed(node: yaml.Node, seen: dict[int, LineNode] | None = None) -> LineNode:
    """PyYAML's composed tree as a line tree, child for child: what the Locator used to walk
    (the first scalar key of a mapping, each item of a sequence, an alias as its node)."""
    seen = {} if seen is None else seen
    if id(node) in seen:
        return seen[id(node)]
    is_map = {yaml.MappingNode: True, yaml.SequenceNode: False}.get(type(node))
    out = seen[id(node)] = LineNode(node.start_mark.line + 1, is_map)
    out.closed = True
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value not in out.children:
                out.children[key.value] = (key.start_mark.line + 1, _from_composed(value, seen))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out.children[i] = (item.start_mark.line + 1, _from_composed(item, seen))
        out.count = len(node.value)
    return out


def _paths(root: yaml.Node | None, rng: random.Random) -> list[list[str | int]]:
    """Paths that exist (walked down the composed tree), with junk parts mixed in."""
    paths: list[list[str | int]] = [[], ["zz"], [0]]
    for _ in range(40):
        node, path = root, []
        while isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.value and len(path) < 12:
            if rng.random() < 0.2:
                path.append(rng.choice(JUNK))
            if isinstance(node, yaml.MappingNode):
                key, node = rng.choice(node.value)
                path.append(key.value if isinstance(key, yaml.ScalarNode) else "?")
            else:
                index = rng.randrange(len(node.value))
                path.append(index)
                node = node.value[index]
        if rng.random() < 0.5:
            path.append(rng.choice(JUNK))
        paths.append(path)
    return paths


def _texts() -> list[str]:
    files = sorted(p for d in ("exams", "tests") for p in (ROOT / d).rglob("*.yaml"))
    return TEXTS + [p.read_text(encoding="utf-8", errors="replace") for p in files]


def test_lookups_match_the_composed_tree() -> None:
    """All paths named first (one reading), then looked up; and the whole tree walked alike."""
    rng = random.Random(5)
    for text in _texts():
        root = _composed(text)
        expected = None if root is None else _from_composed(root)
        locate = Locator(text)
        paths = _paths(root, rng)
        locate.expect(paths)
        whole = line_tree(text, Loader)
        for path in paths:
            assert lookup(whole, path) == lookup(expected, path), (text[:80], path)
            for keep in (True, False):
                found = locate.resolve(path, keep_missing_last=keep)
                assert found == lookup(expected, path, keep_missing_last=keep), (text[:80], path)


def test_a_path_not_named_first_is_still_found() -> None:
    rng = random.Random(6)
    for text in TEXTS:
        root = _composed(text)
        expected = None if root is None else _from_composed(root)
        locate = Locator(text)
        for path in _paths(root, rng):
            assert locate.resolve(path) == lookup(expected, path), (text, path)


def test_only_named_children_are_kept() -> None:
    text = "items:\n" + "".join(f"  - id: q{i}\n    answer: {i}\n" for i in range(1000))
    tree = line_tree(text, Loader, [("items", 500, "answer")])
    assert isinstance(tree, LineNode)
    items = tree.children["items"][1]
    assert items.count == 1000 and sorted(items.children) == [500]
    assert items.child(500) is not None and items.child(499) is None
    assert Locator(text)(["items", 500, "answer"]) == 2 + 2 * 500 + 1


def test_reading_stops_once_every_lookup_is_settled() -> None:
    text = "items:\n" + "".join(f"  - id: q{i}\n    answer: {i}\n" for i in range(40_000)) + "last: 1\n"
    early = line_tree(text, Loader, [("items", 10, "mc", "answer")])
    assert isinstance(early, LineNode)
    items = early.children["items"][1]
    assert items.count < 40_000 and not early.closed  # stopped well before the end
    found = items.child(10)
    assert found is not None and found[1].child("answer") == (2 + 2 * 10 + 1, found[1].children["answer"][1])
    locate = Locator(text)
    locate.expect([("items", 10, "answer"), ("items", 39_999, "missing")])
    assert locate.resolve(("items", 10, "answer")) == (2 + 2 * 10 + 1, ("items", 10, "answer"))
    assert locate.resolve(("items", 39_999, "missing")) == (2 + 2 * 39_999, ("items", 39_999, "missing"))
    whole = line_tree(text, Loader, [("nothere",)])  # a key that is absent: known only at the end
    assert isinstance(whole, LineNode) and whole.closed and whole.child("nothere") is None
