"""Actions: what the assistant asks voxflow to do, validated strictly.

Unknown fields and unknown action types are rejected with a message naming the field, so a typo
in an assistant shows up as a clear error instead of silently doing nothing. The one lenient
corner is ``vad``: the wire format says invalid values are ignored and the rest of the action runs.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from voxflow.protocol.enums import BargeInStrategy, TranscriptionProvider, TtsProvider

logger = logging.getLogger(__name__)

_PHONE_NUMBER = re.compile(r"^\+?[0-9]{2,20}$")


def _check_phone_target(value: str) -> str:
    value = value.strip()
    if _PHONE_NUMBER.match(value) or value.startswith(("sip:", "sips:", "tel:")):
        return value
    raise ValueError(
        f"{value!r} is not a phone number (E.164 digits, with or without '+') or a sip:/tel: URI"
    )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TtsConfig(_Strict):
    """Which voice speaks: ``{"provider": "azure", "language": "en-US", "voice": "..."}``."""

    provider: TtsProvider
    language: str | None = None
    voice: str | None = None


class BargeInConfig(_Strict):
    """How a prompt may be interrupted. Omitted on a prompt means the defaults below."""

    strategy: BargeInStrategy = BargeInStrategy.MINIMUM_CHARACTERS
    minimum_characters: int = Field(default=3, ge=1, le=100)
    allow_after_ms: int = Field(default=0, ge=0, le=10_000)


class VadConfig(_Strict):
    """End-of-turn detection; an invalid value is ignored (logged) rather than rejected."""

    end_of_turn_silence_ms: int | None = Field(default=None, ge=150, le=2000)


def _lenient_vad(value: Any, handler: ValidatorFunctionWrapHandler) -> VadConfig | None:
    try:
        result: VadConfig | None = handler(value)
    except ValidationError as exc:
        logger.warning("ignoring invalid vad settings %r: %s", value, exc.errors()[0]["msg"])
        return None
    return result


class BaseAction(_Strict):
    """Fields every action has."""

    session_id: str = Field(min_length=1)


class SpeakAction(BaseAction):
    """Say ``text`` or ``ssml`` (exactly one) through TTS."""

    type: Literal["speak"] = "speak"
    text: str | None = None
    ssml: str | None = None
    tts: TtsConfig | None = None
    barge_in: BargeInConfig | None = None
    user_input_timeout_seconds: float | None = Field(default=None, ge=0)
    vad: VadConfig | None = None

    _vad = field_validator("vad", mode="wrap")(_lenient_vad)

    @model_validator(mode="after")
    def _exactly_one_of_text_or_ssml(self) -> SpeakAction:
        if (self.text is None) == (self.ssml is None):
            raise ValueError("exactly one of 'text' or 'ssml' is required")
        return self


def _check_base64_wav(value: str) -> str:
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not valid base64 ({exc})") from None
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("the decoded audio is not a WAV file (no RIFF/WAVE header)")
    return value


class AudioAction(BaseAction):
    """Play a WAV file given as base64 (any PCM/G.711 WAV; resampled as needed)."""

    type: Literal["audio"] = "audio"
    audio: str
    barge_in: BargeInConfig | None = None

    _audio = field_validator("audio")(_check_base64_wav)


class MixAudioAction(BaseAction):
    """Loop background audio under everything until stopped; a new loop replaces the old."""

    type: Literal["mix_audio"] = "mix_audio"
    audio: str | None = None
    volume: float = Field(default=0.5, ge=0.0, le=1.0)
    stop: bool | None = None

    @field_validator("audio")
    @classmethod
    def _wav(cls, value: str | None) -> str | None:
        return None if value is None else _check_base64_wav(value)

    @model_validator(mode="after")
    def _audio_unless_stop(self) -> MixAudioAction:
        if not self.stop and self.audio is None:
            raise ValueError("'audio' is required unless 'stop' is true")
        return self


class HangupAction(BaseAction):
    """End the call (after the items queued before it in the same response have played)."""

    type: Literal["hangup"] = "hangup"


class TransferAction(BaseAction):
    """Transfer the caller to another number.

    The target is accepted as ``target_phone_number`` (canonical), ``transfer_to`` (used by the
    AI Flow DTMF documentation) or ``target``; it is always emitted as ``target_phone_number``.
    """

    type: Literal["transfer"] = "transfer"
    target_phone_number: str = Field(
        validation_alias=AliasChoices("target_phone_number", "transfer_to", "target")
    )
    caller_id_name: str | None = None
    caller_id_number: str | None = None
    timeout: int | None = Field(default=None, ge=5, le=120)

    _target = field_validator("target_phone_number")(_check_phone_target)


class BargeInAction(BaseAction):
    """Stop whatever is playing now, and the queue behind it."""

    type: Literal["barge_in"] = "barge_in"


class ConfigureTranscriptionAction(BaseAction):
    """Switch speech recognition provider, languages or vocabulary mid-call."""

    type: Literal["configure_transcription"] = "configure_transcription"
    provider: TranscriptionProvider | None = None
    languages: list[str] | None = Field(default=None, min_length=1, max_length=4)
    custom_vocabulary: list[Annotated[str, Field(max_length=200)]] | None = Field(
        default=None, max_length=100
    )
    vad: VadConfig | None = None

    _vad = field_validator("vad", mode="wrap")(_lenient_vad)


class ConfigureVoiceToVoiceAction(BaseAction):
    """Preview feature of the hosted service; parsed, but voxflow declines to run it."""

    type: Literal["configure_voice_to_voice"] = "configure_voice_to_voice"
    system_prompt: str
    greeting: str | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    language: str | None = None


class SendSmsAction(BaseAction):
    """Send a text message; needs a configured SMS provider, else ``sms_failed``."""

    type: Literal["send_sms"] = "send_sms"
    phone_number: str
    message: str

    _number = field_validator("phone_number")(_check_phone_target)


Action = Annotated[
    SpeakAction
    | AudioAction
    | MixAudioAction
    | HangupAction
    | TransferAction
    | BargeInAction
    | ConfigureTranscriptionAction
    | ConfigureVoiceToVoiceAction
    | SendSmsAction,
    Field(discriminator="type"),
]
"""Any action, discriminated by ``type``."""

ACTION_MODELS: tuple[type[BaseAction], ...] = (
    SpeakAction,
    AudioAction,
    MixAudioAction,
    HangupAction,
    TransferAction,
    BargeInAction,
    ConfigureTranscriptionAction,
    ConfigureVoiceToVoiceAction,
    SendSmsAction,
)
