"""String enums of the AI Flow wire format (values are exactly what travels on the wire)."""

from __future__ import annotations

import enum


class EventType(enum.StrEnum):
    """``type`` of an event (voxflow → assistant)."""

    SESSION_START = "session_start"
    USER_SPEECH_STARTED = "user_speech_started"
    USER_SPEAK = "user_speak"
    USER_BARGE_IN = "user_barge_in"  # legacy SDK event; accepted, never sent by voxflow
    DTMF_RECEIVED = "dtmf_received"
    ASSISTANT_SPEAK = "assistant_speak"
    ASSISTANT_SPEECH_ENDED = "assistant_speech_ended"
    USER_INPUT_TIMEOUT = "user_input_timeout"
    SESSION_END = "session_end"
    SMS_FAILED = "sms_failed"


class ActionType(enum.StrEnum):
    """``type`` of an action (assistant → voxflow)."""

    SPEAK = "speak"
    AUDIO = "audio"
    MIX_AUDIO = "mix_audio"
    HANGUP = "hangup"
    TRANSFER = "transfer"
    BARGE_IN = "barge_in"
    CONFIGURE_TRANSCRIPTION = "configure_transcription"
    CONFIGURE_VOICE_TO_VOICE = "configure_voice_to_voice"
    SEND_SMS = "send_sms"


class Direction(enum.StrEnum):
    """Who placed the call."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class BargeInStrategy(enum.StrEnum):
    """How a prompt may be interrupted by the caller."""

    NONE = "none"
    MANUAL = "manual"
    MINIMUM_CHARACTERS = "minimum_characters"
    IMMEDIATE = "immediate"


class TtsProvider(enum.StrEnum):
    """Text-to-speech providers (lower case on the wire); ``espeak`` is voxflow's offline one."""

    AZURE = "azure"
    ELEVEN_LABS = "eleven_labs"
    ESPEAK = "espeak"


class TranscriptionProvider(enum.StrEnum):
    """Speech-to-text providers of ``configure_transcription`` (upper case on the wire)."""

    AZURE = "AZURE"
    DEEPGRAM = "DEEPGRAM"
    ELEVEN_LABS = "ELEVEN_LABS"
