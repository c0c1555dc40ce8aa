"""Keep the API key out of everything examharness stores or prints.

A server may echo the key it was sent (an error body quoting the ``Authorization`` header, a
proxy's diagnostic page, a model repeating its prompt's headers). Whatever a backend returns,
reply text or error message, passes through a :class:`Redactor` holding the key values in use
before it can reach ``items.jsonl``, the cache, grades, the HTML report, error lines or progress.
"""

from __future__ import annotations

from collections.abc import Iterable

REDACTED = "[REDACTED API KEY]"
MIN_SECRET = 8
"""Shorter values (``not-needed``, test placeholders such as ``x``) would redact ordinary text."""


class Redactor:
    """Replaces every occurrence of each secret value with :data:`REDACTED`."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        found = {s for s in secrets if s is not None and len(s.strip()) >= MIN_SECRET}
        self._secrets = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def exception(self, err: BaseException) -> None:
        """Redact the exception's message arguments in place; its type and other attributes
        stay, so the runner still classifies it."""
        if self._secrets:
            err.args = tuple(self(a) if isinstance(a, str) else a for a in err.args)
