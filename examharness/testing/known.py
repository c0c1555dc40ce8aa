"""A scripted "model" that knows the answers of given exams: dry runs with a known score.

``python -m examharness.testing.scripted_server --answers-from exams/suite --wrong-every 5``
serves every multiple-choice item of those exams: it answers in the report's format ("The answer
is therefore [X]"; the bare letter when asked the second-stage question) and gets every N-th
item of each exam wrong (the next letter), so the expected raw score is known before the run and
the whole pipeline (extraction, scales, percentiles, charts) can be checked against it. CI runs
the shipped suite this way from a fresh install.

Items are recognised by their prompt: each item is rendered exactly as the runner renders it
(both with and without vision) and its last user message is the key. Numeric, free-response and
essay items get a reply with no answer in it, so they never score.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from examharness.exam import LETTERS, MCItem, MultiSelectItem, find_exam_files, load_exam
from examharness.prompts import Renderer
from examharness.testing.script import Responder, last_user_message

NO_ANSWER = "I cannot answer this one."


class KnownAnswers(BaseModel):
    """What the scripted model will say, and the score that must follow."""

    model_config = ConfigDict(frozen=True)

    letters: dict[str, str | None]
    """Rendered last user message -> the letter(s) the model gives (``"C"``, ``"A, C"``); None
    for the items it does not answer (numeric, free response, essay)."""
    expected_correct: dict[str, int]
    """Exam id -> how many items the model answers correctly."""

    def responder(self) -> Responder:
        """Replies for the scripted server; an unknown prompt raises (the server sends a 500)."""

        def respond(request: dict[str, Any]) -> str:
            users = [m for m in request.get("messages") or [] if m.get("role") == "user"]
            for back, message in enumerate(reversed(users)):
                text = text_of(message)
                if text not in self.letters:
                    continue
                letters = self.letters[text]
                if letters is None:
                    return NO_ANSWER
                return f"Worked it out.\nThe answer is therefore [{letters}]" if back == 0 else letters
            raise LookupError("a prompt of no known item")

        return respond


def text_of(message: dict[str, Any]) -> str:
    """A message's text, image parts left out (the same in vision and text-only runs)."""
    return last_user_message({"messages": [message]})


def _reply(item: MCItem | MultiSelectItem, wrong: bool) -> str:
    """The item's answer, or (``wrong``) a different one of the same shape."""
    n = len(item.options)
    if isinstance(item, MCItem):
        return LETTERS[(LETTERS.index(item.answer) + 1) % n] if wrong else item.answer
    chosen = sorted(item.answer)
    if wrong:  # one letter too few, or one too many
        extra = LETTERS[(LETTERS.index(chosen[0]) + 1) % n]
        chosen = chosen[:-1] if len(chosen) > 1 else sorted({chosen[0], extra})
    return ", ".join(chosen)


def known_answers(paths: Sequence[Path], *, wrong_every: int = 0) -> KnownAnswers:
    """Learn every multiple-choice item under ``paths``; every ``wrong_every``-th is answered wrongly.

    Counting is per exam over its multiple-choice items in file order (1-based), so with
    ``wrong_every=5`` items 5, 10, ... are wrong. Items whose prompts are identical keep the first
    item's reply; such an item counts as correct only if that reply is right for it too.
    """
    letters: dict[str, str | None] = {}
    expected: dict[str, int] = {}
    renderers = [Renderer(vision=True), Renderer(vision=False)]
    for file in find_exam_files(list(paths)):
        loaded = load_exam(file)
        exam, n, right = loaded.exam, 0, 0
        for section in exam.sections:
            for index, item in enumerate(section.items):
                keys = {text_of(r.render(loaded, section, index)[-1]) for r in renderers}
                if not isinstance(item, MCItem | MultiSelectItem):
                    letters.update(dict.fromkeys(keys))
                    continue
                n += 1
                reply = _reply(item, wrong=wrong_every > 0 and n % wrong_every == 0)
                given = [letters.setdefault(key, reply) for key in keys]
                right += given[0] == _reply(item, wrong=False)
        expected[exam.id] = right
    return KnownAnswers(letters=letters, expected_correct=expected)
