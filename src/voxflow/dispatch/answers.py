"""Turn what an assistant answered into a :class:`DeliveryResult` (pure, no I/O).

Shared by every transport so a webhook body, a WebSocket frame and a handler's return value
are judged by the same rules: valid actions for this session, or a failure with a reason.
"""

from __future__ import annotations

from collections.abc import Sequence

from voxflow.dispatch.result import DeliveryOutcome, DeliveryResult
from voxflow.errors import ProtocolError
from voxflow.protocol import Action, parse_actions
from voxflow.protocol.parsing import JsonLike

_EXCERPT_CHARS = 120


def excerpt(body: bytes | str) -> str:
    """A short printable piece of a body for an error message."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS] + "…"


def judge_actions(
    session_id: str,
    actions: Sequence[Action],
    *,
    latency_ms: float,
    status: int | None = None,
    event_type: str | None = None,
) -> DeliveryResult:
    """Accept ``actions`` if every one names ``session_id``.

    A response with an action for another call is rejected as a whole: executing the rest
    would act on half of what the assistant meant, and the mismatch usually means it mixed up
    calls.
    """
    strangers = sorted({a.session_id for a in actions if a.session_id != session_id})
    if strangers:
        return DeliveryResult(
            session_id,
            DeliveryOutcome.WRONG_SESSION,
            error=(
                f"assistant answered with session_id {', '.join(map(repr, strangers))} "
                f"but this call is {session_id!r}; {len(actions)} action(s) dropped"
            ),
            latency_ms=latency_ms,
            status=status,
            event_type=event_type,
        )
    outcome = DeliveryOutcome.OK if actions else DeliveryOutcome.NO_ACTION
    return DeliveryResult(
        session_id,
        outcome,
        actions=list(actions),
        latency_ms=latency_ms,
        status=status,
        event_type=event_type,
    )


def judge_body(
    session_id: str,
    body: JsonLike,
    *,
    latency_ms: float,
    status: int | None = None,
    event_type: str | None = None,
) -> DeliveryResult:
    """Parse a JSON body (object, array or empty) and judge the actions in it."""

    def failure(outcome: DeliveryOutcome, error: str) -> DeliveryResult:
        return DeliveryResult(
            session_id,
            outcome,
            error=error,
            latency_ms=latency_ms,
            status=status,
            event_type=event_type,
        )

    text = body.strip() if isinstance(body, bytes | str) else body
    try:
        actions = parse_actions(text)
    except ProtocolError as exc:
        if str(exc).startswith("invalid JSON"):
            shown = excerpt(text) if isinstance(text, bytes | str) else ""
            return failure(DeliveryOutcome.INVALID_JSON, f"assistant answered {exc}: {shown!r}")
        return failure(DeliveryOutcome.INVALID_ACTION, f"assistant answered invalid actions: {exc}")
    return judge_actions(
        session_id, actions, latency_ms=latency_ms, status=status, event_type=event_type
    )
