"""CallSession semantics (protocol.md §4), driven with injected time and real action models."""

from __future__ import annotations

import base64
import io
import wave
from typing import Any

import numpy as np
import pytest

from voxflow.engine.commands import (
    Command,
    ConfigureListening,
    DeliverEvent,
    HangUp,
    Note,
    PreparePrompt,
    SetEndOfTurnSilence,
    Transfer,
)
from voxflow.engine.session import CallSession, SessionConfig
from voxflow.protocol import Session, parse_actions

SID = "550e8400-e29b-41d4-a716-446655440000"
TICK = 0.02


class Call:
    """A CallSession plus a clock, and a record of every command it produced."""

    def __init__(self, **config: Any) -> None:
        self.now = 100.0
        self.session = CallSession(
            Session(id=SID, account_id="acc", phone_number="+4921100"),
            config=SessionConfig(**config),
            wall_offset=1_700_000_000.0,
        )
        self.commands: list[Command] = []
        self.frames: list[np.ndarray | None] = []
        self.session.start(self.now)
        self.collect()

    def collect(self) -> list[Command]:
        new = self.session.drain()
        self.commands.extend(new)
        return new

    def events(self) -> list[str]:
        return [c.event.type for c in self.commands if isinstance(c, DeliverEvent)]

    def respond(self, body: Any, *, ms: int = 800, ready: bool = True) -> list[Command]:
        """The assistant answers; each prompt gets `ms` of constant non-zero audio."""
        self.session.actions_received(parse_actions(body), self.now)
        new = self.collect()
        if ready:
            for command in new:
                if isinstance(command, PreparePrompt):
                    self.ready(command.item_id, ms)
        return new

    def ready(self, item_id: int, ms: int) -> None:
        samples = (np.ones(ms * 8, dtype=np.int16) * 1000).astype(np.int16)
        self.session.prompt_ready(item_id, samples)

    def tick(self, n: int = 1) -> list[Command]:
        new: list[Command] = []
        for _ in range(n):
            self.now += TICK
            self.frames.append(self.session.next_frame(self.now))
            timer = self.session.get_timer()
            if timer is not None and self.now >= timer:
                self.session.handle_timer(self.now)
            new.extend(self.collect())
        return new

    def press(self, key: str) -> list[Command]:
        self.session.key_pressed(key, self.now)
        return self.collect()


def speak(text: str = "Press 1 for sales, 2 for support.", **extra: Any) -> dict[str, Any]:
    return {"type": "speak", "session_id": SID, "text": text, **extra}


def test_start_sends_session_start_once() -> None:
    call = Call()
    call.session.start(call.now)
    assert call.events() == ["session_start"]


def test_a_prompt_plays_with_assistant_speak_then_speech_ended() -> None:
    call = Call()
    call.respond(speak(), ms=100)
    call.tick(10)
    assert call.events() == ["session_start", "assistant_speak", "assistant_speech_ended"]
    speak_event = next(c.event for c in call.commands
                       if isinstance(c, DeliverEvent) and c.event.type == "assistant_speak")
    assert speak_event.duration_ms == 100  # type: ignore[attr-defined]
    assert speak_event.speech_started_at == round((100.02 + 1_700_000_000.0) * 1000)  # type: ignore[attr-defined]
    assert sum(f is not None for f in call.frames) == 5


def test_a_key_press_during_a_prompt_is_delivered_and_cuts_the_prompt() -> None:
    call = Call()
    call.respond(speak())
    call.tick(5)
    new = call.press("1")
    assert [c.event.type for c in new if isinstance(c, DeliverEvent)] == [
        "dtmf_received", "assistant_speech_ended"]
    assert new[0].event.digit == "1"  # type: ignore[union-attr]
    call.frames.clear()
    call.tick(3)
    assert call.frames == [None, None, None]


@pytest.mark.parametrize("strategy", ["none", "manual"])
def test_a_key_press_is_delivered_but_does_not_cut_a_protected_prompt(strategy: str) -> None:
    call = Call()
    call.respond(speak(barge_in={"strategy": strategy}))
    call.tick(5)
    new = call.press("5")
    assert [c.event.type for c in new if isinstance(c, DeliverEvent)] == ["dtmf_received"]
    call.tick(1)
    assert call.frames[-1] is not None


def test_manual_prompt_stops_on_the_barge_in_action() -> None:
    call = Call()
    call.respond(speak(barge_in={"strategy": "manual"}))
    call.tick(2)
    new = call.respond({"type": "barge_in", "session_id": SID})
    assert [c.event.type for c in new if isinstance(c, DeliverEvent)] == ["assistant_speech_ended"]


def test_allow_after_ms_protects_the_start_of_a_prompt() -> None:
    call = Call()
    call.respond(speak(barge_in={"strategy": "minimum_characters", "allow_after_ms": 200}))
    call.tick(3)  # 40 ms into the prompt
    assert "assistant_speech_ended" not in [
        c.event.type for c in call.press("1") if isinstance(c, DeliverEvent)]
    call.tick(10)  # 240 ms in
    assert "assistant_speech_ended" in [
        c.event.type for c in call.press("2") if isinstance(c, DeliverEvent)]
    assert call.events().count("dtmf_received") == 2


def test_every_key_is_delivered_once_even_while_nothing_plays_or_a_transfer_runs() -> None:
    call = Call()
    for key in "0123456789*#":
        call.press(key)
    call.respond({"type": "transfer", "session_id": SID, "target_phone_number": "+49211100200"})
    call.press("7")
    digits = [c.event.digit for c in call.commands  # type: ignore[attr-defined]
              if isinstance(c, DeliverEvent) and c.event.type == "dtmf_received"]
    assert "".join(digits) == "0123456789*#7"


@pytest.mark.parametrize("key", ["A", "D", "x"])
def test_keys_that_are_not_digits_are_noted_not_delivered(key: str) -> None:
    call = Call()
    new = call.press(key)
    assert not [c for c in new if isinstance(c, DeliverEvent)]
    assert isinstance(new[0], Note)


def test_goodbye_then_hangup_waits_for_the_goodbye() -> None:
    call = Call()
    new = call.respond([speak("Goodbye"), {"type": "hangup", "session_id": SID}], ms=100)
    assert not [c for c in new if isinstance(c, HangUp)]
    hangups = [c for c in call.tick(10) if isinstance(c, HangUp)]
    assert len(hangups) == 1
    assert sum(f is not None for f in call.frames) == 5  # the whole goodbye played first


def test_hangup_in_a_later_response_cuts_earlier_playback_at_once() -> None:
    call = Call()
    call.respond(speak(), ms=2000)
    call.tick(3)
    new = call.respond({"type": "hangup", "session_id": SID})
    assert [type(c).__name__ for c in new] == ["DeliverEvent", "HangUp"]
    assert call.session.ending


def test_cutting_a_goodbye_with_a_key_does_not_cancel_the_hangup() -> None:
    call = Call()
    call.respond([speak("Goodbye"), {"type": "hangup", "session_id": SID}], ms=1000)
    call.tick(2)
    call.press("9")
    assert [c for c in call.tick(1) if isinstance(c, HangUp)]


def test_prompts_play_in_order_even_when_prepared_out_of_order() -> None:
    call = Call()
    new = call.respond([speak("first"), speak("second")], ready=False)
    first, second = (c.item_id for c in new if isinstance(c, PreparePrompt))
    call.ready(second, 40)
    call.tick(2)
    assert call.frames == [None, None]
    call.ready(first, 40)
    call.tick(4)
    spoken = [c.event.text for c in call.commands  # type: ignore[attr-defined]
              if isinstance(c, DeliverEvent) and c.event.type == "assistant_speak"]
    assert spoken == ["first", "second"]
    assert call.events().count("assistant_speech_ended") == 1


def test_user_input_timeout_fires_after_the_prompt_ends() -> None:
    call = Call()
    call.respond(speak(user_input_timeout_seconds=2), ms=100)
    call.tick(5 + 99)
    assert "user_input_timeout" not in call.events()
    call.tick(2)
    assert call.events()[-1] == "user_input_timeout"
    call.tick(200)
    assert call.events().count("user_input_timeout") == 1


def test_a_key_press_cancels_the_user_input_timeout() -> None:
    call = Call()
    call.respond(speak(user_input_timeout_seconds=1), ms=100)
    call.tick(10)
    call.press("3")
    call.tick(100)
    assert "user_input_timeout" not in call.events()


def test_transfer_success_hangs_up_and_failure_with_timeout_restarts_the_session() -> None:
    call = Call()
    new = call.respond({"type": "transfer", "session_id": SID, "transfer_to": "+49211100200",
                        "timeout": 20})
    transfer = next(c for c in new if isinstance(c, Transfer))
    assert transfer.target == "+49211100200" and transfer.timeout_s == 20
    call.session.transfer_result(False, "486 Busy Here", call.now)
    assert call.events()[-1] == "session_start"
    call.respond({"type": "transfer", "session_id": SID, "target_phone_number": "+49211100201"})
    call.session.transfer_result(True, "202 Accepted", call.now)
    assert isinstance(call.collect()[-1], HangUp)


def test_transfer_failure_without_timeout_ends_the_call() -> None:
    call = Call()
    call.respond({"type": "transfer", "session_id": SID, "target_phone_number": "+49211100200"})
    call.session.transfer_result(False, "603 Decline", call.now)
    assert isinstance(call.collect()[-1], HangUp)


def test_consecutive_failures_play_the_fallback_then_hang_up() -> None:
    call = Call(max_consecutive_failures=2, fallback_text="Sorry.")
    call.session.delivery_failed("timeout after 5.0 s", call.now)
    call.session.delivery_succeeded()
    call.session.delivery_failed("HTTP 500", call.now)
    assert not [c for c in call.collect() if isinstance(c, PreparePrompt)]
    call.session.delivery_failed("invalid JSON", call.now)
    prepare = [c for c in call.collect() if isinstance(c, PreparePrompt)]
    assert len(prepare) == 1 and prepare[0].action.text == "Sorry."  # type: ignore[union-attr]
    call.ready(prepare[0].item_id, 100)
    assert [c for c in call.tick(6) if isinstance(c, HangUp)]
    assert call.respond(speak("too late")) and call.session.ending


def test_session_end_is_sent_exactly_once_and_silences_the_call() -> None:
    call = Call()
    call.respond(speak())
    call.tick(2)
    call.session.line_ended("caller hung up", call.now)
    call.session.line_ended("BYE retransmission", call.now)
    call.collect()
    call.press("1")
    assert call.events().count("session_end") == 1
    assert call.events()[-1] == "session_end"
    assert call.session.next_frame(call.now) is None


def test_a_failed_prompt_is_skipped_and_the_next_one_plays() -> None:
    call = Call()
    new = call.respond([speak("broken"), speak("fine")], ready=False)
    broken, fine = (c.item_id for c in new if isinstance(c, PreparePrompt))
    call.session.prompt_failed(broken, "TTS provider azure is not configured", call.now)
    call.ready(fine, 40)
    call.tick(3)
    assert [c.event.text for c in call.commands  # type: ignore[attr-defined]
            if isinstance(c, DeliverEvent) and c.event.type == "assistant_speak"] == ["fine"]


def test_background_audio_is_mixed_under_silence_and_stopped() -> None:
    call = Call()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x00\x00")
    wav_b64 = base64.b64encode(buffer.getvalue()).decode()
    new = call.respond({"type": "mix_audio", "session_id": SID, "audio": wav_b64, "volume": 0.5},
                       ms=30)
    assert [c for c in new if isinstance(c, PreparePrompt)]
    call.tick(1)
    assert call.frames[-1] is not None and int(call.frames[-1][0]) == 500
    call.respond({"type": "mix_audio", "session_id": SID, "stop": True})
    call.tick(1)
    assert call.frames[-1] is None


def test_sms_and_voice_to_voice_are_declined_clearly() -> None:
    call = Call()
    call.respond([{"type": "send_sms", "session_id": SID, "phone_number": "+4917", "message": "x"},
                  {"type": "configure_voice_to_voice", "session_id": SID, "system_prompt": "p"},
                  {"type": "configure_transcription", "session_id": SID, "languages": ["de-DE"]}])
    assert call.events()[-1] == "sms_failed"
    notes = [c.message for c in call.commands if isinstance(c, Note)]
    assert any("configure_voice_to_voice" in n for n in notes)
    assert any(isinstance(c, ConfigureListening) for c in call.commands)


# -- listening: voice onset, transcripts, barge-in by speech ---------------------------------


def user_speak(call: Call) -> list[Any]:
    return [c.event for c in call.commands
            if isinstance(c, DeliverEvent) and c.event.type == "user_speak"]


def test_immediate_prompt_stops_at_voice_onset_and_the_utterance_says_it_barged_in() -> None:
    call = Call()
    call.respond(speak(barge_in={"strategy": "immediate", "allow_after_ms": 100}))
    call.tick(3)  # 60 ms in: still protected
    call.session.speech_started(call.now)
    assert "assistant_speech_ended" not in call.events()
    call.tick(5)
    call.session.speech_started(call.now)
    call.collect()
    assert call.events()[-1] == "assistant_speech_ended"
    call.session.utterance("I want sales", call.now)
    call.collect()
    (event,) = user_speak(call)
    assert event.text == "I want sales" and event.barged_in is True


def test_minimum_characters_waits_for_enough_recognised_text() -> None:
    call = Call()
    call.respond(speak(barge_in={"strategy": "minimum_characters", "minimum_characters": 5}))
    call.tick(2)
    call.session.speech_started(call.now)
    call.session.partial_transcript("uhm", call.now)
    call.collect()
    assert "assistant_speech_ended" not in call.events()  # noise and short sounds do not cut
    call.session.partial_transcript("sales please", call.now)
    call.session.utterance("sales please", call.now)
    call.collect()
    assert call.events()[-2:] == ["assistant_speech_ended", "user_speak"]
    assert user_speak(call)[0].barged_in is True


def test_a_final_transcript_alone_can_cut_a_minimum_characters_prompt() -> None:
    call = Call()
    call.respond(speak())
    call.tick(2)
    call.session.utterance("support", call.now)
    call.collect()
    assert call.events()[-2:] == ["assistant_speech_ended", "user_speak"]


@pytest.mark.parametrize("strategy", ["none", "manual"])
def test_speech_never_cuts_a_protected_prompt(strategy: str) -> None:
    call = Call()
    call.respond(speak(barge_in={"strategy": strategy}))
    call.tick(2)
    call.session.speech_started(call.now)
    call.session.partial_transcript("talk to an agent now", call.now)
    call.session.utterance("talk to an agent now", call.now)
    call.collect()
    assert "assistant_speech_ended" not in call.events()
    (event,) = user_speak(call)
    assert event.barged_in is None and "barged_in" not in event.model_dump(exclude_none=True)
    call.tick(1)
    assert call.frames[-1] is not None  # still playing


def test_speech_after_the_prompt_is_not_a_barge_in() -> None:
    call = Call()
    call.respond(speak(), ms=40)
    call.tick(3)
    call.session.speech_started(call.now)
    call.session.utterance("yes", call.now)
    call.collect()
    assert user_speak(call)[0].barged_in is None


def test_voice_activity_cancels_the_user_input_timeout() -> None:
    call = Call()
    call.respond(speak(user_input_timeout_seconds=1), ms=40)
    call.tick(3)
    call.session.speech_started(call.now)
    call.tick(100)
    assert "user_input_timeout" not in call.events()


def test_speech_started_is_only_sent_where_the_transport_has_it() -> None:
    quiet, chatty = Call(), Call(emit_speech_started=True)
    for call in (quiet, chatty):
        call.session.speech_started(call.now)
        call.collect()
    assert "user_speech_started" not in quiet.events()
    assert chatty.events()[-1] == "user_speech_started"


def test_an_empty_transcript_is_no_user_speak() -> None:
    call = Call()
    call.session.speech_started(call.now)
    call.session.utterance("   ", call.now)
    call.collect()
    assert user_speak(call) == []


def test_vad_settings_on_speak_and_configure_transcription_reach_the_listener() -> None:
    call = Call()
    call.respond(speak(vad={"end_of_turn_silence_ms": 400}))
    call.respond({"type": "configure_transcription", "session_id": SID,
                  "vad": {"end_of_turn_silence_ms": 900}})
    settings = [c.milliseconds for c in call.commands if isinstance(c, SetEndOfTurnSilence)]
    assert settings == [400, 900]
