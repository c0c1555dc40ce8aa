"""Language tags: the BCP-47 check every language flag goes through, and names for charts.

Names cover English and the 26 languages of the GPT-4 report's multilingual MMLU (Figure 5),
plus a few common others; an unknown tag is shown as itself.
"""

from __future__ import annotations

import re

from examharness.errors import InputError

_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")

NAMES = {
    "en": "English", "it": "Italian", "af": "Afrikaans", "es": "Spanish", "de": "German", "fr": "French",
    "id": "Indonesian", "ru": "Russian", "pl": "Polish", "uk": "Ukrainian", "el": "Greek", "lv": "Latvian",
    "zh": "Mandarin", "ar": "Arabic", "tr": "Turkish", "ja": "Japanese", "sw": "Swahili", "cy": "Welsh",
    "ko": "Korean", "is": "Icelandic", "bn": "Bengali", "ur": "Urdu", "ne": "Nepali", "th": "Thai",
    "pa": "Punjabi", "mr": "Marathi", "te": "Telugu", "pt": "Portuguese", "hi": "Hindi", "yo": "Yoruba",
    "nl": "Dutch", "sv": "Swedish", "vi": "Vietnamese", "he": "Hebrew", "fa": "Persian",
}  # fmt: skip


def check_language(tag: str, where: str = "--to") -> str:
    """``tag`` when it is a well-formed BCP-47 tag (``es``, ``pt-BR``, ``zh-Hans``), else InputError."""
    if not _TAG.fullmatch(tag):
        raise InputError.one("command line", None, where, f"{tag!r} is not a BCP-47 language tag (e.g. es, pt-BR)")
    return tag


def primary(tag: str) -> str:
    """The language subtag, lower case: ``pt-BR`` -> ``pt``."""
    return tag.split("-", 1)[0].casefold()


def language_name(tag: str) -> str:
    """``es`` -> ``Spanish``; ``pt-BR`` -> ``Portuguese (pt-BR)``; unknown tags as themselves."""
    name = NAMES.get(primary(tag))
    if name is None:
        return tag
    return name if "-" not in tag else f"{name} ({tag})"
