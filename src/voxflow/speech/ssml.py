"""The SSML subset voxflow renders itself, parsed into text and pause segments.

Providers never see SSML: breaks become silence we insert and each text segment carries its own
rate and voice, so espeak, Azure and ElevenLabs all behave the same. Supported: ``<speak>``,
``<break time|strength>``, ``<prosody rate>``, ``<say-as interpret-as="digits|telephone|
characters">``, ``<voice name>``, ``<p>``, ``<s>``, ``<sub alias>``, ``<emphasis>``,
``<lang>``, ``<mark>``. Other tags contribute their text content (logged once per tag name).
"""

from __future__ import annotations

import html
import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Final

from voxflow.errors import SsmlError
from voxflow.speech import say_as

logger = logging.getLogger(__name__)

MAX_SSML_CHARS: Final = 20_000
MAX_DEPTH: Final = 32
MAX_BREAK_MS: Final = 10_000
MIN_RATE: Final = 0.25
MAX_RATE: Final = 4.0

_XML_LANG: Final = "{http://www.w3.org/XML/1998/namespace}lang"
_BREAK_STRENGTH_MS: Final = {
    "none": 0,
    "x-weak": 100,
    "weak": 250,
    "medium": 400,
    "strong": 750,
    "x-strong": 1200,
}
_NAMED_RATES: Final = {
    "x-slow": 0.5,
    "slow": 0.75,
    "medium": 1.0,
    "default": 1.0,
    "fast": 1.25,
    "x-fast": 1.75,
}
_TIME: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*$")
_PERCENT: Final = re.compile(r"^\s*([+-])?(\d+(?:\.\d+)?)\s*%\s*$")
_MULTIPLIER: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*$")
_XML_DECLARATION: Final = re.compile(r"^\s*<\?xml[^>]*\?>")
_TAG: Final = re.compile(r"<[^>]*>")
_SPACE_BEFORE_PUNCTUATION: Final = re.compile(r"\s+(?=[.,;:!?])")
_TRANSPARENT_TAGS: Final = frozenset({"speak", "emphasis", "lang", "mark"})
_BOUNDARY_TAGS: Final = frozenset({"p", "s", "voice"})

_unknown_tags_logged: set[str] = set()


@dataclass(frozen=True)
class TextSegment:
    """Words to say at ``rate`` (1.0 = the voice's normal speed), optionally in another voice."""

    text: str
    rate: float = 1.0
    voice: str | None = None


@dataclass(frozen=True)
class BreakSegment:
    """Silence of ``duration_ms``."""

    duration_ms: int


Segment = TextSegment | BreakSegment


def text_segments(text: str) -> tuple[Segment, ...]:
    """Plain text (no markup) as segments."""
    normalized = " ".join(text.split())
    return (TextSegment(normalized),) if normalized else ()


def strip_ssml(ssml: str) -> str:
    """The words of (possibly malformed) SSML without any markup: the fallback to speak."""
    return " ".join(html.unescape(_TAG.sub(" ", ssml)).split())


def parse_ssml(ssml: str, language: str | None = None) -> tuple[Segment, ...]:
    """Parse the SSML subset into segments; :class:`SsmlError` says what was wrong.

    ``language`` chooses the words for ``<say-as>`` unless the document sets ``xml:lang``.
    A document without a ``<speak>`` root is treated as if wrapped in one.
    """
    if len(ssml) > MAX_SSML_CHARS:
        raise SsmlError(f"SSML is {len(ssml)} characters; the limit is {MAX_SSML_CHARS}")
    if "<!" in ssml:
        raise SsmlError("SSML must not contain DOCTYPE, ENTITY or CDATA declarations")
    body = _XML_DECLARATION.sub("", ssml, count=1).strip()
    if not body.startswith("<speak"):
        body = f"<speak>{body}</speak>"
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise SsmlError(f"SSML is not well-formed XML: {exc}") from None
    builder = _SegmentBuilder()
    _Walker(builder, root.get(_XML_LANG) or language).walk(root, 1.0, None, 0)
    return builder.finish()


class _SegmentBuilder:
    """Collects raw text into segments; whitespace is normalised only when a segment closes,
    so ``Hel<emphasis>lo</emphasis>`` stays one word."""

    def __init__(self) -> None:
        self._segments: list[Segment] = []
        self._pending: list[str] = []
        self._pending_style: tuple[float, str | None] = (1.0, None)

    def text(self, text: str | None, rate: float, voice: str | None) -> None:
        if not text:
            return
        if self._pending and self._pending_style != (rate, voice):
            self.boundary()
        self._pending_style = (rate, voice)
        self._pending.append(text)

    def pause(self, duration_ms: int) -> None:
        self.boundary()
        if duration_ms <= 0:
            return
        last = self._segments[-1] if self._segments else None
        if isinstance(last, BreakSegment):
            self._segments[-1] = BreakSegment(min(MAX_BREAK_MS, last.duration_ms + duration_ms))
        else:
            self._segments.append(BreakSegment(duration_ms))

    def boundary(self) -> None:
        # Elements are padded with spaces so they stay separate words; punctuation after one
        # (``</say-as>.``) must still close up to it.
        words = _SPACE_BEFORE_PUNCTUATION.sub("", " ".join("".join(self._pending).split()))
        self._pending = []
        if words:
            rate, voice = self._pending_style
            self._segments.append(TextSegment(words, rate, voice))

    def finish(self) -> tuple[Segment, ...]:
        self.boundary()
        return tuple(self._segments)


class _Walker:
    def __init__(self, builder: _SegmentBuilder, language: str | None) -> None:
        self._out = builder
        self._language = language

    def walk(self, element: ET.Element, rate: float, voice: str | None, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise SsmlError(f"SSML is nested deeper than {MAX_DEPTH} elements")
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "break":
            self._out.pause(_break_ms(element))
            return
        if tag == "say-as":
            interpret_as = element.get("interpret-as", "")
            words = say_as.expand("".join(element.itertext()), interpret_as, self._language)
            self._out.text(f" {words} ", rate, voice)
            return
        if tag == "sub":
            self._out.text(f" {element.get('alias', '')} ", rate, voice)
            return
        if tag == "prosody" and element.get("rate") is not None:
            rate = min(MAX_RATE, max(MIN_RATE, rate * _rate(element.get("rate", ""))))
        elif tag == "voice":
            voice = element.get("name") or voice
        elif tag not in _TRANSPARENT_TAGS | _BOUNDARY_TAGS and tag != "prosody":
            _log_unknown_once(tag)
        if tag in _BOUNDARY_TAGS:
            self._out.boundary()
        self._out.text(element.text, rate, voice)
        for child in element:
            self.walk(child, rate, voice, depth + 1)
            self._out.text(child.tail, rate, voice)
        if tag in _BOUNDARY_TAGS:
            self._out.boundary()


def _break_ms(element: ET.Element) -> int:
    time = element.get("time")
    if time is not None:
        match = _TIME.match(time)
        if match is None:
            raise SsmlError(f"<break time={time!r}>: expected a duration like '500ms' or '1s'")
        value = float(match.group(1)) * (1 if match.group(2) == "ms" else 1000)
        return min(MAX_BREAK_MS, round(value))
    strength = element.get("strength", "medium")
    if strength not in _BREAK_STRENGTH_MS:
        raise SsmlError(
            f"<break strength={strength!r}>: expected one of {', '.join(_BREAK_STRENGTH_MS)}"
        )
    return _BREAK_STRENGTH_MS[strength]


def _rate(value: str) -> float:
    if value in _NAMED_RATES:
        return _NAMED_RATES[value]
    if match := _PERCENT.match(value):
        sign, number = match.group(1), float(match.group(2))
        # "+20%" / "-10%" change the rate; a bare "80%" is the rate itself (SSML 1.1).
        factor = 1 + number / 100 if sign == "+" else 1 - number / 100 if sign else number / 100
    elif match := _MULTIPLIER.match(value):
        factor = float(match.group(1))
    else:
        raise SsmlError(
            f"<prosody rate={value!r}>: expected x-slow…x-fast, a percentage or a multiplier"
        )
    if factor <= 0:
        raise SsmlError(f"<prosody rate={value!r}>: the rate must be positive")
    return factor


def _log_unknown_once(tag: str) -> None:
    if tag not in _unknown_tags_logged:
        _unknown_tags_logged.add(tag)
        logger.info("SSML tag <%s> is not supported; speaking its text content", tag)
