"""The SSML subset: segments, rates, breaks, voices, say-as, bad input."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxflow.errors import SsmlError
from voxflow.speech.ssml import (
    MAX_BREAK_MS,
    BreakSegment,
    TextSegment,
    parse_ssml,
    strip_ssml,
    text_segments,
)


def test_plain_speak() -> None:
    assert parse_ssml("<speak>Hello   world\n</speak>") == (TextSegment("Hello world"),)


def test_missing_speak_root_and_xml_declaration() -> None:
    assert parse_ssml("Hello <break time='1s'/> world") == (
        TextSegment("Hello"),
        BreakSegment(1000),
        TextSegment("world"),
    )
    declared = '<?xml version="1.0"?><speak xmlns="http://www.w3.org/2001/10/synthesis">Hi</speak>'
    assert parse_ssml(declared) == (TextSegment("Hi"),)


@pytest.mark.parametrize(
    ("attributes", "duration_ms"),
    [
        ('time="500ms"', 500),
        ('time="1s"', 1000),
        ('time="1.5s"', 1500),
        ('time="60s"', MAX_BREAK_MS),
        ('strength="weak"', 250),
        ('strength="x-strong"', 1200),
        ("", 400),
    ],
)
def test_break_durations(attributes: str, duration_ms: int) -> None:
    assert parse_ssml(f"<speak>a<break {attributes}/>b</speak>")[1] == BreakSegment(duration_ms)


def test_adjacent_breaks_add_up_and_zero_breaks_vanish() -> None:
    segments = parse_ssml(
        '<speak>a<break time="300ms"/><break time="200ms"/>b<break strength="none"/>c</speak>'
    )
    assert segments == (TextSegment("a"), BreakSegment(500), TextSegment("b"), TextSegment("c"))


@pytest.mark.parametrize(
    ("rate", "factor"),
    [("slow", 0.75), ("fast", 1.25), ("80%", 0.8), ("+20%", 1.2), ("-10%", 0.9), ("1.5", 1.5)],
)
def test_prosody_rates(rate: str, factor: float) -> None:
    (segment,) = parse_ssml(f'<speak><prosody rate="{rate}">words</prosody></speak>')
    assert isinstance(segment, TextSegment)
    assert segment.rate == pytest.approx(factor)


def test_nested_prosody_multiplies_and_is_clamped() -> None:
    segments = parse_ssml(
        '<speak>normal <prosody rate="2">fast <prosody rate="4">fastest</prosody></prosody>'
        " normal again</speak>"
    )
    assert segments == (
        TextSegment("normal"),
        TextSegment("fast", 2.0),
        TextSegment("fastest", 4.0),
        TextSegment("normal again"),
    )


def test_voice_switch_and_sentence_boundaries() -> None:
    segments = parse_ssml(
        '<speak><p><s>One.</s><s>Two.</s></p><voice name="de">Hallo</voice> back</speak>'
    )
    assert segments == (
        TextSegment("One."),
        TextSegment("Two."),
        TextSegment("Hallo", voice="de"),
        TextSegment("back"),
    )


def test_say_as_in_context_uses_document_language() -> None:
    segments = parse_ssml(
        '<speak xml:lang="de-DE">Ruf an: <say-as interpret-as="telephone">+49 211</say-as>.</speak>'
    )
    assert segments == (TextSegment("Ruf an: plus, vier neun, zwei eins eins."),)
    (english,) = parse_ssml('<say-as interpret-as="digits">123</say-as>', language="en-US")
    assert english == TextSegment("one two three")


def test_inline_markup_does_not_split_words_and_sub_uses_alias() -> None:
    segments = parse_ssml(
        '<speak>Hel<emphasis>lo</emphasis> <sub alias="World Wide Web">WWW</sub></speak>'
    )
    assert segments == (TextSegment("Hello World Wide Web"),)


def test_unknown_tags_speak_their_text_and_are_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="voxflow.speech.ssml"):
        first = parse_ssml("<speak><blink-unique>one</blink-unique></speak>")
        second = parse_ssml("<speak><blink-unique>two</blink-unique></speak>")
    assert first == (TextSegment("one"),)
    assert second == (TextSegment("two"),)
    assert sum("blink-unique" in record.message for record in caplog.records) == 1


@pytest.mark.parametrize(
    ("ssml", "message"),
    [
        ("<speak>unclosed", "not well-formed"),
        ("<speak><break time='soon'/></speak>", "break time='soon'"),
        ("<speak><break strength='huge'/></speak>", "break strength='huge'"),
        ("<speak><prosody rate='warp'>x</prosody></speak>", "prosody rate='warp'"),
        ("<speak><prosody rate='0%'>x</prosody></speak>", "positive"),
        ('<!DOCTYPE x [<!ENTITY a "aaaa">]><speak>&a;</speak>', "DOCTYPE"),
        ("<speak>" + "<s>" * 40 + "x" + "</s>" * 40 + "</speak>", "nested deeper"),
        ("<speak>" + "x" * 30_000 + "</speak>", "limit is"),
    ],
)
def test_bad_ssml_raises_ssml_error(ssml: str, message: str) -> None:
    with pytest.raises(SsmlError, match=message):
        parse_ssml(ssml)


def test_strip_ssml_fallback() -> None:
    assert strip_ssml("<speak>Tom &amp; Jerry<break time='1s'/>say <b>hi") == "Tom & Jerry say hi"


def test_text_segments() -> None:
    assert text_segments("  a \n b ") == (TextSegment("a b"),)
    assert text_segments("   ") == ()


@given(st.text(alphabet=st.sampled_from(list("<>/=\"' abspeakbrtimeo&;!?-x1")), max_size=80))
def test_arbitrary_input_parses_or_raises_ssml_error(ssml: str) -> None:
    try:
        segments = parse_ssml(ssml)
    except SsmlError:
        return
    assert all(isinstance(segment, TextSegment | BreakSegment) for segment in segments)
