"""Handler registration (keywords, decorators, sync and async), return coercion, dispatch rules."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from voxflow.errors import HandlerError, ProtocolError
from voxflow.protocol import (
    BaseEvent,
    DtmfReceivedEvent,
    HangupAction,
    SpeakAction,
    TransferAction,
    UserSpeakEvent,
    parse_event,
)
from voxflow.sdk import Assistant, DigitCollector, Menu, hangup, speak, transfer

SID = "550e8400-e29b-41d4-a716-446655440000"
Wire = Callable[..., dict[str, Any]]


async def test_keyword_handler_string_becomes_speak(wire_event: Wire) -> None:
    assistant = Assistant(on_session_start=lambda event: "Welcome!")
    assert await assistant.handle(wire_event("session_start")) == [
        SpeakAction(session_id=SID, text="Welcome!")
    ]


async def test_decorated_async_handler(wire_event: Wire) -> None:
    assistant = Assistant()

    @assistant.on_dtmf_received
    async def pressed(event: DtmfReceivedEvent) -> Any:
        await asyncio.sleep(0)
        return transfer("+49211100200") if event.digit == "1" else None

    assert pressed.__name__ == "pressed"  # the decorator hands the function back
    assert await assistant.handle(wire_event("dtmf_received", digit="1")) == [
        TransferAction(session_id=SID, target_phone_number="+49211100200")
    ]
    assert await assistant.handle(wire_event("dtmf_received", digit="2")) == []


def test_handle_sync_runs_async_handlers(wire_event: Wire) -> None:
    async def greet(event: BaseEvent) -> str:
        return "hello"

    assistant = Assistant(on_session_start=greet)
    assert assistant.handle_sync(wire_event("session_start")) == [
        SpeakAction(session_id=SID, text="hello")
    ]


async def test_accepts_models_dicts_and_json_text(wire_event: Wire) -> None:
    import json

    assistant = Assistant(on_session_start=lambda event: "hi")
    model = parse_event(wire_event("session_start"))
    as_text = json.dumps(wire_event("session_start"))
    for given in (model, wire_event("session_start"), as_text, as_text.encode()):
        assert await assistant.handle(given) == [SpeakAction(session_id=SID, text="hi")]


@pytest.mark.parametrize(("returned", "expected"), [
    (None, []),
    ("Hi", [SpeakAction(session_id=SID, text="Hi")]),
    (hangup(), [HangupAction(session_id=SID)]),
    (HangupAction(session_id=SID), [HangupAction(session_id=SID)]),
    ({"type": "transfer", "target_phone_number": "+49211100200"},
     [TransferAction(session_id=SID, target_phone_number="+49211100200")]),
    ({"type": "transfer", "transfer_to": "+49211100200", "session_id": SID},
     [TransferAction(session_id=SID, target_phone_number="+49211100200")]),
    (["Bye", {"type": "hangup"}], [SpeakAction(session_id=SID, text="Bye"),
                                   HangupAction(session_id=SID)]),
    (("A", [speak("B"), hangup()]), [SpeakAction(session_id=SID, text="A"),
                                      SpeakAction(session_id=SID, text="B"),
                                      HangupAction(session_id=SID)]),
])
async def test_return_coercion(wire_event: Wire, returned: Any, expected: list[Any]) -> None:
    assistant = Assistant(on_user_input_timeout=lambda event: returned)
    assert await assistant.handle(wire_event("user_input_timeout")) == expected


@pytest.mark.parametrize(("returned", "message"), [
    ({"type": "speak"}, "exactly one of 'text' or 'ssml'"),
    ({"type": "teleport"}, "unknown action type 'teleport'"),
    (["ok", {"type": "transfer"}], "target_phone_number"),
    (42, "handler returned int"),
])
async def test_invalid_return_is_a_handler_error_with_session_id(
    wire_event: Wire, returned: Any, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    assistant = Assistant(on_user_input_timeout=lambda event: returned)
    with pytest.raises(HandlerError, match=message) as raised:
        await assistant.handle(wire_event("user_input_timeout"))
    assert raised.value.session_id == SID
    assert any(SID in record.getMessage() for record in caplog.records)


async def test_raising_handler_is_logged_and_wrapped(
    wire_event: Wire, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: BaseEvent) -> str:
        raise KeyError("no such customer")

    assistant = Assistant(on_session_start=broken)
    with pytest.raises(HandlerError, match="on_session_start handler raised KeyError") as raised:
        await assistant.handle(wire_event("session_start"))
    assert raised.value.session_id == SID
    assert isinstance(raised.value.__cause__, KeyError)
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert SID in record.getMessage() and "no such customer" in record.getMessage()


async def _broken(event: BaseEvent) -> str:
    raise ValueError("boom")


async def test_raising_async_handler_is_wrapped_too(wire_event: Wire) -> None:
    assistant = Assistant(on_session_start=_broken)
    with pytest.raises(HandlerError, match="ValueError"):
        await assistant.handle(wire_event("session_start"))


def test_raising_async_handler_is_wrapped_in_handle_sync(wire_event: Wire) -> None:
    assistant = Assistant(on_session_start=_broken)
    with pytest.raises(HandlerError, match="ValueError"):
        assistant.handle_sync(wire_event("session_start"))


async def test_handle_sync_with_async_handler_inside_a_loop_says_what_to_do(
    wire_event: Wire, caplog: pytest.LogCaptureFixture
) -> None:
    assistant = Assistant(on_session_start=_broken)
    with pytest.raises(HandlerError):
        assistant.handle_sync(wire_event("session_start"))
    assert any("await assistant.handle" in r.getMessage() for r in caplog.records)


async def test_invalid_event_is_a_protocol_error(wire_event: Wire) -> None:
    assistant = Assistant(on_session_start=lambda event: "hi")
    with pytest.raises(ProtocolError, match=r"dtmf_received\.digit"):
        await assistant.handle(wire_event("dtmf_received", digit="A"))


@pytest.mark.parametrize("kind", ["session_end", "user_speech_started"])
async def test_responses_to_session_end_and_speech_started_are_dropped(
    wire_event: Wire, kind: str
) -> None:
    called: list[str] = []

    def handler(event: BaseEvent) -> str:
        called.append(event.session.id)
        return "nobody will hear this"

    assistant = Assistant(on_session_end=handler, on_user_speech_started=handler)
    assert await assistant.handle(wire_event(kind)) == []
    assert called == [SID]


async def test_barged_in_user_speak_also_calls_the_legacy_barge_in_handler(
    wire_event: Wire,
) -> None:
    assistant = Assistant(
        on_user_speak=lambda event: f"heard {event.text}",
        on_user_barge_in=lambda event: "sorry, go ahead",
    )
    interrupted = await assistant.handle(wire_event("user_speak", text="stop", barged_in=True))
    assert [a.text for a in interrupted if isinstance(a, SpeakAction)] == [
        "heard stop", "sorry, go ahead"]
    calm = await assistant.handle(wire_event("user_speak", text="hello"))
    assert [a.text for a in calm if isinstance(a, SpeakAction)] == ["heard hello"]
    legacy = await assistant.handle(wire_event("user_barge_in", text="stop"))
    assert [a.text for a in legacy if isinstance(a, SpeakAction)] == ["sorry, go ahead"]


def test_unknown_handler_keyword_is_rejected() -> None:
    with pytest.raises(TypeError, match="on_dtmf_recieved"):
        Assistant(on_dtmf_recieved=lambda event: None)  # type: ignore[call-arg]


def test_handler_must_be_callable() -> None:
    with pytest.raises(TypeError, match="must be callable"):
        Assistant(on_session_start="Welcome")  # type: ignore[arg-type]


def test_at_most_two_signing_secrets() -> None:
    with pytest.raises(ValueError, match="at most two"):
        Assistant(signing_secrets=["a", "b", "c"])


def test_handles_reports_registration() -> None:
    assistant = Assistant(on_user_speak=lambda event: None)
    assert assistant.handles("user_speak")
    assert not assistant.handles("dtmf_received")


async def test_session_end_drops_state_of_registered_and_tracked_helpers(
    wire_event: Wire,
) -> None:
    menu = Menu("Press 1.", {"1": "one"})
    collector = DigitCollector(lambda event, digits: digits, max_digits=3)

    def typed(event: DtmfReceivedEvent) -> Any:
        return collector(event)  # used inside a handler, hence tracked explicitly

    assistant = Assistant(on_session_start=menu, on_dtmf_received=typed)
    assistant.track(collector)
    await assistant.handle(wire_event("session_start"))
    await assistant.handle(wire_event("dtmf_received", digit="4"))
    assert menu.sessions == {SID} and collector.pending(SID) == 1
    await assistant.handle(wire_event("session_end"))
    assert menu.sessions == frozenset() and collector.sessions == frozenset()


def test_user_speak_barged_in_is_typed(wire_event: Wire) -> None:
    event = parse_event(wire_event("user_speak", text="x", barged_in=True))
    assert isinstance(event, UserSpeakEvent) and event.barged_in is True
