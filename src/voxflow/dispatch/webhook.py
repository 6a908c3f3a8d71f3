"""Deliver events as HTTP POSTs to the assistant's webhook, over one pooled client."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import urlsplit

import httpx

from voxflow.dispatch.answers import excerpt, judge_body
from voxflow.dispatch.http11 import (
    Http11Pool,
    HttpConnectError,
    HttpResponseTooLargeError,
    HttpTransportError,
)
from voxflow.dispatch.result import DeliveryOutcome, DeliveryResult
from voxflow.errors import ConfigError
from voxflow.protocol import Event, to_wire
from voxflow.protocol.signing import sign

TOKEN_HEADER = "X-API-TOKEN"
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MAX_RESPONSE_BYTES = 1 << 20


class _TooLargeError(Exception):
    pass


class _ConnectFailedError(Exception):
    def __init__(self, cause: Exception, attempts: int) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.attempts = attempts


def _proxy_for(scheme: str, host: str) -> bool:
    """Whether the environment names a proxy for this URL (HTTP(S)_PROXY, ALL_PROXY, NO_PROXY)."""
    proxies = urllib.request.getproxies_environment()
    if scheme not in proxies and "all" not in proxies:
        return False
    return not urllib.request.proxy_bypass(host)


def _httpx_client(timeout_s: float, max_connections: int, verify_tls: bool) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        verify=verify_tls,
        follow_redirects=False,
    )


def encode_event(event: Event) -> bytes:
    """The exact bytes POSTed (and signed) for ``event``: compact canonical JSON."""
    return json.dumps(to_wire(event), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _describe_transport_error(exc: Exception) -> str:
    # httpx messages are sometimes empty ("ConnectError('')"); the class name still says a lot.
    return str(exc) or type(exc).__name__


class WebhookDispatcher:
    """POST each event to ``url`` and read the actions from the response.

    One pool of at most ``max_connections`` keep-alive connections (TLS verified by default)
    serves all calls: the lean :class:`~voxflow.dispatch.http11.Http11Pool`, or httpx when a
    ``client`` is passed in or the environment names a proxy for the URL.
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
        if api_token is not None and not (api_token.isascii() and api_token.isprintable()):
            raise ConfigError("webhook api_token must be printable ASCII (it is sent as a header)")
        self.url = url
        self.timeout_s = timeout_s
        self._api_token = api_token
        self._signing_secret = signing_secret or None
        self._connect_retries = connect_retries
        self._retry_backoff_s = retry_backoff_s
        self._max_response_bytes = max_response_bytes
        self._clock = clock
        self._owns_client = client is None
        self._client = client
        self._pool: Http11Pool | None = None
        if client is None and _proxy_for(parts.scheme, parts.hostname or ""):
            # Proxies (from the environment, as httpx reads them) only go through httpx.
            client = self._client = _httpx_client(timeout_s, max_connections, verify_tls)
        if client is None:
            secure = parts.scheme == "https"
            context = httpx.create_ssl_context(verify=verify_tls) if secure else None
            self._pool = Http11Pool(
                url,
                max_connections=max_connections,
                max_response_bytes=max_response_bytes,
                ssl_context=context,
            )

    def _headers(self, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_token:
            headers[TOKEN_HEADER] = self._api_token
        if self._signing_secret:
            headers.update(sign(body, self._signing_secret, int(self._clock())))
        return headers

    async def _post_once(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self._pool is not None:
            try:
                response = await self._pool.post(body, headers)
            except HttpResponseTooLargeError as exc:
                raise _TooLargeError(str(exc)) from exc
            return response.status, response.body
        assert self._client is not None
        async with self._client.stream("POST", self.url, content=body, headers=headers) as reply:
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
            except (httpx.ConnectError, HttpConnectError) as exc:
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
        except (httpx.TransportError, HttpTransportError) as exc:
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
        if self._pool is not None:
            await self._pool.aclose()
        if self._owns_client and self._client is not None:
            await self._client.aclose()
