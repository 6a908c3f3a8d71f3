"""<say-as> expansion of digits, phone numbers and characters."""

from __future__ import annotations

import pytest

from voxflow.speech.say_as import expand


@pytest.mark.parametrize(
    ("text", "interpret_as", "language", "spoken"),
    [
        ("+49 211", "telephone", None, "plus, four nine, two one one"),
        (
            "+49 (211) 123-45",
            "telephone",
            "en-US",
            "plus, four nine, two one one, one two three, four five",
        ),
        ("0211 9876", "telephone", "de-DE", "null zwei eins eins, neun acht sieben sechs"),
        ("1234", "digits", None, "one two three four"),
        ("12 34", "digits", None, "one two, three four"),
        ("*#1", "digits", "en", "star hash one"),
        ("ab1", "characters", None, "A B one"),
        ("42", "digits", "fr-FR", "four two"),
        ("42", "cardinal", None, "42"),
        ("", "digits", None, ""),
    ],
)
def test_expand(text: str, interpret_as: str, language: str | None, spoken: str) -> None:
    assert expand(text, interpret_as, language) == spoken
