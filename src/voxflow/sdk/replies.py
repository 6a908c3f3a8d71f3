"""Action constructors that do not need the session id yet.

``speak("Welcome")``, ``transfer("+49211100200")`` and ``hangup()`` build a :class:`Reply`: an
action validated now (so a typo fails where the menu is defined, not mid-call) whose session id is
filled in when a handler returns it for an event. ``reply.to(event)`` binds it explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from voxflow.protocol import Action, BargeInConfig, BaseEvent, TtsConfig, VadConfig, parse_action

# Validation needs some session id; this one is replaced before the action ever leaves the SDK.
_UNBOUND_SESSION = "unbound"


@dataclass(frozen=True, slots=True)
class Reply:
    """An action template: every field except ``session_id``, already validated."""

    template: Action

    def to(self, target: BaseEvent | str) -> Action:
        """The action for an event's session (or an explicit session id)."""
        session_id = target if isinstance(target, str) else target.session.id
        return self.template.model_copy(update={"session_id": session_id})

    def __repr__(self) -> str:
        fields = self.template.model_dump(exclude_none=True, exclude={"session_id", "type"})
        inner = ", ".join(f"{key}={value!r}" for key, value in fields.items())
        return f"{self.template.type}({inner})"


def reply(action_type: str, **fields: Any) -> Reply:
    """A :class:`Reply` of any action type; ``None`` fields are left out."""
    data: dict[str, Any] = {key: value for key, value in fields.items() if value is not None}
    return Reply(parse_action({"type": action_type, "session_id": _UNBOUND_SESSION, **data}))


def speak(
    text: str | None = None,
    *,
    ssml: str | None = None,
    tts: TtsConfig | Mapping[str, Any] | None = None,
    barge_in: BargeInConfig | Mapping[str, Any] | None = None,
    user_input_timeout_seconds: float | None = None,
    vad: VadConfig | Mapping[str, Any] | None = None,
) -> Reply:
    """Say ``text`` (or ``ssml``) with text-to-speech."""
    return reply(
        "speak",
        text=text,
        ssml=ssml,
        tts=tts,
        barge_in=barge_in,
        user_input_timeout_seconds=user_input_timeout_seconds,
        vad=vad,
    )


def transfer(
    target_phone_number: str,
    *,
    caller_id_name: str | None = None,
    caller_id_number: str | None = None,
    timeout: int | None = None,
) -> Reply:
    """Transfer the caller; with ``timeout`` the call returns if the target does not answer."""
    return reply(
        "transfer",
        target_phone_number=target_phone_number,
        caller_id_name=caller_id_name,
        caller_id_number=caller_id_number,
        timeout=timeout,
    )


def hangup() -> Reply:
    """End the call once the items queued before it in the same response have played."""
    return reply("hangup")


def barge_in() -> Reply:
    """Stop whatever is playing now, and the queue behind it."""
    return reply("barge_in")


def audio(wav_base64: str, *, barge_in: BargeInConfig | Mapping[str, Any] | None = None) -> Reply:
    """Play a WAV file given as base64."""
    return reply("audio", audio=wav_base64, barge_in=barge_in)
