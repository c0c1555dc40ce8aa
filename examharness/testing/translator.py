"""A deterministic translator for the scripted server: a marked dictionary translation.

Each value of the request's JSON object has its words looked up (whole words, case-insensitive) in
a small dictionary and gets the marker ``«<language>» `` in front, so a test can tell translated
text from source text and compute the expected translation exactly. Keys, placeholders and
numbers pass through, as a well-behaved translator's would.

``breaks`` makes it misbehave on purpose: when a trigger substring occurs in a request's payload,
the reply breaks one rule (:data:`BREAKS`), so tests can check that each broken unit is caught.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from examharness.testing.script import Responder, last_user_message

Break = Literal["drop_option", "translate_letters", "empty", "not_json", "same_options", "drop_placeholder",
                "change_number", "empty_value"]  # fmt: skip
BREAKS: tuple[Break, ...] = (
    "drop_option", "translate_letters", "empty", "not_json", "same_options", "drop_placeholder",
    "change_number", "empty_value",
)  # fmt: skip
_LANGUAGE = re.compile(r'BCP-47 tag "([^"]+)"')
_WORD = re.compile(r"[A-Za-z]+")
_GREEK = dict(zip("ABCDEFGH", "ΑΒΓΔΕΖΗΘ", strict=True))


def marked_translation(text: str, language: str, words: dict[str, str]) -> str:
    """What the dictionary translator makes of one text."""
    lower = {k.casefold(): v for k, v in words.items()}
    return f"«{language}» " + _WORD.sub(lambda m: lower.get(m.group(0).casefold(), m.group(0)), text)


def _language(request: dict[str, Any]) -> str:
    for message in request.get("messages") or []:
        if isinstance(message, dict) and message.get("role") == "system":
            m = _LANGUAGE.search(str(message.get("content")))
            if m:
                return m.group(1)
    raise LookupError("no target language in the system message")


def _break(kind: Break, out: dict[str, str]) -> str:
    letters = [k for k in out if len(k) == 1 and k.isupper()]
    if kind == "empty":
        return ""
    if kind == "not_json":
        return "Sorry, here is the translation: " + " / ".join(out.values())
    if kind == "drop_option" and letters:
        out.pop(letters[-1])
    elif kind == "translate_letters":
        out = {_GREEK.get(k, k): v for k, v in out.items()}
    elif kind == "same_options" and len(letters) > 1:
        out[letters[1]] = out[letters[0]]
    elif kind == "drop_placeholder":
        out = {k: re.sub(r"⟦\d+⟧", "", v) for k, v in out.items()}
    elif kind == "change_number":
        out = {k: re.sub(r"\d", "7", v) if re.search(r"\d", v) else v for k, v in out.items()}
    elif kind == "empty_value":
        out[next(iter(out))] = " "
    return json.dumps(out, ensure_ascii=False)


def dictionary_translator(words: dict[str, str], breaks: dict[str, Break] | None = None) -> Responder:
    """A responder that translates the JSON payload of ``examharness translate`` requests."""
    triggers = dict(breaks or {})

    def respond(request: dict[str, Any]) -> str:
        payload = last_user_message(request)
        data = json.loads(payload)
        language = _language(request)
        out = {k: marked_translation(v, language, words) for k, v in data.items()}
        for needle, kind in triggers.items():
            if needle in payload:
                return _break(kind, out)
        return json.dumps(out, ensure_ascii=False)

    return respond
