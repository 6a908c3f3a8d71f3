"""The request/result types and segment rendering shared by every provider."""

from __future__ import annotations

import numpy as np
import pytest

from voxflow.errors import MediaError
from voxflow.speech.espeak import EspeakProvider
from voxflow.speech.ssml import BreakSegment, TextSegment
from voxflow.speech.tts import SynthesisRequest, TtsProvider


def test_request_rejects_unsupported_rates() -> None:
    with pytest.raises(MediaError, match="44100 Hz"):
        SynthesisRequest.from_text("hi", sample_rate=44100)


def test_request_text_joins_spoken_words() -> None:
    request = SynthesisRequest.from_ssml('<speak>One <break time="1s"/> two</speak>')
    assert request.segments == (TextSegment("One"), BreakSegment(1000), TextSegment("two"))
    assert request.text == "One two"


def test_espeak_satisfies_the_provider_protocol() -> None:
    assert isinstance(EspeakProvider(), TtsProvider)


async def test_empty_request_gives_empty_audio() -> None:
    result = await EspeakProvider().synthesize(SynthesisRequest.from_text("  "))
    assert result.samples.dtype == np.int16
    assert result.samples.size == 0
    assert result.duration_ms == 0


async def test_break_only_request_is_exact_silence() -> None:
    result = await EspeakProvider().synthesize(
        SynthesisRequest.from_ssml('<break time="250ms"/>', sample_rate=16000)
    )
    assert result.samples.size == 4000
    assert not result.samples.any()


async def test_voice_switch_per_segment() -> None:
    provider = EspeakProvider()
    mixed = await provider.synthesize(
        SynthesisRequest.from_ssml('<speak>Hello <voice name="de">Guten Tag</voice></speak>')
    )
    english = await provider.synthesize(SynthesisRequest.from_text("Hello"))
    german = await provider.synthesize(SynthesisRequest.from_text("Guten Tag", voice="de"))
    assert mixed.voice == "en-us"
    assert mixed.samples.size == english.samples.size + german.samples.size
    assert np.array_equal(mixed.samples[english.samples.size :], german.samples)
