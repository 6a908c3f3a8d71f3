"""``<say-as>`` expansion: digit strings and phone numbers spelled out for speaking.

Numbers are turned into words so that every provider reads "4 9" as two digits instead of
"forty-nine"; commas between groups give the listener the pauses a person would make.
"""

from __future__ import annotations

import re
from typing import Final

_DIGIT_WORDS: Final[dict[str, tuple[str, ...]]] = {
    "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "de": ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"),
}
_PLUS_WORD: Final = {"en": "plus", "de": "plus"}
_STAR_WORD: Final = {"en": "star", "de": "Stern"}
_HASH_WORD: Final = {"en": "hash", "de": "Raute"}

_GROUP_SEPARATORS: Final = re.compile(r"[\s\-/().]+")

INTERPRETATIONS: Final = frozenset({"digits", "telephone", "characters"})


def _words(language: str | None) -> str:
    primary = (language or "en").split("-")[0].lower()
    return primary if primary in _DIGIT_WORDS else "en"


def _spell_character(char: str, lang: str) -> str:
    if char.isdigit() and char.isascii():
        return _DIGIT_WORDS[lang][int(char)]
    if char == "+":
        return _PLUS_WORD[lang]
    if char == "*":
        return _STAR_WORD[lang]
    if char == "#":
        return _HASH_WORD[lang]
    return char.upper() if char.isalpha() else char


def _spell_group(group: str, lang: str) -> str:
    return " ".join(_spell_character(char, lang) for char in group if not char.isspace())


def expand(text: str, interpret_as: str, language: str | None = None) -> str:
    """Spell ``text`` out for ``interpret_as`` (``digits``, ``telephone`` or ``characters``).

    ``"+49 211"`` as telephone → ``"plus, four nine, two one one"``. Unknown interpretations
    return the text unchanged.
    """
    lang = _words(language)
    if interpret_as == "characters":
        return _spell_group(text, lang)
    if interpret_as not in INTERPRETATIONS:
        return text
    parts: list[str] = []
    for group in _GROUP_SEPARATORS.split(text.strip()):
        if not group:
            continue
        if interpret_as == "telephone" and group.startswith("+"):
            # The leading plus is its own spoken group: "plus, four nine".
            parts.append(_PLUS_WORD[lang])
            group = group[1:]
        if group:
            parts.append(_spell_group(group, lang))
    return ", ".join(parts)
