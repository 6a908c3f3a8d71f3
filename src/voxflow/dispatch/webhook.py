"""Deliver events as HTTP POSTs to the assistant's webhook, over one pooled client."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import httpx

from voxflow.dispatch.answers import excerpt, judge_body
from voxflow.dispatch.result import DeliveryOutcome, DeliveryResult
from voxflow.errors import ConfigError
from voxflow.protocol import Event, to_wire
from voxflow.protocol.signing import sign

TOKEN_HEADER = "X-API-TOKEN"
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MAX_RESPONSE_BYTES = 1 << 20
_CONNECTIONS_PER_POOL = 8


class _TooLargeError(Exception):
    pass


class _ConnectFailedError(Exception):
    def __init__(self, cause: httpx.TransportError, attempts: int) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.attempts = attempts


@dataclass(slots=True)
class _Pool:
    """One keep-alive client, its connection limit and the requests now in flight on it."""

    client: httpx.AsyncClient
    limit: int
    in_flight: int = 0


def encode_event(event: Event) -> bytes:
    """The exact bytes POSTed (and signed) for ``event``: compact canonical JSON."""
    return json.dumps(to_wire(event), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _describe_transport_error(exc: httpx.TransportError) -> str:
    # httpx messages are sometimes empty ("ConnectError('')"); the class name still says a lot.
    return str(exc) or type(exc).__name__


class WebhookDispatcher:
    """POST each event to ``url`` and read the actions from the response.

    Keep-alive connection pools (TLS verified by default), at most ``max_connections``
    connections in all, serve all calls; a ``client`` passed in is used alone.
    The whole delivery, retries included, must finish within ``timeout_s``. Only failures to
    connect are retried (``connect_retries`` more times): once a request may have reached the
    assistant it is never sent twice, since the assistant may already have acted on it.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        api_token: str | None = None,
        signing_secret: str | None = None,
        connect_retries: int = 2,
        retry_backoff_s: float = 0.05,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        verify_tls: bool = True,
        max_connections: int = 100,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"webhook url {url!r} must be an absolute http:// or https:// URL")
        if timeout_s <= 0:
            raise ConfigError(f"webhook timeout_s must be positive, got {timeout_s}")
        if connect_retries < 0:
            raise ConfigError(f"webhook connect_retries must be >= 0, got {connect_retries}")
        if max_connections < 1:
            raise ConfigError(f"webhook max_connections must be >= 1, got {max_connections}")
        self.url = url
        self.timeout_s = timeout_s
        self._api_token = api_token
        self._signing_secret = signing_secret or None
        self._connect_retries = connect_retries
        self._retry_backoff_s = retry_backoff_s
        self._max_response_bytes = max_response_bytes
        self._clock = clock
        self._owns_client = client is None
        self._verify_tls = verify_tls
        self._ssl_context: ssl.SSLContext | None = None
        self._max_connections = max_connections
        self._pools: list[_Pool] = []
        if client is not None:
            self._pools.append(_Pool(client, max_connections))

    def _pick_pool(self) -> _Pool:
        """The pooled client with the most free connections, adding one while under the limit.

        httpcore scans every connection of a pool (a poll() per idle one, and a quadratic idle
        count) each time a request starts or ends, so one pool of 100 connections costs about a
        millisecond of CPU per webhook request. Pools of at most :data:`_CONNECTIONS_PER_POOL`
        keep that small while the total stays ``max_connections``.
        """
        best = max(self._pools, key=lambda pool: pool.limit - pool.in_flight, default=None)
        if best is not None and (best.limit > best.in_flight or not self._owns_client):
            return best
        used = sum(pool.limit for pool in self._pools)
        limit = min(_CONNECTIONS_PER_POOL, self._max_connections - used)
        if limit <= 0:
            assert best is not None  # max_connections >= 1 made a first pool
            return best  # every connection is busy: queue in the least loaded pool
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context(verify=self._verify_tls)
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout_s),
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
            verify=self._ssl_context,
            follow_redirects=False,
        )
        pool = _Pool(client, limit)
        self._pools.append(pool)
        return pool

    def _headers(self, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_token:
            headers[TOKEN_HEADER] = self._api_token
        if self._signing_secret:
            headers.update(sign(body, self._signing_secret, int(self._clock())))
        return headers

    async def _post_once(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        pool = self._pick_pool()
        pool.in_flight += 1
        try:
            return await self._post_with(pool.client, body, headers)
        finally:
            pool.in_flight -= 1

    async def _post_with(
        self, client: httpx.AsyncClient, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        async with client.stream("POST", self.url, content=body, headers=headers) as reply:
            declared = reply.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self._max_response_bytes:
                raise _TooLargeError(f"declared {declared} bytes")
            chunks: list[bytes] = []
            size = 0
            async for chunk in reply.aiter_bytes():
                size += len(chunk)
                if size > self._max_response_bytes:
                    raise _TooLargeError(f"more than {self._max_response_bytes} bytes")
                chunks.append(chunk)
            return reply.status_code, b"".join(chunks)

    async def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, int]:
        attempt = 0
        while True:
            attempt += 1
            try:
                status, payload = await self._post_once(body, headers)
            except httpx.ConnectError as exc:
                if attempt > self._connect_retries:
                    raise _ConnectFailedError(exc, attempt) from exc
                await asyncio.sleep(self._retry_backoff_s * 2 ** (attempt - 1))
            else:
                return status, payload, attempt

    async def deliver(self, event: Event) -> DeliveryResult:
        """POST ``event``; never raises for anything the assistant or the network does."""
        session_id = event.session_id
        body = encode_event(event)
        started = time.monotonic()

        def failure(outcome: DeliveryOutcome, error: str, attempts: int = 1) -> DeliveryResult:
            return DeliveryResult(
                session_id,
                outcome,
                error=error,
                latency_ms=(time.monotonic() - started) * 1000,
                event_type=event.type,
                attempts=attempts,
            )

        try:
            async with asyncio.timeout(self.timeout_s):
                status, payload, attempts = await self._post(body, self._headers(body))
        except (TimeoutError, httpx.TimeoutException):
            return failure(
                DeliveryOutcome.TIMEOUT,
                f"webhook {self.url} did not answer {event.type} within {self.timeout_s:g} s",
            )
        except _ConnectFailedError as exc:
            return failure(
                DeliveryOutcome.CONNECT_ERROR,
                f"cannot connect to webhook {self.url} after {exc.attempts} attempt(s): "
                f"{_describe_transport_error(exc.cause)}",
                exc.attempts,
            )
        except _TooLargeError as exc:
            return failure(
                DeliveryOutcome.RESPONSE_TOO_LARGE,
                f"webhook {self.url} answered {event.type} with a body over the "
                f"{self._max_response_bytes}-byte limit ({exc})",
            )
        except httpx.TransportError as exc:
            return failure(
                DeliveryOutcome.CONNECT_ERROR,
                f"connection to webhook {self.url} failed after the request was sent "
                f"(not retried): {_describe_transport_error(exc)}",
            )
        latency_ms = (time.monotonic() - started) * 1000
        if 200 <= status < 300:
            result = judge_body(
                session_id, payload, latency_ms=latency_ms, status=status, event_type=event.type
            )
            return replace(result, attempts=attempts)
        hint = {
            401: " (check the API token)",
            403: " (check the API token)",
        }.get(status, " (redirects are not followed)" if 300 <= status < 400 else "")
        return DeliveryResult(
            session_id,
            DeliveryOutcome.HTTP_STATUS,
            error=f"webhook {self.url} answered {event.type} with HTTP {status}{hint}: "
            f"{excerpt(payload)!r}",
            latency_ms=latency_ms,
            status=status,
            event_type=event.type,
            attempts=attempts,
        )

    async def close_session(self, session_id: str) -> None:
        """Nothing is held per session over HTTP."""

    async def aclose(self) -> None:
        """Close the pooled client (unless it was passed in by the caller)."""
        if self._owns_client:
            for pool in self._pools:
                await pool.client.aclose()
            self._pools.clear()
