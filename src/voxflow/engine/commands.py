"""What a :class:`~voxflow.engine.session.CallSession` asks its surroundings to do.

The session is sans-IO: it never delivers, synthesises or signals anything itself. It queues
these commands; the asyncio engine drains them and carries them out, then feeds the outcome back
(``prompt_ready``, ``delivery_failed``, ``transfer_result``, ``line_ended`` ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from voxflow.protocol import (
    AudioAction,
    BaseEvent,
    ConfigureTranscriptionAction,
    MixAudioAction,
    SpeakAction,
)


@dataclass(frozen=True, slots=True)
class DeliverEvent:
    """Hand ``event`` to the assistant (in order, after the events queued before it)."""

    event: BaseEvent


@dataclass(frozen=True, slots=True)
class PreparePrompt:
    """Turn a ``speak`` (TTS) or ``audio``/``mix_audio`` (WAV decode) into samples.

    Answer with ``CallSession.prompt_ready(item_id, samples)`` or ``prompt_failed``.
    """

    item_id: int
    action: SpeakAction | AudioAction | MixAudioAction


@dataclass(frozen=True, slots=True)
class HangUp:
    """End the call on the line; the line answers with ``line_ended``."""

    reason: str


@dataclass(frozen=True, slots=True)
class Transfer:
    """Transfer the caller (blind REFER, falling back to a bridged call).

    Answer with ``CallSession.transfer_result``.
    """

    target: str
    caller_id_name: str | None
    caller_id_number: str | None
    timeout_s: int | None


@dataclass(frozen=True, slots=True)
class ConfigureListening:
    """Apply a ``configure_transcription`` action to the call's speech recognition."""

    action: ConfigureTranscriptionAction


@dataclass(frozen=True, slots=True)
class SetEndOfTurnSilence:
    """A ``speak`` carried ``vad.end_of_turn_silence_ms``: it holds from now until changed."""

    milliseconds: int


@dataclass(frozen=True, slots=True)
class Note:
    """Something worth a log line and a call-record entry (rejected action, fallback ...)."""

    level: str  # "info" | "warning" | "error"
    message: str


Command = (
    DeliverEvent
    | PreparePrompt
    | HangUp
    | Transfer
    | ConfigureListening
    | SetEndOfTurnSilence
    | Note
)
