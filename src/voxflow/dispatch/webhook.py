"""Deliver events as HTTP POSTs to the assistant's webhook, over one pooled client."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import urlsplit

import aiohttp

from voxflow.dispatch.answers import excerpt, judge_body
from voxflow.dispatch.result import DeliveryOutcome, DeliveryResult
from voxflow.errors import ConfigError
from voxflow.protocol import Event, to_wire
from voxflow.protocol.signing import sign

TOKEN_HEADER = "X-API-TOKEN"
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MAX_RESPONSE_BYTES = 1 << 20
_IDLE_KEEPALIVE_S = 1.0


class _TooLargeError(Exception):
    pass


class _ConnectFailedError(Exception):
    def __init__(self, cause: Exception, attempts: int) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.attempts = attempts


def _env_proxy(scheme: str, host: str) -> str | None:
    """The proxy the environment names for this URL (HTTP(S)_PROXY, ALL_PROXY, NO_PROXY).

    Looked up once here rather than by aiohttp's ``trust_env``, which reads ``~/.netrc`` in a
    thread on every request and ignores ALL_PROXY.
    """
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    return proxy


def encode_event(event: Event) -> bytes:
    """The exact bytes POSTed (and signed) for ``event``: compact canonical JSON."""
    return json.dumps(to_wire(event), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _describe_transport_error(exc: Exception) -> str:
    # Some client messages are empty; the class name still says a lot.
    return str(exc) or type(exc).__name__


class WebhookDispatcher:
    """POST each event to ``url`` and read the actions from the response.

    One pooled aiohttp session of at most ``max_connections`` keep-alive connections (TLS
    verified by default; a proxy named by the environment is used) serves all calls; a
    ``client`` session passed in is used as it is and not closed here.
    The whole delivery, retries included, must finish within ``timeout_s``. Only failures to
    connect are retried (``connect_retries`` more times): once a request may have reached the
    assistant it is never sent twice, since the assistant may already have acted on it.
    Redirects are not followed and a response body is read only up to ``max_response_bytes``.
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
        client: aiohttp.ClientSession | None = None,
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
        proxy = _env_proxy(parts.scheme, parts.hostname or "")
        proxy_parts = urlsplit(proxy or "")
        if proxy is not None and proxy_parts.scheme not in ("http", "https"):
            raise ConfigError(f"webhook proxy {proxy!r} from the environment must be http(s)://")
        self.url = url
        self.timeout_s = timeout_s
        self._proxy = proxy  # credentials in it become Proxy-Authorization (aiohttp does it)
        self._api_token = api_token
        self._signing_secret = signing_secret or None
        self._connect_retries = connect_retries
        self._retry_backoff_s = retry_backoff_s
        self._max_response_bytes = max_response_bytes
        self._verify_tls = verify_tls
        self._max_connections = max_connections
        self._clock = clock
        self._owns_client = client is None
        self._client = client

    def _session(self) -> aiohttp.ClientSession:
        # Made on first use: an aiohttp session belongs to the running event loop.
        if self._client is None:
            self._client = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._max_connections,
                    # Give idle connections up well before servers do (uvicorn 5 s, gunicorn 2 s):
                    # reusing one the server is closing at that moment fails the POST after it
                    # was sent, which is not retried, and the event (even session_end) is lost.
                    keepalive_timeout=_IDLE_KEEPALIVE_S,
                    ssl=ssl.create_default_context() if self._verify_tls else False,
                ),
                # A backstop per attempt; deliver() holds the whole delivery to timeout_s.
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                headers={"User-Agent": "voxflow"},
                cookie_jar=aiohttp.DummyCookieJar(),  # webhook answers set no session state
            )
        return self._client

    def _headers(self, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_token:
            headers[TOKEN_HEADER] = self._api_token
        if self._signing_secret:
            headers.update(sign(body, self._signing_secret, int(self._clock())))
        return headers

    async def _post_once(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        async with self._session().post(
            self.url,
            data=body,
            headers=headers,
            allow_redirects=False,
            proxy=self._proxy,
        ) as reply:
            declared = reply.content_length
            if declared is not None and declared > self._max_response_bytes:
                reply.close()  # the rest of the body is never read: the connection is not reused
                raise _TooLargeError(f"declared {declared} bytes")
            chunks: list[bytes] = []
            size = 0
            async for chunk in reply.content.iter_any():
                size += len(chunk)
                if size > self._max_response_bytes:
                    reply.close()
                    raise _TooLargeError(f"more than {self._max_response_bytes} bytes")
                chunks.append(chunk)
            return reply.status, b"".join(chunks)

    async def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, int]:
        attempt = 0
        while True:
            attempt += 1
            try:
                status, payload = await self._post_once(body, headers)
            except aiohttp.ClientConnectorError as exc:  # refused, DNS, TLS handshake, proxy
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
        except TimeoutError:  # aiohttp's own timeouts are TimeoutErrors too
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
        except aiohttp.ClientError as exc:
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
        """Close the pooled session (unless it was passed in by the caller)."""
        if self._owns_client and self._client is not None:
            await self._client.close()
            self._client = None
