"""An exam cut into translation units, and the translated texts put back.

One unit is one request: a section's instruction, a passage, an exemplar or an item. Its texts go
to the translator as one flat JSON object whose keys say what each text is (``question``,
``explanation``, ``prompt``, …) and whose option texts sit under their letters (``"A"``, ``"B"``,
…). The reply must be the same object with the values translated: same keys, no value empty, no two
options equal that were different. What the test-taker reads is translated; rubrics and reference
answers stay in the source language, because the grader reads them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict

from examharness.exam import (
    LETTERS,
    EssayItem,
    Exam,
    FreeResponseItem,
    MCExemplar,
    MCItem,
    MultiSelectItem,
    NumericItem,
    ResponseExemplar,
)
from examharness.translate.protect import Broken

Fields = dict[str, str]


class Unit(BaseModel):
    """One request's worth of text: ``key`` names where the texts go back."""

    model_config = ConfigDict(frozen=True)
    key: str
    fields: Fields
    options: int = 0
    """How many of ``fields`` are option texts (keys ``A``, ``B``, …)."""


def _choice_fields(question: str, options: list[str], explanation: str | None) -> tuple[Fields, int]:
    fields = {"question": question} | {LETTERS[i]: text for i, text in enumerate(options)}
    if explanation:
        fields["explanation"] = explanation
    return fields, len(options)


def _item_fields(item: object) -> tuple[Fields, int] | None:
    if isinstance(item, MCItem | MultiSelectItem):
        return _choice_fields(item.question, item.options, item.explanation)
    if isinstance(item, NumericItem):
        return {"question": item.question}, 0
    if isinstance(item, FreeResponseItem | EssayItem):
        return {"prompt": item.prompt}, 0
    return None


def plan_units(exam: Exam) -> tuple[list[Unit], dict[str, str]]:
    """Every unit of ``exam``, and the items that cannot be translated with the reason."""
    units: list[Unit] = []
    untranslatable: dict[str, str] = {}
    for pid, passage in exam.passages.items():
        fields = {"text": passage.text} | ({"title": passage.title} if passage.title else {})
        units.append(Unit(key=f"passage:{pid}", fields=fields))
    for section in exam.sections:
        if section.instruction:
            units.append(Unit(key=f"instruction:{section.id}", fields={"text": section.instruction}))
        for k, ex in enumerate(section.exemplars):
            if isinstance(ex, MCExemplar):
                fields, n = _choice_fields(ex.question, ex.options, ex.explanation)
            else:
                fields, n = {"prompt": ex.prompt, "response": ex.response}, 0
            units.append(Unit(key=f"exemplar:{section.id}:{k}", fields=fields, options=n))
        for item in section.items:
            planned = _item_fields(item)
            if planned is None:
                untranslatable[item.id] = f"items of type {item.type!r} are not translated"
                continue
            units.append(Unit(key=f"item:{item.id}", fields=planned[0], options=planned[1]))
    return units, untranslatable


def check_shape(unit: Unit, reply: object) -> Fields:
    """The reply's texts, or :class:`Broken` naming the rule it broke."""
    if not isinstance(reply, dict):
        raise Broken("the reply is not a JSON object")
    if set(reply) != set(unit.fields):
        lost = sorted(set(unit.fields) - set(reply))
        added = sorted(set(reply) - set(unit.fields))
        raise Broken(f"keys changed (missing {lost}, unexpected {added}): option letters must stay")
    out: Fields = {}
    for key in unit.fields:
        value = reply[key]
        if not isinstance(value, str) or not value.strip():
            raise Broken(f"{key!r} came back empty")
        out[key] = value.strip()
    letters = [LETTERS[i] for i in range(unit.options)]
    source = [unit.fields[x].strip().casefold() for x in letters]
    texts = [out[x].casefold() for x in letters]
    if len(set(texts)) < len(set(source)):
        raise Broken("two options became identical")
    return out


def _options(fields: Fields, n: int) -> list[str]:
    return [fields[LETTERS[i]] for i in range(n)]


def _apply_item(item: Any, fields: Fields) -> Any:
    if isinstance(item, MCItem | MultiSelectItem):
        update: dict[str, Any] = {
            "question": fields["question"],
            "options": _options(fields, len(item.options)),
        }
        if "explanation" in fields:
            update["explanation"] = fields["explanation"]
        return item.model_copy(update=update)
    if isinstance(item, NumericItem):
        return item.model_copy(update={"question": fields["question"]})
    return item.model_copy(update={"prompt": fields["prompt"]})


def _apply_exemplar(ex: MCExemplar | ResponseExemplar, fields: Fields) -> MCExemplar | ResponseExemplar:
    if isinstance(ex, MCExemplar):
        return ex.model_copy(update={
            "question": fields["question"], "options": _options(fields, len(ex.options)),
            "explanation": fields.get("explanation", ex.explanation),
        })  # fmt: skip
    return ex.model_copy(update={"prompt": fields["prompt"], "response": fields["response"]})


def apply_units(exam: Exam, done: dict[str, Fields]) -> tuple[Exam, dict[str, str]]:
    """``exam`` with every translated unit put back, and the items left out with the reason.

    An item is left out when its own unit, its passage, or its section's instruction or exemplars
    were not translated (the prompt would mix languages); a section with no item left goes too.
    """
    dropped: dict[str, str] = {}
    passages = {
        pid: p.model_copy(update={"text": done[f"passage:{pid}"]["text"],
                                  "title": done[f"passage:{pid}"].get("title", p.title)})
        for pid, p in exam.passages.items() if f"passage:{pid}" in done
    }  # fmt: skip
    sections = []
    for section in exam.sections:
        head = [f"instruction:{section.id}"] if section.instruction else []
        head += [f"exemplar:{section.id}:{k}" for k in range(len(section.exemplars))]
        missing_head = [k for k in head if k not in done]
        items = []
        for item in section.items:
            reason = _left_out(item, done, passages, missing_head)
            if reason:
                dropped[item.id] = reason
            else:
                items.append(_apply_item(item, done[f"item:{item.id}"]))
        if not items:
            continue
        update: dict[str, Any] = {"items": items, "exemplars": [
            _apply_exemplar(ex, done[f"exemplar:{section.id}:{k}"]) for k, ex in enumerate(section.exemplars)
        ]}  # fmt: skip
        if section.instruction:
            update["instruction"] = done[f"instruction:{section.id}"]["text"]
        sections.append(section.model_copy(update=update))
    used = {getattr(i, "passage", None) for s in sections for i in s.items}
    kept = {pid: p for pid, p in passages.items() if pid in used}
    return exam.model_copy(update={"sections": sections, "passages": kept}), dropped


def _left_out(item: Any, done: dict[str, Fields], passages: dict[str, Any], missing_head: list[str]) -> str:
    if f"item:{item.id}" not in done:
        return "not translated"
    ref = getattr(item, "passage", None)
    if ref is not None and ref not in passages:
        return f"its passage {ref!r} was not translated"
    if missing_head:
        return f"its section's {missing_head[0].split(':')[0]} was not translated"
    return ""


def iter_item_ids(exam: Exam) -> Iterator[str]:
    for section in exam.sections:
        for item in section.items:
            yield item.id
