"""``examharness loss`` against the scripted server: exact values, faults, resume, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from examharness.cli import main
from examharness.testing import Fault, ScriptedServer, per_token_loss_scorer, word_tokens

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Naïve café owners serve crème brûlée to every guest who asks politely.",
    "Scaling laws predict the loss of a large model from small ones.",
]


def write_texts(path: Path) -> Path:
    path.write_text("".join(json.dumps({"id": f"t{i}", "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    return path


def run_loss(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any] | None, str]:
    code = main(["loss", *argv, "--json"])
    out, err = capsys.readouterr()
    data = json.loads(out[: out.rindex("}") + 1]) if code == 0 else None
    return code, data, err


def test_nats_per_token_and_bits_per_byte_are_exact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = write_texts(tmp_path / "texts.jsonl")
    with ScriptedServer(scorer=per_token_loss_scorer({"m": 2.5})) as server:
        code, data, _ = run_loss([str(texts), "--model", "m", "--base-url", server.base_url,
                                  "--out", str(tmp_path / "r"), "--no-cache"], capsys)  # fmt: skip
    assert code == 0 and data is not None
    (member,) = data["members"]
    tokens = sum(len(word_tokens(t)) for t in TEXTS)
    scored = tokens - len(TEXTS)
    assert (member["ok"], member["error"], member["scored_tokens"]) == (3, 0, scored)
    assert member["nats_per_token"] == pytest.approx(2.5, rel=1e-12)
    n_bytes = sum(len(t.encode()) for t in TEXTS)
    assert member["n_bytes"] == n_bytes
    assert member["bits_per_byte"] == pytest.approx(2.5 * scored / math.log(2) / n_bytes, rel=1e-12)


def test_faults_are_retried_and_failures_are_error_records_that_resume_finishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = write_texts(tmp_path / "texts.jsonl")
    broken = {"on": True}

    def faults(index: int, request: dict[str, Any], attempt: int) -> Fault | None:
        if "fox" in str(request.get("prompt")) and broken["on"]:
            return Fault.server_error(503)
        return Fault.rate_limit(0.01) if attempt == 1 else None

    with ScriptedServer(scorer=per_token_loss_scorer({"m": 1.0}), faults=faults) as server:
        common = ["--cache", str(tmp_path / "c.sqlite"), "--max-attempts", "2"]
        code, data, err = run_loss([str(texts), "--model", "m", "--base-url", server.base_url,
                                    "--out", str(tmp_path / "r"), *common], capsys)  # fmt: skip
        assert code == 0 and data is not None
        assert (data["members"][0]["ok"], data["members"][0]["error"]) == (2, 1)
        assert "1 text(s) failed" in err
        run_dir = next((tmp_path / "r").iterdir())
        record = next(json.loads(line) for line in (run_dir / "loss.jsonl").read_text().splitlines()
                      if json.loads(line)["status"] == "error")  # fmt: skip
        assert record["text_id"] == "t0" and "http_503" in record["error"] and record["nll_nats"] is None
        before = len(server.requests)
        broken["on"] = False
        code, data, _ = run_loss(["--resume", str(run_dir), "--retry-errors", *common], capsys)
        assert code == 0 and data is not None
        assert (data["members"][0]["ok"], data["members"][0]["error"]) == (3, 0)
        assert len(server.requests) - before == 1  # t0 only (its first attempt, the 429, is long past)
        assert data["members"][0]["nats_per_token"] == pytest.approx(1.0)


def test_a_chat_only_backend_gets_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    texts = write_texts(tmp_path / "texts.jsonl")
    with ScriptedServer() as server:  # no scorer: /v1/completions is a 404, like a chat-only API
        code, _, err = run_loss([str(texts), "--model", "chat-only", "--base-url", server.base_url,
                                 "--out", str(tmp_path / "r"), "--no-cache"], capsys)  # fmt: skip
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith("member chat-only (chat-only at http://127.0.0.1:")
    assert "cannot return prompt log-probabilities" in lines[0]


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ('{"id": "a", "text": "fine"}\n{"id": "b"}\n', ":2: text: "),
        ('{"id": "a", "text": "fine"}\nnot json\n', ":2: (line): not JSON"),
        ('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', "a: id: two texts share this id"),
    ],
)
def test_bad_text_files_are_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, where: str
) -> None:
    path = tmp_path / "texts.jsonl"
    path.write_text(content)
    code, _, err = run_loss([str(path), "--model", "m", "--base-url", "http://127.0.0.1:9/v1"], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1 and where in err


@pytest.mark.parametrize(
    ("reply", "prompt_tokens", "generated", "expected"),
    [
        (
            {"tokens": ["ab", "c", "!"], "token_logprobs": [None, -1.0, -2.0], "text_offset": [0, 2, 3]},
            4,
            True,
            ["ab", "c"],
        ),
        ({"tokens": ["ab", "c", "!"], "token_logprobs": [None, -1.0, -2.0]}, 2, True, ["ab", "c"]),
        (
            {"tokens": ["ab", "c"], "token_logprobs": [None, -1.0], "text_offset": [0, 2]},
            2,
            False,
            ["ab", "c"],
        ),
        ({"tokens": ["!"], "token_logprobs": [-2.0], "text_offset": [3]}, 2, True, None),
        ({"tokens": [], "token_logprobs": []}, 2, True, None),
        (None, 2, True, None),
    ],
)
def test_the_prompt_part_of_an_echo_reply(
    reply: dict[str, Any] | None, prompt_tokens: int, generated: bool, expected: list[str] | None
) -> None:
    from types import SimpleNamespace

    from examharness.backends.base import BackendError
    from examharness.backends.logprobs import UNSUPPORTED, _prompt_part

    logprobs = SimpleNamespace(**reply) if reply is not None else None
    if expected is None:
        with pytest.raises(BackendError) as err:
            _prompt_part("abc", logprobs, prompt_tokens, generated)
        assert err.value.kind == UNSUPPORTED and not err.value.retryable
    else:
        assert _prompt_part("abc", logprobs, prompt_tokens, generated).tokens == expected
