"""Chat backends: one small protocol, an OpenAI-compatible client, and the embedded local server."""

from examharness.backends.base import BackendError, ChatBackend, ChatReply

__all__ = ["BackendError", "ChatBackend", "ChatReply"]
