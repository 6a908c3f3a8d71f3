"""Per-session serial delivery and the consecutive-failure fallback.

Events of one call go to the assistant one at a time, in order: the next waits for the
previous answer or its deadline. Each call has its own small queue and worker task, so a slow
answer for one call never delays another. Every result (returned by ``deliver`` or pushed by a
WebSocket assistant) flows through one place that logs failures, counts them and hands actions
to the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from voxflow.dispatch.base import Dispatcher, PushDispatcher
from voxflow.dispatch.result import DeliveryOutcome, DeliveryResult
from voxflow.errors import ConfigError
from voxflow.protocol import Action, Event, EventType

logger = logging.getLogger(__name__)

ActionsCallback = Callable[[str, list[Action]], Awaitable[None]]
"""``(session_id, actions)``: the engine carries the actions out, in order."""
FallbackCallback = Callable[[str, DeliveryResult], Awaitable[None]]
"""``(session_id, last failed result)``: the engine runs its fallback (apologise, hang up)."""
ResultObserver = Callable[[DeliveryResult], None]
"""Sees every result, e.g. to write the call record; must not block."""

#: Answers to these events are ignored by the wire protocol.
UNANSWERED_EVENTS = frozenset({EventType.SESSION_END.value, EventType.USER_SPEECH_STARTED.value})
_CLOSED_SESSIONS_REMEMBERED = 10_000


class FailurePolicy:
    """Count consecutive failed deliveries per session; say when the fallback is due.

    A success resets the count; a buffered WebSocket event neither resets nor counts. The
    fallback is due once per session, when the count reaches ``threshold``.
    """

    def __init__(self, threshold: int = 3) -> None:
        if threshold < 1:
            raise ConfigError(f"failure threshold must be >= 1, got {threshold}")
        self.threshold = threshold
        self._counts: dict[str, int] = {}
        self._fired: set[str] = set()

    def observe(self, result: DeliveryResult) -> bool:
        """Account for ``result``; True exactly when the session's fallback should run now."""
        session_id = result.session_id
        if result.outcome is DeliveryOutcome.BUFFERED:
            return False
        if not result.failed:
            self._counts[session_id] = 0
            return False
        count = self._counts.get(session_id, 0) + 1
        self._counts[session_id] = count
        if count >= self.threshold and session_id not in self._fired:
            self._fired.add(session_id)
            return True
        return False

    def consecutive_failures(self, session_id: str) -> int:
        """How many deliveries in a row failed for this session."""
        return self._counts.get(session_id, 0)

    def forget(self, session_id: str) -> None:
        """Drop the session's state once it is over."""
        self._counts.pop(session_id, None)
        self._fired.discard(session_id)


@dataclass
class _Lane:
    queue: asyncio.Queue[Event]
    worker: asyncio.Task[None]


class SessionDispatch:
    """The engine's one entry point for sending events, whatever the transport.

    ``submit`` never blocks; actions come back through ``on_actions``; after
    ``failure_threshold`` failures in a row ``on_fallback`` is called once for the session.
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        on_actions: ActionsCallback,
        on_fallback: FallbackCallback,
        on_result: ResultObserver | None = None,
        failure_threshold: int = 3,
    ) -> None:
        self._dispatcher = dispatcher
        self._on_actions = on_actions
        self._on_fallback = on_fallback
        self._on_result = on_result
        self.policy = FailurePolicy(failure_threshold)
        self._lanes: dict[str, _Lane] = {}
        # Remembered so late pushes and stray events for an ended call are dropped; bounded
        # (oldest forgotten first) because a long-running engine sees unlimited sessions.
        self._closed: dict[str, None] = {}
        if isinstance(dispatcher, PushDispatcher):
            dispatcher.set_result_sink(self.accept)

    def submit(self, event: Event) -> None:
        """Queue ``event`` behind the session's earlier events."""
        session_id = event.session_id
        if session_id in self._closed:
            logger.warning(
                "dropping %s for closed session (session_id=%s)", event.type, session_id
            )
            return
        lane = self._lanes.get(session_id)
        if lane is None:
            queue: asyncio.Queue[Event] = asyncio.Queue()
            worker = asyncio.create_task(self._run(queue), name=f"dispatch-{session_id}")
            lane = self._lanes[session_id] = _Lane(queue, worker)
        lane.queue.put_nowait(event)

    async def drain(self, session_id: str) -> None:
        """Wait until every submitted event of the session has been answered."""
        lane = self._lanes.get(session_id)
        if lane is not None:
            await lane.queue.join()

    async def _run(self, queue: asyncio.Queue[Event]) -> None:
        while True:
            event = await queue.get()
            try:
                await self.accept(await self._deliver(event))
            finally:
                queue.task_done()

    async def _deliver(self, event: Event) -> DeliveryResult:
        try:
            return await self._dispatcher.deliver(event)
        except Exception as exc:
            # Dispatchers turn the assistant's faults into results; this is a bug of ours, and
            # it must still only cost this one event.
            logger.exception(
                "dispatcher failed on %s (session_id=%s)", event.type, event.session_id
            )
            return DeliveryResult(
                event.session_id,
                DeliveryOutcome.HANDLER_ERROR,
                error=f"internal error delivering {event.type}: {type(exc).__name__}: {exc}",
                event_type=event.type,
            )

    async def accept(self, result: DeliveryResult) -> None:
        """Handle one result: observe, log, count, hand over actions or run the fallback."""
        session_id = result.session_id
        if self._on_result is not None:
            try:
                self._on_result(result)
            except Exception:
                logger.exception("result observer failed (session_id=%s)", session_id)
        if session_id in self._closed:
            return
        if result.failed:
            logger.error(
                "assistant delivery failed (session_id=%s, event=%s, outcome=%s): %s",
                session_id,
                result.event_type,
                result.outcome.value,
                result.error,
            )
        fallback_due = self.policy.observe(result)
        try:
            if fallback_due:
                logger.error(
                    "%d consecutive assistant failures, running fallback (session_id=%s)",
                    self.policy.threshold,
                    session_id,
                )
                await self._on_fallback(session_id, result)
            elif result.actions and result.event_type in UNANSWERED_EVENTS:
                logger.info(
                    "ignoring %d action(s) answering %s (session_id=%s)",
                    len(result.actions),
                    result.event_type,
                    session_id,
                )
            elif result.actions:
                await self._on_actions(session_id, result.actions)
        except Exception:
            logger.exception("engine callback failed (session_id=%s)", session_id)

    async def close_session(
        self, session_id: str, *, drain: bool = True, timeout_s: float | None = None
    ) -> None:
        """Stop the session's lane: deliver what is queued (up to ``timeout_s``) or drop it."""
        lane = self._lanes.get(session_id)
        if lane is not None and drain:
            try:
                async with asyncio.timeout(timeout_s):
                    await lane.queue.join()
            except TimeoutError:
                logger.warning(
                    "session close: %d event(s) still undelivered after %g s (session_id=%s)",
                    lane.queue.qsize(),
                    timeout_s,
                    session_id,
                )
        self._closed[session_id] = None
        if len(self._closed) > _CLOSED_SESSIONS_REMEMBERED:
            del self._closed[next(iter(self._closed))]
        lane = self._lanes.pop(session_id, None)
        if lane is not None:
            if lane.queue.qsize():
                logger.warning(
                    "session close: dropping %d queued event(s) (session_id=%s)",
                    lane.queue.qsize(),
                    session_id,
                )
            lane.worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lane.worker
        await self._dispatcher.close_session(session_id)
        self.policy.forget(session_id)

    async def aclose(self) -> None:
        """Cancel every lane and close the dispatcher."""
        for session_id in list(self._lanes):
            await self.close_session(session_id, drain=False)
        await self._dispatcher.aclose()
