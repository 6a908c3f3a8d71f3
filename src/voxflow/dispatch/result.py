"""What happened when one event was handed to the assistant."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from voxflow.protocol import Action


class DeliveryOutcome(StrEnum):
    """How a delivery ended; everything from ``TIMEOUT`` on counts as a failure."""

    OK = "ok"
    """The assistant answered with one or more valid actions."""
    NO_ACTION = "no_action"
    """The assistant answered with nothing to do (204, empty body, empty array)."""
    SENT = "sent"
    """WebSocket only: the event went out; actions arrive separately, whenever they come."""
    BUFFERED = "buffered"
    """WebSocket only: the connection is down; the event goes out after the reconnect."""
    TIMEOUT = "timeout"
    CONNECT_ERROR = "connect_error"
    HTTP_STATUS = "http_status"
    RESPONSE_TOO_LARGE = "response_too_large"
    INVALID_JSON = "invalid_json"
    INVALID_ACTION = "invalid_action"
    WRONG_SESSION = "wrong_session"
    HANDLER_ERROR = "handler_error"
    """In-process only: the assistant's handler raised."""

    @property
    def failed(self) -> bool:
        """True when the assistant did not give a usable answer."""
        return self not in _SUCCESSES


_SUCCESSES = frozenset(
    {DeliveryOutcome.OK, DeliveryOutcome.NO_ACTION, DeliveryOutcome.SENT, DeliveryOutcome.BUFFERED}
)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """The answer to one event (or one asynchronously pushed WebSocket message).

    ``actions`` is empty unless ``outcome`` is ``OK``; ``error`` is a sentence naming what went
    wrong; ``latency_ms`` runs from handing the event over to the answer (or the failure);
    ``status`` is the HTTP status when there was one; ``event_type`` is ``None`` for messages
    that did not answer a particular event.
    """

    session_id: str
    outcome: DeliveryOutcome
    actions: list[Action] = field(default_factory=list)
    error: str | None = None
    latency_ms: float = 0.0
    status: int | None = None
    event_type: str | None = None
    attempts: int = 1

    @property
    def failed(self) -> bool:
        """True when this counts towards the consecutive-failure fallback."""
        return self.outcome.failed
