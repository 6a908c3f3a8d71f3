"""Deliver events over one WebSocket connection per call; actions arrive whenever sent.

voxflow is the client. Events go out as text frames in order; the assistant may answer any
of them, or none, or speak up on its own, so incoming actions are pushed to a
:data:`~voxflow.dispatch.base.ResultSink` rather than returned by ``deliver``. When the
connection drops while the call is live, events are buffered and the link reconnects with
backoff, then sends the buffer in order. A frame that was being written when the connection
broke is sent again after the reconnect (at-least-once), because losing a key press is worse
than repeating one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from voxflow.dispatch.answers import excerpt, judge_body
from voxflow.dispatch.base import ResultSink
from voxflow.dispatch.result import DeliveryOutcome, DeliveryResult
from voxflow.errors import ConfigError
from voxflow.protocol import ActionType, Event, to_wire

logger = logging.getLogger(__name__)

TOKEN_HEADER = "X-API-TOKEN"
_ACTION_TYPES = frozenset(t.value for t in ActionType)


def _is_action_message(data: Any) -> bool:
    """Whether a decoded frame is meant as actions (else: a status message, logged only)."""

    def one(item: Any) -> bool:
        if not isinstance(item, dict):
            return False
        return "session_id" in item or item.get("type") in _ACTION_TYPES

    return any(one(item) for item in data) if isinstance(data, list) else one(data)


class _DroppedError(Exception):
    pass


@dataclass
class _Link:
    session_id: str
    outbox: deque[tuple[str, asyncio.Future[None]]] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    connection: ClientConnection | None = None
    task: asyncio.Task[None] | None = None
    last_sent_at: float | None = None


class WebSocketDispatcher:
    """One client connection per call to the assistant's WebSocket server at ``url``."""

    def __init__(
        self,
        url: str,
        *,
        api_token: str | None = None,
        send_timeout_s: float = 5.0,
        connect_timeout_s: float = 5.0,
        ping_interval_s: float = 20.0,
        reconnect_initial_s: float = 0.5,
        reconnect_max_s: float = 5.0,
        close_timeout_s: float = 1.0,
        on_result: ResultSink | None = None,
    ) -> None:
        if not url.startswith(("ws://", "wss://")):
            raise ConfigError(f"websocket url {url!r} must start with ws:// or wss://")
        self.url = url
        self._headers = {TOKEN_HEADER: api_token} if api_token else {}
        self._send_timeout_s = send_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._ping_interval_s = ping_interval_s
        self._reconnect_initial_s = reconnect_initial_s
        self._reconnect_max_s = reconnect_max_s
        self._close_timeout_s = close_timeout_s
        self._sink = on_result
        self._links: dict[str, _Link] = {}

    def set_result_sink(self, sink: ResultSink) -> None:
        """Where pushed actions and connection failures go."""
        self._sink = sink

    def connected(self, session_id: str) -> bool:
        """Whether the session's connection is open right now."""
        link = self._links.get(session_id)
        return link is not None and link.connection is not None

    async def deliver(self, event: Event) -> DeliveryResult:
        """Queue ``event`` on the call's connection; ``SENT`` once written, else ``BUFFERED``."""
        session_id = event.session_id
        link = self._links.get(session_id)
        if link is None:
            link = self._links[session_id] = _Link(session_id)
            link.task = asyncio.create_task(self._run(link), name=f"ws-{session_id}")
        started = time.monotonic()
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        frame = json.dumps(to_wire(event), separators=(",", ":"), ensure_ascii=False)
        link.outbox.append((frame, written))
        link.wakeup.set()
        if link.connection is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(written), self._send_timeout_s)
        outcome = DeliveryOutcome.SENT if written.done() else DeliveryOutcome.BUFFERED
        return DeliveryResult(
            session_id,
            outcome,
            error=None if written.done() else "connection down; event buffered until reconnect",
            latency_ms=(time.monotonic() - started) * 1000,
            event_type=event.type,
        )

    async def _push(self, result: DeliveryResult) -> None:
        if self._sink is None:
            logger.warning(
                "no result sink set; dropping %s (session_id=%s)",
                result.outcome.value,
                result.session_id,
            )
            return
        await self._sink(result)

    async def _run(self, link: _Link) -> None:
        backoff = self._reconnect_initial_s
        attempt = 0
        while True:
            attempt += 1
            try:
                connection = await connect(
                    self.url,
                    additional_headers=self._headers,
                    open_timeout=self._connect_timeout_s,
                    ping_interval=self._ping_interval_s,
                    ping_timeout=self._ping_interval_s,
                )
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
                await self._push(
                    DeliveryResult(
                        link.session_id,
                        DeliveryOutcome.CONNECT_ERROR,
                        error=f"cannot connect to assistant websocket {self.url} "
                        f"(attempt {attempt}, retrying in {backoff:g} s): "
                        f"{exc or type(exc).__name__}",
                        attempts=attempt,
                    )
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._reconnect_max_s)
                continue
            if attempt > 1:
                logger.info("reconnected to %s (session_id=%s)", self.url, link.session_id)
            backoff, attempt = self._reconnect_initial_s, 0
            link.connection = connection
            reader = asyncio.create_task(self._read(link, connection))
            try:
                await self._send_loop(link, connection, reader)
            except (ConnectionClosed, _DroppedError) as exc:
                logger.warning(
                    "assistant websocket dropped (session_id=%s): %s; reconnecting",
                    link.session_id,
                    exc,
                )
            finally:
                link.connection = None
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader

    async def _send_loop(
        self, link: _Link, connection: ClientConnection, reader: asyncio.Task[None]
    ) -> None:
        while True:
            while link.outbox:
                frame, written = link.outbox[0]
                await connection.send(frame)
                link.outbox.popleft()
                link.last_sent_at = time.monotonic()
                if not written.done():
                    written.set_result(None)
            link.wakeup.clear()
            waiter = asyncio.create_task(link.wakeup.wait())
            done, _ = await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if reader in done:
                raise _DroppedError(f"closed by the assistant (code {connection.close_code})")

    async def _read(self, link: _Link, connection: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in connection:
                await self._handle_message(link, message)

    async def _handle_message(self, link: _Link, message: str | bytes) -> None:
        session_id = link.session_id
        if isinstance(message, bytes):
            logger.info("ignoring binary frame from assistant (session_id=%s)", session_id)
            return
        latency_ms = 0.0 if link.last_sent_at is None else (time.monotonic() - link.last_sent_at)
        latency_ms *= 1000
        try:
            data = json.loads(message)
        except json.JSONDecodeError:
            await self._push(judge_body(session_id, message, latency_ms=latency_ms))
            return
        if not _is_action_message(data):
            logger.info(
                "ignoring non-action message from assistant (session_id=%s): %s",
                session_id,
                excerpt(message),
            )
            return
        await self._push(judge_body(session_id, data, latency_ms=latency_ms))

    async def close_session(self, session_id: str) -> None:
        """Flush what is buffered (briefly), then close the call's connection."""
        link = self._links.pop(session_id, None)
        if link is None or link.task is None:
            return
        if link.outbox and link.connection is not None:
            pending = [written for _, written in link.outbox]
            await asyncio.wait(pending, timeout=self._close_timeout_s)
        if link.outbox:
            logger.warning(
                "closing websocket with %d unsent event(s) (session_id=%s)",
                len(link.outbox),
                session_id,
            )
        connection = link.connection
        link.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await link.task
        if connection is not None:
            await connection.close()

    async def aclose(self) -> None:
        """Close every call's connection."""
        for session_id in list(self._links):
            await self.close_session(session_id)
