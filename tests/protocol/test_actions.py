import base64
import io
import json
import logging
import wave
from typing import Any

import pytest

from voxflow.errors import ProtocolError
from voxflow.protocol import (
    ACTION_MODELS,
    ActionType,
    BargeInStrategy,
    SpeakAction,
    TransferAction,
    TtsProvider,
    dump_actions,
    parse_action,
    parse_actions,
    to_wire,
)

SID = "550e8400-e29b-41d4-a716-446655440000"


def _wav_base64() -> str:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(b"\x00\x00" * 160)
    return base64.b64encode(buffer.getvalue()).decode()


WAV = _wav_base64()

# A full example of every action type in canonical form.
EXAMPLES: dict[str, dict[str, Any]] = {
    "speak": {
        "type": "speak", "session_id": SID, "text": "Press 1 for sales.",
        "tts": {"provider": "azure", "language": "en-US", "voice": "en-US-JennyNeural"},
        "barge_in": {"strategy": "minimum_characters", "minimum_characters": 5,
                     "allow_after_ms": 300},
        "user_input_timeout_seconds": 5, "vad": {"end_of_turn_silence_ms": 600},
    },
    "audio": {"type": "audio", "session_id": SID, "audio": WAV,
              "barge_in": {"strategy": "none", "minimum_characters": 3, "allow_after_ms": 0}},
    "mix_audio": {"type": "mix_audio", "session_id": SID, "audio": WAV, "volume": 0.2},
    "hangup": {"type": "hangup", "session_id": SID},
    "transfer": {"type": "transfer", "session_id": SID, "target_phone_number": "+49211100200",
                 "caller_id_name": "Hotline", "caller_id_number": "+49211100100",
                 "timeout": 30},
    "barge_in": {"type": "barge_in", "session_id": SID},
    "configure_transcription": {
        "type": "configure_transcription", "session_id": SID, "provider": "DEEPGRAM",
        "languages": ["de-DE", "en-US"], "custom_vocabulary": ["voxflow"],
        "vad": {"end_of_turn_silence_ms": 300},
    },
    "configure_voice_to_voice": {"type": "configure_voice_to_voice", "session_id": SID,
                                 "system_prompt": "Be brief.", "temperature": 0.5},
    "send_sms": {"type": "send_sms", "session_id": SID, "phone_number": "4915790000687",
                 "message": "Your code is 1234"},
}


def test_there_is_an_example_for_every_action_model_and_type() -> None:
    assert set(EXAMPLES) == {t.value for t in ActionType}
    assert {m.model_fields["type"].default for m in ACTION_MODELS} == set(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_action_round_trips(name: str) -> None:
    wire = EXAMPLES[name]
    action = parse_action(wire)
    assert action.type == name
    assert to_wire(action) == wire
    assert parse_actions(json.dumps(to_wire(action))) == [action]


def test_an_array_of_actions_round_trips_in_order() -> None:
    body = [EXAMPLES["speak"], EXAMPLES["hangup"]]
    actions = parse_actions(json.dumps(body))
    assert [a.type for a in actions] == ["speak", "hangup"]
    assert json.loads(dump_actions(actions)) == body
    assert json.loads(dump_actions(actions[:1])) == EXAMPLES["speak"]


@pytest.mark.parametrize("body", [None, b"", "", "[]", []])
def test_an_empty_response_means_no_action(body: Any) -> None:
    assert parse_actions(body) == []


@pytest.mark.parametrize("alias", ["transfer_to", "target", "target_phone_number"])
def test_transfer_target_aliases_are_emitted_canonically(alias: str) -> None:
    action = parse_action({"type": "transfer", "session_id": SID, alias: "+49211100200"})
    assert isinstance(action, TransferAction)
    assert to_wire(action) == {"type": "transfer", "session_id": SID,
                               "target_phone_number": "+49211100200"}


def test_a_speak_with_defaults_is_minimal_on_the_wire() -> None:
    action = parse_action({"type": "speak", "session_id": SID, "ssml": "<speak>Hi</speak>"})
    assert isinstance(action, SpeakAction)
    assert to_wire(action) == {"type": "speak", "session_id": SID, "ssml": "<speak>Hi</speak>"}


def test_enums_are_exposed_with_wire_values() -> None:
    speak = parse_action(EXAMPLES["speak"])
    assert isinstance(speak, SpeakAction)
    assert speak.tts is not None and speak.tts.provider is TtsProvider.AZURE
    assert speak.barge_in is not None
    assert speak.barge_in.strategy is BargeInStrategy.MINIMUM_CHARACTERS
    assert parse_action({"type": "speak", "session_id": SID, "text": "x",
                         "barge_in": {"strategy": "immediate"}}).barge_in is not None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([{"type": "speak", "text": "hi"}], "actions[0].session_id: field required"),
        ([EXAMPLES["hangup"], {"type": "hangup"}], "actions[1].session_id: field required"),
        ({"type": "speak", "session_id": SID}, "speak: exactly one of 'text' or 'ssml'"),
        ({"type": "speak", "session_id": SID, "text": "a", "ssml": "b"},
         "speak: exactly one of 'text' or 'ssml'"),
        ({"type": "speak", "session_id": SID, "text": "a", "volume": 3},
         "speak.volume: unknown field"),
        ({"type": "speak", "session_id": SID, "text": "a", "tts": {"provider": "polly"}},
         "speak.tts.provider: input should be"),
        ({"type": "speak", "session_id": SID, "text": "a", "barge_in": {"strategy": "loud"}},
         "speak.barge_in.strategy: input should be"),
        ({"type": "speak", "session_id": SID, "text": "a",
          "barge_in": {"minimum_characters": 0}},
         "speak.barge_in.minimum_characters: input should be greater than or equal to 1"),
        ({"type": "speak", "session_id": SID, "text": "a", "user_input_timeout_seconds": -1},
         "speak.user_input_timeout_seconds: "),
        ({"type": "transfer", "session_id": SID}, "transfer.target_phone_number: field required"),
        ({"type": "transfer", "session_id": SID, "target_phone_number": "sales"},
         "transfer.target_phone_number: 'sales' is not a phone number"),
        ({"type": "transfer", "session_id": SID, "target_phone_number": "+49211", "timeout": 3},
         "transfer.timeout: input should be greater than or equal to 5"),
        ({"type": "audio", "session_id": SID, "audio": "not base64!"}, "audio.audio: not valid"),
        ({"type": "audio", "session_id": SID, "audio": base64.b64encode(b"MP3...").decode()},
         "audio.audio: the decoded audio is not a WAV file"),
        ({"type": "mix_audio", "session_id": SID}, "mix_audio: 'audio' is required unless"),
        ({"type": "mix_audio", "session_id": SID, "audio": WAV, "volume": 2},
         "mix_audio.volume: "),
        ({"type": "configure_transcription", "session_id": SID, "provider": "azure"},
         "configure_transcription.provider: input should be 'AZURE'"),
        ({"type": "configure_transcription", "session_id": SID, "languages": []},
         "configure_transcription.languages: "),
        ({"type": "hangup", "session_id": ""}, "hangup.session_id: "),
        ({"type": "dance", "session_id": SID}, "type: unknown action type 'dance'"),
        ({"session_id": SID}, "type: field required"),
        ("42", "actions: expected an object or an array"),
        ("{oops", "invalid JSON"),
    ],
)
def test_invalid_actions_name_the_field(data: Any, message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_actions(data)
    assert str(info.value).startswith(message)


def test_every_problem_of_an_array_is_reported() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_actions([{"type": "hangup"}, EXAMPLES["hangup"], {"type": "nope", "session_id": SID}])
    assert info.value.problems == [
        "actions[0].session_id: field required",
        "actions[2].type: unknown action type 'nope' (expected one of "
        + ", ".join(t.value for t in ActionType) + ")",
    ]


@pytest.mark.parametrize("vad", [{"end_of_turn_silence_ms": 5}, {"end_of_turn_silence_ms": "x"},
                                 {"end_of_turn_silence_ms": 99999}, {"bogus": 1}, "fast"])
def test_invalid_vad_is_ignored_and_logged_not_rejected(
    vad: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        action = parse_action({"type": "speak", "session_id": SID, "text": "hi", "vad": vad})
    assert isinstance(action, SpeakAction)
    assert action.text == "hi" and action.vad is None
    assert "ignoring invalid vad settings" in caplog.text
