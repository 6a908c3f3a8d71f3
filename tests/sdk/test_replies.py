"""Action helpers: validated where they are written, bound to a session when used."""

from __future__ import annotations

import pytest

from voxflow.errors import ProtocolError
from voxflow.protocol import (
    BargeInStrategy,
    SessionStartEvent,
    SpeakAction,
    TransferAction,
    to_wire,
)
from voxflow.protocol.session import Session
from voxflow.sdk import audio, barge_in, hangup, reply, speak, transfer


def test_bound_to_an_event_or_a_session_id() -> None:
    event = SessionStartEvent(session=Session(id="call-7"))
    action = transfer("+49211100200", timeout=30).to(event)
    assert action == TransferAction(session_id="call-7", target_phone_number="+49211100200",
                                    timeout=30)
    assert hangup().to("call-8").session_id == "call-8"


def test_speak_options_reach_the_wire() -> None:
    action = speak("Press 1", user_input_timeout_seconds=5,
                   barge_in={"strategy": "immediate"}, tts={"provider": "espeak"}).to("s")
    assert isinstance(action, SpeakAction)
    assert action.barge_in is not None and action.barge_in.strategy is BargeInStrategy.IMMEDIATE
    assert to_wire(action)["tts"] == {"provider": "espeak"}


def test_mistakes_fail_where_the_reply_is_written() -> None:
    with pytest.raises(ProtocolError, match="target_phone_number"):
        transfer("sales")
    with pytest.raises(ProtocolError, match="exactly one of 'text' or 'ssml'"):
        speak()
    with pytest.raises(ProtocolError, match="audio"):
        audio("bm90IGEgd2F2")
    with pytest.raises(ProtocolError, match="teleport"):
        reply("teleport")


def test_repr_reads_like_the_call() -> None:
    assert repr(transfer("+49211100200")) == "transfer(target_phone_number='+49211100200')"
    assert repr(barge_in()) == "barge_in()"
