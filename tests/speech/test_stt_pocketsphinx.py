"""The offline pocketsphinx recognizer on real espeak speech through a G.711 round trip."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from voxflow.errors import ConfigError, MediaError, SttNotConfiguredError, SttProviderError
from voxflow.media.g711 import ulaw_decode, ulaw_encode
from voxflow.speech.espeak import EspeakProvider
from voxflow.speech.pocketsphinx_stt import (
    PocketsphinxMode,
    PocketsphinxProvider,
    PocketsphinxSettings,
    grammar_for,
    hint_phrases,
)
from voxflow.speech.stt import Recognizer, transcribe
from voxflow.speech.tts import SynthesisRequest

HINTS = ["sales", "support"]


@pytest.fixture(scope="module")
def provider() -> PocketsphinxProvider:
    return PocketsphinxProvider()


@pytest.fixture(scope="module")
def sales_utterance() -> np.ndarray:
    synthesis = asyncio.run(
        EspeakProvider().synthesize(SynthesisRequest.from_text("I want to talk to sales"))
    )
    return ulaw_decode(ulaw_encode(synthesis.samples))


async def test_default_mode_with_hints_hears_sales(
    provider: PocketsphinxProvider, sales_utterance: np.ndarray
) -> None:
    transcript = await transcribe(provider, sales_utterance, "en-US", HINTS)
    assert "sales" in transcript.text.split()
    assert "support" not in transcript.text
    assert transcript.is_final
    assert 0.0 < transcript.confidence <= 1.0


def test_partials_grow_while_feeding(
    provider: PocketsphinxProvider, sales_utterance: np.ndarray
) -> None:
    recognizer = provider.start("en-US", HINTS)
    assert isinstance(recognizer, Recognizer)
    assert recognizer.mode is PocketsphinxMode.GRAMMAR
    partials = []
    for start in range(0, sales_utterance.size, 160):
        recognizer.feed(sales_utterance[start : start + 160])
        if start % 4000 == 0:
            partials.append(recognizer.partial())
    final = recognizer.finish()
    assert any(partials) and partials[0] == ""
    assert "sales" in final.text
    assert recognizer.finish() == final
    assert recognizer.partial() == final.text
    with pytest.raises(SttProviderError, match="already finished"):
        recognizer.feed(sales_utterance[:160])


def test_modes_follow_hints(provider: PocketsphinxProvider) -> None:
    assert provider.start().mode is PocketsphinxMode.LM  # type: ignore[union-attr]
    keywords = PocketsphinxProvider(PocketsphinxSettings(mode=PocketsphinxMode.KEYWORDS))
    recognizer = keywords.start("en", HINTS)
    assert recognizer.mode is PocketsphinxMode.KEYWORDS
    recognizer.feed(np.zeros(8000, np.int16))
    assert recognizer.finish().text == ""


def test_hints_are_cleaned_and_unknown_words_dropped() -> None:
    known = {"sales", "talk", "to", "an", "agent"}.__contains__
    assert hint_phrases(["Sales!", "talk to an agent", "xyzzy", "", "sales"], known) == (
        "sales",
        "talk to an agent",
    )
    grammar = grammar_for(["sales", "talk to an agent"])
    assert "<hint> = sales | talk to an agent;" in grammar


def test_errors_are_clear(provider: PocketsphinxProvider) -> None:
    with pytest.raises(SttNotConfiguredError, match="de-DE"):
        provider.start("de-DE")
    with pytest.raises(ConfigError, match="mode"):
        PocketsphinxSettings(mode="dictation")  # type: ignore[arg-type]
    with pytest.raises(SttNotConfiguredError, match="cannot load"):
        PocketsphinxProvider(PocketsphinxSettings(model_dir="/nonexistent"))
    recognizer = provider.start()
    with pytest.raises(MediaError, match="int16"):
        recognizer.feed(np.zeros(160, np.float32))  # type: ignore[arg-type]
    recognizer.finish()
