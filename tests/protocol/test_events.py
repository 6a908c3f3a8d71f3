import json
from typing import Any

import pytest

from voxflow.errors import ProtocolError
from voxflow.protocol import (
    EVENT_MODELS,
    AssistantSpeakEvent,
    Direction,
    DtmfReceivedEvent,
    EventType,
    UserSpeakEvent,
    parse_event,
    to_wire,
)

SESSION = {
    "id": "550e8400-e29b-41d4-a716-446655440000",
    "account_id": "account-123",
    "phone_number": "+1234567890",
    "direction": "inbound",
    "from_phone_number": "+9876543210",
    "to_phone_number": "+1234567890",
}

# One valid example of every event type, as it travels on the wire.
EXAMPLES: dict[str, dict[str, Any]] = {
    "session_start": {"type": "session_start", "session": SESSION},
    "user_speech_started": {"type": "user_speech_started", "session": SESSION},
    "user_speak": {"type": "user_speak", "text": "sales please", "barged_in": True,
                   "session": SESSION},
    "user_barge_in": {"type": "user_barge_in", "text": "stop", "session": SESSION},
    "dtmf_received": {"type": "dtmf_received", "digit": "1", "session": SESSION},
    "assistant_speak": {"type": "assistant_speak", "text": "Hello", "duration_ms": 1200,
                        "speech_started_at": 1764000000000, "session": SESSION},
    "assistant_speech_ended": {"type": "assistant_speech_ended", "session": SESSION},
    "user_input_timeout": {"type": "user_input_timeout", "session": SESSION},
    "session_end": {"type": "session_end", "session": SESSION},
    "sms_failed": {"type": "sms_failed", "reason": "no SMS provider", "session": SESSION},
}


def test_the_dtmf_documentation_example_parses() -> None:
    text = """{"type": "dtmf_received", "digit": "1",
     "session": {"id": "550e8400-e29b-41d4-a716-446655440000", "account_id": "account-123",
       "phone_number": "+1234567890", "direction": "inbound",
       "from_phone_number": "+9876543210", "to_phone_number": "+1234567890"}}"""
    event = parse_event(text)
    assert isinstance(event, DtmfReceivedEvent)
    assert event.digit == "1"
    assert event.session_id == "550e8400-e29b-41d4-a716-446655440000"
    assert event.session.direction is Direction.INBOUND
    assert event.session.from_phone_number == "+9876543210"


def test_there_is_an_example_for_every_event_model_and_type() -> None:
    assert set(EXAMPLES) == {t.value for t in EventType}
    assert {m.model_fields["type"].default for m in EVENT_MODELS} == set(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_event_round_trips(name: str) -> None:
    wire = EXAMPLES[name]
    event = parse_event(wire)
    assert event.type == name
    assert to_wire(event) == wire
    assert parse_event(json.dumps(to_wire(event))) == event
    assert next(iter(to_wire(event))) == "type"


@pytest.mark.parametrize("digit", list("0123456789*#"))
def test_every_keypad_digit_is_accepted(digit: str) -> None:
    event = parse_event({**EXAMPLES["dtmf_received"], "digit": digit})
    assert isinstance(event, DtmfReceivedEvent) and event.digit == digit


@pytest.mark.parametrize("digit", ["A", "B", "C", "D", "12", "", " 1", "x", "a"])
def test_other_digits_are_rejected_with_a_clear_message(digit: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_event({**EXAMPLES["dtmf_received"], "digit": digit})
    assert str(info.value) == f"dtmf_received.digit: {digit!r} is not one of 0-9, *, #"


def test_a_non_string_digit_is_rejected() -> None:
    with pytest.raises(ProtocolError, match=r"^dtmf_received\.digit: "):
        parse_event({**EXAMPLES["dtmf_received"], "digit": 1})


def test_events_tolerate_unknown_fields_and_keep_them() -> None:
    wire = {**EXAMPLES["user_speak"], "confidence": 0.93,
            "session": {**SESSION, "region": "eu"}}
    event = parse_event(wire)
    assert isinstance(event, UserSpeakEvent)
    assert to_wire(event)["confidence"] == 0.93
    assert to_wire(event)["session"]["region"] == "eu"


def test_a_minimal_session_object_parses() -> None:
    event = parse_event({"type": "session_end", "session": {"id": "abc"}})
    assert event.session.id == "abc"
    assert event.session.direction is Direction.INBOUND


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "bogus", "session": SESSION}, "type: unknown event type 'bogus'"),
        ({"session": SESSION}, "type: field required"),
        ({"type": "session_end"}, "session_end.session: field required"),
        ({"type": "user_speak", "session": SESSION}, "user_speak.text: field required"),
        ({"type": "session_end", "session": {"account_id": "a"}},
         "session_end.session.id: field required"),
        ({"type": "session_end", "session": {**SESSION, "direction": "sideways"}},
         "session_end.session.direction: "),
        ({"type": "assistant_speak", "session": SESSION, "speech_started_at": 1},
         "assistant_speak.duration_ms: field required"),
        ("{not json", "invalid JSON"),
        ([1, 2], "event: expected a JSON object"),
    ],
)
def test_invalid_events_name_the_field(data: Any, message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_event(data)
    assert str(info.value).startswith(message)


def test_assistant_speak_carries_timing() -> None:
    event = parse_event(EXAMPLES["assistant_speak"])
    assert isinstance(event, AssistantSpeakEvent)
    assert event.duration_ms == 1200 and event.speech_started_at == 1764000000000
