"""The interfaces every delivery transport implements, so the engine treats them alike.

Request/response transports (webhook, in-process) return the actions in the
:class:`DeliveryResult` of :meth:`Dispatcher.deliver`. The WebSocket transport also receives
actions at any time; it hands those to a :data:`ResultSink` as results of their own. The
per-session layer in :mod:`voxflow.dispatch.ordering` funnels both kinds into one callback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from voxflow.dispatch.result import DeliveryResult
from voxflow.protocol import Action, Event

ResultSink = Callable[[DeliveryResult], Awaitable[None]]
"""Receives results that arrive without a request (WebSocket pushes, reconnect failures)."""


class Dispatcher(Protocol):
    """Hands events to an assistant. ``deliver`` never raises for the assistant's faults."""

    async def deliver(self, event: Event) -> DeliveryResult:
        """Send one event; return the answer or the reason there is none."""
        ...

    async def close_session(self, session_id: str) -> None:
        """Release what the session holds (a WebSocket connection); idempotent."""
        ...

    async def aclose(self) -> None:
        """Release everything (pooled connections, sockets)."""
        ...


@runtime_checkable
class PushDispatcher(Dispatcher, Protocol):
    """A dispatcher whose assistant may send actions at any time."""

    def set_result_sink(self, sink: ResultSink) -> None:
        """Where asynchronously arriving results go."""
        ...


class EventHandler(Protocol):
    """Anything with ``async handle(event) -> list[Action]``, e.g. ``voxflow.sdk.Assistant``."""

    async def handle(self, event: Event) -> list[Action]:
        """Answer one event with actions (possibly none)."""
        ...
