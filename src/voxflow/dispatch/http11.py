"""A small keep-alive HTTP/1.1 client for webhook POSTs: an asyncio protocol and httptools' parser.

Why not httpx here: each webhook request cost the engine about 1 ms of CPU through httpx and
httpcore (layers, h11, a scan of every pooled connection when a request starts or ends), against
a few tens of microseconds for this client. At hundreds of key presses per second that was the
engine's largest single cost, and events queued behind it.

Only what a webhook needs: POST with a body; responses framed by Content-Length, chunked, or by
the server closing the connection; a cap on the response size; keep-alive connections, at most
``max_connections`` open; TLS from an ``ssl.SSLContext``. Redirects are not followed (a 3xx comes
back as it is), responses are not decompressed (none is asked for), proxies are not supported
(:class:`~voxflow.dispatch.webhook.WebhookDispatcher` uses httpx when one is configured).
"""

from __future__ import annotations

import asyncio
import select
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

from voxflow.errors import ConfigError


class HttpConnectError(Exception):
    """No connection could be made: the request was not sent (safe to try again)."""


class HttpTransportError(Exception):
    """The connection failed after the request was sent (the server may have acted on it)."""


class HttpResponseTooLargeError(Exception):
    """The response body is over the size limit; the message says how it was noticed."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """Status and complete body of one response."""

    status: int
    body: bytes


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: one request at a time, then idle in the pool if kept alive."""

    def __init__(self, max_body: int) -> None:
        self._max_body = max_body
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[HttpResponse] | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._framed = False  # Content-Length or chunked: the end is known without a close
        self._headers_done = False
        self._too_large: str | None = None
        self._keep_alive = False
        self.closed = False

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # data nobody asked for: the connection's state is unknown
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpTransportError(f"malformed HTTP response: {exc}"))
            return
        if self._too_large is not None:
            self._fail(HttpResponseTooLargeError(self._too_large))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._headers_done and not self._framed:
            # The body ran until the server closed the connection (no length, not chunked).
            waiter.set_result(HttpResponse(self._parser.get_status_code(), b"".join(self._chunks)))
        else:
            reason = f": {exc}" if exc else ""
            waiter.set_exception(
                HttpTransportError(f"connection closed before the response was complete{reason}")
            )

    # -- httptools callbacks ---------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"content-length":
            self._framed = True
            declared = value.strip()
            if declared.isdigit() and int(declared) > self._max_body:
                self._too_large = f"declared {declared.decode()} bytes"
        elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
            self._framed = True

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        if self._too_large is not None:
            return
        self._size += len(body)
        if self._size > self._max_body:
            self._too_large = f"more than {self._max_body} bytes"
        else:
            self._chunks.append(body)

    def on_message_complete(self) -> None:
        waiter = self._waiter
        if self._too_large is not None or waiter is None or waiter.done():
            return
        self._keep_alive = self._parser.should_keep_alive()
        waiter.set_result(HttpResponse(self._parser.get_status_code(), b"".join(self._chunks)))

    # -- use -------------------------------------------------------------------------------------

    @property
    def reusable(self) -> bool:
        """Whether the last exchange left the connection open and ready for the next request."""
        return not self.closed and self._keep_alive and self._waiter is None

    def looks_idle(self) -> bool:
        """An idle connection must have nothing to read; a pending FIN or stray bytes mean the
        server is closing it (checked before reuse, since the loop may not have seen it yet)."""
        if self.closed or self._transport is None:
            return False
        sock = self._transport.get_extra_info("socket")
        if sock is None:
            return True
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        return not poller.poll(0)

    async def request(self, data: bytes) -> HttpResponse:
        """Send one complete request and wait for its response."""
        assert self._transport is not None
        self._parser = httptools.HttpResponseParser(self)
        self._chunks, self._size, self._framed = [], 0, False
        self._headers_done, self._too_large, self._keep_alive = False, None, False
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            self._transport.write(data)
            return await self._waiter
        except BaseException:
            self.close()  # cancelled or failed half-way: the stream position is unknown
            raise
        finally:
            self._waiter = None

    def _fail(self, error: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self.closed = True
        if self._transport is not None:
            self._transport.close()


class Http11Pool:
    """POSTs to one URL over at most ``max_connections`` keep-alive connections."""

    def __init__(
        self,
        url: str,
        *,
        max_connections: int,
        max_response_bytes: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"URL {url!r} must be an absolute http:// or https:// URL")
        if max_connections < 1:
            raise ConfigError(f"max_connections must be >= 1, got {max_connections}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self._ssl = ssl_context or ssl.create_default_context()
        netloc = parts.netloc.rpartition("@")[2]  # credentials never go into the Host header
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._head = f"POST {target} HTTP/1.1\r\nHost: {netloc}\r\nUser-Agent: voxflow\r\n"
        self._max_body = max_response_bytes
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []

    async def post(self, body: bytes, headers: dict[str, str]) -> HttpResponse:
        """POST ``body``; raises :class:`HttpConnectError`, :class:`HttpTransportError` or
        :class:`HttpResponseTooLargeError`."""
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        data = f"{self._head}{lines}Content-Length: {len(body)}\r\n\r\n".encode("latin-1") + body
        async with self._slots:
            connection = self._take_idle() or await self._connect()
            response = await connection.request(data)
            if connection.reusable:
                self._idle.append(connection)
            else:
                connection.close()
            return response

    def _take_idle(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()  # the most recently used is the least likely closed
            if connection.looks_idle():
                return connection
            connection.close()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                lambda: _Connection(self._max_body),
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._host if self._ssl is not None else None,
            )
        except OSError as exc:  # refused, unreachable, DNS, TLS handshake
            raise HttpConnectError(str(exc) or type(exc).__name__) from exc
        return connection

    async def aclose(self) -> None:
        """Close the idle connections (those in use close when their request ends)."""
        for connection in self._idle:
            connection.close()
        self._idle.clear()
