"""Deliver events to a Python object in the same process (e.g. a ``voxflow.sdk.Assistant``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from voxflow.dispatch.answers import judge_actions, judge_body
from voxflow.dispatch.base import EventHandler
from voxflow.dispatch.result import DeliveryOutcome, DeliveryResult
from voxflow.errors import ConfigError
from voxflow.protocol import BaseAction, Event

logger = logging.getLogger(__name__)


class InProcessDispatcher:
    """Call ``handler.handle(event)`` under the same deadline a webhook gets.

    The handler's exceptions and odd return values become failed results (the exception is
    logged with its traceback and the session id); they never reach the engine.
    """

    def __init__(self, handler: EventHandler, *, timeout_s: float = 5.0) -> None:
        if timeout_s <= 0:
            raise ConfigError(f"in-process timeout_s must be positive, got {timeout_s}")
        self._handler = handler
        self.timeout_s = timeout_s

    async def deliver(self, event: Event) -> DeliveryResult:
        """Run the handler; never raises for anything the handler does."""
        session_id = event.session_id
        started = time.monotonic()

        def elapsed_ms() -> float:
            return (time.monotonic() - started) * 1000

        deadline = asyncio.timeout(self.timeout_s)
        try:
            async with deadline:
                returned: object = await self._handler.handle(event)
        except Exception as exc:
            if isinstance(exc, TimeoutError) and deadline.expired():
                return DeliveryResult(
                    session_id,
                    DeliveryOutcome.TIMEOUT,
                    error=f"assistant handler did not answer {event.type} "
                    f"within {self.timeout_s:g} s",
                    latency_ms=elapsed_ms(),
                    event_type=event.type,
                )
            logger.exception(
                "assistant handler raised on %s (session_id=%s)", event.type, session_id
            )
            return DeliveryResult(
                session_id,
                DeliveryOutcome.HANDLER_ERROR,
                error=f"assistant handler raised on {event.type}: {type(exc).__name__}: {exc}",
                latency_ms=elapsed_ms(),
                event_type=event.type,
            )
        if returned is None:
            returned = []
        if isinstance(returned, Sequence) and all(isinstance(a, BaseAction) for a in returned):
            return judge_actions(
                session_id, list(returned), latency_ms=elapsed_ms(), event_type=event.type
            )
        # Plain dicts (wire-format JSON) are validated like a webhook body would be.
        if isinstance(returned, dict | list):
            return judge_body(session_id, returned, latency_ms=elapsed_ms(), event_type=event.type)
        return DeliveryResult(
            session_id,
            DeliveryOutcome.INVALID_ACTION,
            error=f"assistant handler returned {type(returned).__name__} for {event.type}; "
            "expected a list of actions",
            latency_ms=elapsed_ms(),
            event_type=event.type,
        )

    async def close_session(self, session_id: str) -> None:
        """Nothing is held per session in-process."""

    async def aclose(self) -> None:
        """Nothing to release."""
