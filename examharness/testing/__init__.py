"""Test doubles for examharness users and its own tests: a scriptable OpenAI-compatible server.

Names are loaded lazily so ``python -m examharness.testing.scripted_server`` does not import the
module twice (runpy warns when the package has already imported the module it is asked to run).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from examharness.testing.script import (
        Fault,
        FaultPolicy,
        RequestRecord,
        Responder,
        Scorer,
        ScriptedReply,
        answer_key_responder,
        echo_responder,
        every_request,
        faults_on_first_attempts,
        last_user_message,
        per_token_loss_scorer,
        prompt_hash,
        word_tokens,
    )
    from examharness.testing.scripted_server import ScriptedServer

__all__ = [
    "Fault",
    "FaultPolicy",
    "RequestRecord",
    "Responder",
    "Scorer",
    "ScriptedReply",
    "ScriptedServer",
    "answer_key_responder",
    "echo_responder",
    "every_request",
    "faults_on_first_attempts",
    "last_user_message",
    "per_token_loss_scorer",
    "prompt_hash",
    "word_tokens",
]

_SERVER_NAMES = frozenset({"ScriptedServer"})
"""Names that live in ``scripted_server``; every other name in ``__all__`` lives in ``script``."""


def __getattr__(name: str) -> Any:
    if name in __all__:
        module = "scripted_server" if name in _SERVER_NAMES else "script"
        return getattr(importlib.import_module(f"examharness.testing.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
