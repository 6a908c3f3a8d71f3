"""The offline espeak-ng provider, run for real."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from voxflow.errors import TtsNotConfiguredError, TtsProviderError
from voxflow.speech.espeak import EspeakProvider, parse_voice_list, words_per_minute
from voxflow.speech.tts import SynthesisRequest

SENTENCE = "Thank you for calling. Press one for sales, or two for support."


def rms(samples: npt.NDArray[np.int16]) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


@pytest.mark.parametrize("sample_rate", [8000, 16000])
async def test_real_sentence(sample_rate: int) -> None:
    result = await EspeakProvider().synthesize(
        SynthesisRequest.from_text(SENTENCE, language="en-US", sample_rate=sample_rate)
    )
    assert result.provider == "espeak"
    assert result.voice == "en-us"
    assert result.sample_rate == sample_rate
    assert 2500 < result.duration_ms < 8000
    assert rms(result.samples) > 500


async def test_faster_rate_is_shorter() -> None:
    provider = EspeakProvider()
    normal = await provider.synthesize(SynthesisRequest.from_text(SENTENCE))
    fast = await provider.synthesize(
        SynthesisRequest.from_ssml(f'<prosody rate="fast">{SENTENCE}</prosody>')
    )
    assert fast.duration_ms < 0.9 * normal.duration_ms


async def test_break_adds_its_silence() -> None:
    provider = EspeakProvider()
    plain = await provider.synthesize(SynthesisRequest.from_ssml("<speak>Hello. Goodbye.</speak>"))
    paused = await provider.synthesize(
        SynthesisRequest.from_ssml('<speak>Hello. <break time="1s"/> Goodbye.</speak>')
    )
    # Separate segments bring their own lead-in/out, so allow some slack around 1 s.
    assert 900 <= paused.duration_ms - plain.duration_ms <= 1400
    longest_silent_run = _longest_zero_run(paused.samples) * 1000 // paused.sample_rate
    assert longest_silent_run >= 1000


def _longest_zero_run(samples: npt.NDArray[np.int16]) -> int:
    silent = np.concatenate([[False], np.abs(samples.astype(np.int32)) < 2, [False]])
    edges = np.flatnonzero(np.diff(silent.astype(np.int8)))
    return int(np.max(edges[1::2] - edges[::2])) if edges.size else 0


@pytest.mark.parametrize(
    ("voice", "language", "expected"),
    [
        (None, "en-US", "en-us"),
        (None, "de-DE", "de"),
        ("en-gb", None, "en-gb"),
        ("de+f3", None, "de+f3"),
        ("en-GB-SoniaNeural", "fr-FR", "en-gb"),
        ("zz-unknown", "fr-FR", "fr-fr"),
        ("nonsense", None, "en-us"),
        (None, None, "en-us"),
    ],
)
async def test_voice_mapping(voice: str | None, language: str | None, expected: str) -> None:
    assert await EspeakProvider().resolve_voice(voice, language) == expected


async def test_german_language_synthesises() -> None:
    result = await EspeakProvider().synthesize(
        SynthesisRequest.from_text("Guten Tag", language="de-DE")
    )
    assert result.voice == "de"
    assert rms(result.samples) > 500


async def test_synthesis_does_not_block_the_event_loop() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await EspeakProvider().synthesize(SynthesisRequest.from_text(SENTENCE * 3))
    task.cancel()
    assert ticks > 5


async def test_missing_program_names_the_package() -> None:
    provider = EspeakProvider(executable="espeak-ng-not-installed")
    with pytest.raises(TtsNotConfiguredError, match="apt-get install espeak-ng"):
        await provider.synthesize(SynthesisRequest.from_text("hello"))


async def test_failing_program_is_a_provider_error() -> None:
    provider = EspeakProvider(executable="false")
    with pytest.raises(TtsProviderError, match="exited with 1"):
        await provider.synthesize(SynthesisRequest.from_text("hello"))


def test_words_per_minute_bounds() -> None:
    assert words_per_minute(1.0) == 175
    assert words_per_minute(0.1) == 80
    assert words_per_minute(4.0) == 450


def test_parse_voice_list() -> None:
    listing = (
        "Pty Language       Age/Gender VoiceName          File                 Other Languages\n"
        " 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)\n"
        "garbage\n"
    )
    assert parse_voice_list(listing) == {"en-us", "english_(america)", "gmw/en-us"}


# Without the fix only the garbage collector killed the child, with a ResourceWarning.
@pytest.mark.filterwarnings("error::ResourceWarning")
async def test_a_cancelled_synthesis_leaves_no_process_behind(tmp_path: Path) -> None:
    # Regression: a prompt cut short (the caller hung up) cancelled the task but left the
    # espeak-ng child running. A stand-in program that records its PID and hangs shows it.
    pid_file = tmp_path / "pid"
    program = tmp_path / "slow-espeak"
    program.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 30\n")
    program.chmod(0o755)
    provider = EspeakProvider(executable=str(program))
    task = asyncio.create_task(provider._run(["--stdout"], b"hello"))
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        await asyncio.sleep(0.01)
    pid = int(pid_file.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left running
        os.kill(pid, 0)
