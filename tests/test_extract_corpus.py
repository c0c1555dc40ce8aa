"""Extraction against a corpus of replies written for the tests (``tests/data/replies_corpus.yaml``)
and replies the embedded local model actually gave (``tests/data/local_model_replies.yaml``),
each labelled by hand with what a careful reader takes the answer to be.

A wrong letter is the worst outcome (it silently changes a score), so every case must be read
exactly as labelled: a wrong letter, a missed answer and a wrong no-answer status all fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
import yaml
from pydantic import BaseModel, ConfigDict

from examharness.extract import extract_choice

DATA = Path(__file__).parent / "data"


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reply: str
    options: str
    expect: str | None
    status: Literal["answered", "unparseable", "empty", "refused"] = "answered"
    multi: bool = False
    item: str | None = None
    """For captured replies: where the item came from."""


class Corpus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    options: dict[str, list[str]]
    cases: list[Case]


def load(name: str) -> Corpus:
    return Corpus.model_validate(yaml.safe_load((DATA / name).read_text(encoding="utf-8")))


WRITTEN = load("replies_corpus.yaml")


def test_written_corpus_is_large_and_varied() -> None:
    assert len(WRITTEN.cases) >= 150
    assert sum(c.expect is None for c in WRITTEN.cases) >= 20
    assert all(c.options in WRITTEN.options for c in WRITTEN.cases)
    assert all((c.expect is None) == (c.status != "answered") for c in WRITTEN.cases)


def _check(corpus: Corpus, case: Case) -> None:
    got = extract_choice(case.reply, corpus.options[case.options], multi=case.multi)
    wrong = got.answer is not None and got.answer != case.expect
    assert not wrong, f"WRONG LETTER {got.answer} ({got.how}) for {case.reply!r}"
    assert (got.status, got.answer) == (case.status, case.expect), got.how


@pytest.mark.parametrize("case", WRITTEN.cases, ids=[c.reply[:40] for c in WRITTEN.cases])
def test_written_reply_is_read_as_labelled(case: Case) -> None:
    _check(WRITTEN, case)


CAPTURED = load("local_model_replies.yaml")


def test_captured_replies_cover_a_few_dozen_items() -> None:
    assert len(CAPTURED.cases) >= 30
    assert all(c.item for c in CAPTURED.cases)


@pytest.mark.parametrize("case", CAPTURED.cases, ids=[c.item or "" for c in CAPTURED.cases])
def test_captured_local_model_reply_is_read_as_labelled(case: Case) -> None:
    _check(CAPTURED, case)
