"""Batch file lines: the ``custom_id`` round trip and reading a provider's results leniently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from examharness.backends.base import BackendError, ChatReply
from examharness.batch.lines import EntryId, read_results
from examharness.errors import InputError
from examharness.testing._http import completion_body


@pytest.mark.parametrize("entry", [
    EntryId("sat", "q12", "explanation", 0),
    EntryId("ap.calc-bc", "free response/3 (a)", "answer", 0),
    EntryId("humaneval", "HumanEval/0", "response", 19),
    EntryId("x", "100%", "response", 2),
])  # fmt: skip
def test_custom_id_round_trip(entry: EntryId) -> None:
    text = str(entry)
    assert text.count("/") == 3
    assert EntryId.parse(text) == entry


@pytest.mark.parametrize("text", [
    "sat/q12/explanation", "sat/q12/letter/0", "sat/q12/answer/-1", "sat/q12/answer/01", "/q12/answer/0",
    "sat/q%2F12/answer/0/", "sat/q 12/answer/0",
])  # fmt: skip
def test_custom_id_is_parsed_strictly(text: str) -> None:
    with pytest.raises(ValueError):
        EntryId.parse(text)


def line(custom_id: str, **response: object) -> str:
    return json.dumps({"id": "b", "custom_id": custom_id, "response": response or None, "error": None})


def test_provider_results_are_read_leniently(tmp_path: Path) -> None:
    """A downloaded output file's bad line costs its own request, never the run; strict reading
    (an imported file) refuses the same file at that line."""
    good = completion_body(0, {"messages": []}, "The answer is B")
    path = tmp_path / "output.jsonl"
    path.write_text("\n".join([
        line("e/q1/response/0", status_code=200, body=good),
        line("e/q2/response/0", status_code=200, body={"choices": "none"}),
        line("e/q9/response/0", status_code=200, body=good),
        "{torn",
        line("e/q3/response/0", status_code=429, body={"error": {"message": "slow down"}}),
    ]) + "\n")  # fmt: skip
    expected = {"e/q1/response/0", "e/q2/response/0", "e/q3/response/0"}
    out = read_results(path, expected, strict=False)
    assert isinstance(out["e/q1/response/0"], ChatReply) and out["e/q1/response/0"].text == "The answer is B"
    bad = out["e/q2/response/0"]
    assert isinstance(bad, BackendError) and bad.kind == "batch_bad_result"
    assert ":2: response.body.choices" in str(bad)
    refused = out["e/q3/response/0"]
    assert isinstance(refused, BackendError) and str(refused) == "http_429: HTTP 429: slow down"
    assert set(out) == expected
    with pytest.raises(InputError, match=r"output.jsonl:2: response.body.choices: not a chat completion"):
        read_results(path, expected)
