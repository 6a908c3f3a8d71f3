"""Events: what voxflow sends to the assistant, one JSON object per event.

Events tolerate unknown extra fields (forward compatibility): a newer engine may add keys and an
older assistant must still parse what it knows.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from voxflow.protocol.session import Session

#: The keys a ``dtmf_received`` event may carry, in keypad order.
DTMF_DIGITS = "0123456789*#"


class BaseEvent(BaseModel):
    """Fields every event has."""

    model_config = ConfigDict(extra="allow", frozen=True)

    session: Session

    @property
    def session_id(self) -> str:
        """The session id to echo in actions."""
        return self.session.id


class SessionStartEvent(BaseEvent):
    """The call was answered (or came back after a failed transfer with ``timeout``)."""

    type: Literal["session_start"] = "session_start"


class UserSpeechStartedEvent(BaseEvent):
    """Voice activity started (WebSocket integration only); responses are ignored."""

    type: Literal["user_speech_started"] = "user_speech_started"


class UserSpeakEvent(BaseEvent):
    """A caller utterance was recognised; ``barged_in`` when it interrupted playback."""

    type: Literal["user_speak"] = "user_speak"
    text: str
    barged_in: bool | None = None


class UserBargeInEvent(BaseEvent):
    """Legacy event of older SDKs; voxflow never sends it but accepts it."""

    type: Literal["user_barge_in"] = "user_barge_in"
    text: str = ""


class DtmfReceivedEvent(BaseEvent):
    """One key press: exactly one event per press, at any moment of the call."""

    type: Literal["dtmf_received"] = "dtmf_received"
    digit: str

    @field_validator("digit")
    @classmethod
    def _one_keypad_key(cls, value: str) -> str:
        if len(value) != 1 or value not in DTMF_DIGITS:
            raise ValueError(f"{value!r} is not one of 0-9, *, #")
        return value


class AssistantSpeakEvent(BaseEvent):
    """A ``speak`` or ``audio`` item started playing."""

    type: Literal["assistant_speak"] = "assistant_speak"
    text: str | None = None
    ssml: str | None = None
    duration_ms: float
    speech_started_at: int = Field(description="Unix time in milliseconds of the first frame")


class AssistantSpeechEndedEvent(BaseEvent):
    """The playback queue ran empty, by completion or interruption."""

    type: Literal["assistant_speech_ended"] = "assistant_speech_ended"


class UserInputTimeoutEvent(BaseEvent):
    """Nothing was said or pressed within ``user_input_timeout_seconds`` after a prompt."""

    type: Literal["user_input_timeout"] = "user_input_timeout"


class SessionEndEvent(BaseEvent):
    """The call is over; sent exactly once per session. Responses are ignored."""

    type: Literal["session_end"] = "session_end"


class SmsFailedEvent(BaseEvent):
    """A ``send_sms`` action could not be carried out."""

    type: Literal["sms_failed"] = "sms_failed"
    reason: str = ""


Event = Annotated[
    SessionStartEvent
    | UserSpeechStartedEvent
    | UserSpeakEvent
    | UserBargeInEvent
    | DtmfReceivedEvent
    | AssistantSpeakEvent
    | AssistantSpeechEndedEvent
    | UserInputTimeoutEvent
    | SessionEndEvent
    | SmsFailedEvent,
    Field(discriminator="type"),
]
"""Any event, discriminated by ``type``."""

EVENT_MODELS: tuple[type[BaseEvent], ...] = (
    SessionStartEvent,
    UserSpeechStartedEvent,
    UserSpeakEvent,
    UserBargeInEvent,
    DtmfReceivedEvent,
    AssistantSpeakEvent,
    AssistantSpeechEndedEvent,
    UserInputTimeoutEvent,
    SessionEndEvent,
    SmsFailedEvent,
)
