"""Test doubles for examharness users and its own tests: a scriptable OpenAI-compatible server.

Names are loaded lazily so ``python -m examharness.testing.scripted_server`` does not import the
module twice (runpy warns when the package has already imported the module it is asked to run).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from examharness.testing.scripted_server import (
        Fault,
        FaultPolicy,
        RequestRecord,
        Responder,
        ScriptedServer,
        answer_key_responder,
        echo_responder,
        faults_on_first_attempts,
        last_user_message,
        prompt_hash,
    )

__all__ = [
    "Fault",
    "FaultPolicy",
    "RequestRecord",
    "Responder",
    "ScriptedServer",
    "answer_key_responder",
    "echo_responder",
    "faults_on_first_attempts",
    "last_user_message",
    "prompt_hash",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("examharness.testing.scripted_server"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
