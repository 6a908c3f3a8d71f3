"""Voice activity detection on real signals, and the end-of-turn state machine."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from voxflow.errors import MediaError
from voxflow.media.audio import frames
from voxflow.media.dtmf.generator import generate_tone
from voxflow.media.g711 import ulaw_decode, ulaw_encode
from voxflow.media.vad import (
    BatchVad,
    SpeechStarted,
    TurnDetector,
    TurnEnded,
    TurnSettings,
    WebRtcVad,
    frame_level_dbfs,
    looks_like_dtmf,
)
from voxflow.protocol import VadConfig
from voxflow.speech.espeak import EspeakProvider
from voxflow.speech.tts import SynthesisRequest


@pytest.fixture(scope="module")
def speech_frames() -> np.ndarray:
    synthesis = asyncio.run(
        EspeakProvider().synthesize(SynthesisRequest.from_text("I want to talk to sales please"))
    )
    pcm = ulaw_decode(ulaw_encode(synthesis.samples))
    rows = frames(pcm)
    return rows[frame_level_dbfs(rows) > -40]  # the voiced core, not espeak's edge silence


def white_noise_frames(count: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    return np.clip(rng.normal(0, 300, (count, 160)), -32768, 32767).astype(np.int16)


def dtmf_frames() -> np.ndarray:
    return np.concatenate([frames(generate_tone(key, 200)) for key in "0123456789*#ABCD"])


def test_webrtcvad_tells_speech_from_silence_noise_and_dtmf(speech_frames: np.ndarray) -> None:
    vad = BatchVad(lambda: WebRtcVad(mode=3))
    speech = np.mean([vad.process(f[None, :])[0] for f in speech_frames])
    assert speech > 0.8
    fresh = WebRtcVad(mode=3)
    assert not any(fresh.is_speech(np.zeros(160, np.int16)) for _ in range(50))
    guard = looks_like_dtmf(dtmf_frames())
    assert guard.mean() > 0.95
    assert looks_like_dtmf(speech_frames).mean() < 0.02
    assert not looks_like_dtmf(white_noise_frames(50)).any()


def test_white_noise_is_mostly_not_speech() -> None:
    detector = WebRtcVad(mode=3)
    verdicts = [detector.is_speech(f) for f in white_noise_frames(100)]
    assert np.mean(verdicts) < 0.3


def test_batch_gives_each_row_its_own_detector(speech_frames: np.ndarray) -> None:
    vad = BatchVad()
    block = np.stack([speech_frames[10], np.zeros(160, np.int16), speech_frames[11]])
    assert vad.process(block).tolist() == [True, False, True]
    assert vad.channels == 3
    vad.reset_row(1)
    assert vad.process(block[:2]).tolist() == [True, False]


@pytest.mark.parametrize(
    ("bad", "what"),
    [
        (np.zeros((2, 100), np.int16), "shape"),
        (np.zeros((2, 160), np.float32), "int16"),
        (np.zeros((2, 2, 160), np.int16), "shape"),
    ],
)
def test_bad_frames_are_named(bad: np.ndarray, what: str) -> None:
    with pytest.raises(MediaError, match=what):
        BatchVad().process(bad)


def test_bad_settings_are_named() -> None:
    with pytest.raises(MediaError, match="mode"):
        WebRtcVad(mode=5)
    with pytest.raises(MediaError, match="end_of_turn_silence_ms"):
        TurnSettings(end_of_turn_silence_ms=0)
    with pytest.raises(MediaError, match="speech_start_frames"):
        TurnSettings(speech_start_frames=0)
    with pytest.raises(MediaError, match="end_of_turn_silence_ms"):
        TurnDetector().set_end_of_turn_silence("700")  # type: ignore[arg-type]


def feed(detector: TurnDetector, pattern: str, start_ms: int = 0, **flags: object) -> list:
    """One frame per character: 'v' voiced, '.' not; returns (frame start, event) pairs."""
    out = []
    for i, mark in enumerate(pattern):
        now = start_ms + 20 * i
        out += [(now, e) for e in detector.feed(now, mark == "v", -20.0, **flags)]  # type: ignore[arg-type]
    return out


def test_speech_starts_after_n_voiced_frames_at_the_onset() -> None:
    detector = TurnDetector(TurnSettings(speech_start_frames=3))
    events = feed(detector, "..vv.vvv")
    assert events == [(140, SpeechStarted(100))]
    assert detector.in_speech


def test_turn_ends_after_the_configured_silence() -> None:
    detector = TurnDetector(TurnSettings(speech_start_frames=2, end_of_turn_silence_ms=200))
    # onset 0; last voiced frame 20 ms-long ending at 200; 200 ms silence complete at 400.
    events = feed(detector, "vvvvvvvvvv" + "." * 15)
    assert events == [(20, SpeechStarted(0)), (380, TurnEnded(400, 200))]
    assert not detector.in_speech


def test_short_pause_does_not_end_the_turn() -> None:
    detector = TurnDetector(TurnSettings(speech_start_frames=1, end_of_turn_silence_ms=200))
    events = feed(detector, "vv" + "." * 9 + "vv" + "." * 10)
    assert [type(e) for _, e in events] == [SpeechStarted, TurnEnded]
    assert events[1][1] == TurnEnded(460, 260)


def test_silence_is_updated_per_call_from_vad_settings() -> None:
    detector = TurnDetector(TurnSettings(speech_start_frames=1))
    assert detector.end_of_turn_silence_ms == 700
    detector.apply_vad_settings(VadConfig(end_of_turn_silence_ms=300))
    detector.apply_vad_settings(VadConfig())  # absent: the value persists
    detector.apply_vad_settings(None)
    assert detector.end_of_turn_silence_ms == 300
    events = feed(detector, "v" + "." * 20)
    assert events[-1][1] == TurnEnded(320, 20)


def test_dtmf_frames_never_count_as_speech() -> None:
    detector = TurnDetector(TurnSettings(speech_start_frames=1))
    assert feed(detector, "vvvvv", dtmf=True) == []
    assert not detector.in_speech


def test_prompt_echo_needs_more_level_to_barge_in() -> None:
    settings = TurnSettings(speech_start_frames=1, echo_tail_ms=100)
    detector = TurnDetector(settings)
    # Prompt at -12 dBFS: echo (≥ 6 dB down) is at most -18; the rule wants ≥ -15.
    assert detector.feed(0, True, -19.0, prompt_level_dbfs=-12.0) == []
    assert detector.feed(20, True, -19.0) == []  # echo tail: the prompt just stopped
    assert detector.feed(140, True, -19.0) == [SpeechStarted(140)]  # tail over
    loud = TurnDetector(settings)
    assert loud.feed(0, True, -14.0, prompt_level_dbfs=-12.0) == [SpeechStarted(0)]
