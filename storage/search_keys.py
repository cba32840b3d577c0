"""The text a building is found by: its name and address as written, in full pinyin and in pinyin initials, and
its code, lower case in one string.

Computed whenever a building is written (``storage.models`` listens), so a resident's search is one ``LIKE`` on
one column in the database, never a Python pass over every building.
"""

from __future__ import annotations

import re

SEPARATOR = "|"  # never in a query: queries are cleaned to letters, digits and Chinese
MAX_KEY = 1000
NOT_SEARCHED = re.compile(r"[^0-9a-z\u3400-\u9fff]+")


def clean(text: str) -> str:
    """Lower case letters, digits and Chinese characters only: how keys and queries are compared."""
    return NOT_SEARCHED.sub("", text.lower())


def readings(text: str) -> tuple[str, str]:
    """Full pinyin (``waimaoju``) and initials (``wmj``) of ``text``; letters and digits stay as they are."""
    # Imported on first use: its dictionaries cost a start-up that restarts after a crash should not pay.
    from pypinyin import lazy_pinyin

    syllables = [clean(syllable) for syllable in lazy_pinyin(text, errors="default")]
    # A run of digits ("12号") keeps all its digits among the initials: 1 of 12 would match the wrong houses.
    initials = "".join(syllable if syllable.isdigit() else syllable[:1] for syllable in syllables)
    return "".join(syllables), initials


def building_search_key(code: str, name: str, address: str) -> str:
    parts = [clean(code)]
    for text in (name, address):
        full, initials = readings(text)
        parts += [clean(text), full, initials]
    return SEPARATOR.join(parts)[:MAX_KEY]  # empty parts kept: the ranking reads them by position
