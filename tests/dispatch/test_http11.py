"""The lean webhook HTTP/1.1 client against a scripted raw server on 127.0.0.1: framing,
keep-alive, connections the server closes, malformed and oversized answers, refused connects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from assistant_peers import free_port

from voxflow.dispatch.http11 import (
    Http11Pool,
    HttpConnectError,
    HttpResponseTooLargeError,
    HttpTransportError,
)

Script = Callable[[int, bytes], bytes | None]
"""(request number on this connection, request head) → raw answer; None closes silently."""


class RawServer:
    def __init__(self) -> None:
        self.connections = 0
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []


@asynccontextmanager
async def raw_server(script: Script, close_after: bool = False) -> AsyncIterator[
    tuple[RawServer, str]
]:
    state = RawServer()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        number = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                state.heads.append(head)
                state.bodies.append(await reader.readexactly(length))
                answer = script(number, head)
                number += 1
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield state, f"http://127.0.0.1:{port}/hook?x=1"
    finally:
        server.close()
        await server.wait_closed()


def ok(body: bytes = b'{"ok":1}', extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def pool(url: str, **options: int) -> Http11Pool:
    return Http11Pool(url, max_connections=options.get("max_connections", 4),
                      max_response_bytes=options.get("max_response_bytes", 1000))


async def test_requests_reuse_one_keep_alive_connection_and_carry_headers() -> None:
    async with raw_server(lambda n, head: ok(b"answer %d" % n)) as (server, url):
        client = pool(url)
        first = await client.post(b"one", {"X-API-TOKEN": "t"})
        second = await client.post(b"two", {})
        await client.aclose()
    assert (first.status, first.body, second.body) == (200, b"answer 0", b"answer 1")
    assert server.connections == 1
    assert server.bodies == [b"one", b"two"]
    assert server.heads[0].startswith(b"POST /hook?x=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"X-API-TOKEN: t\r\n" in server.heads[0]


async def test_connection_close_answers_and_idle_closes_by_the_server_are_not_reused() -> None:
    answers = [ok(b"a", b"Connection: close\r\n"), ok(b"b"), ok(b"c")]
    async with raw_server(lambda n, head: answers.pop(0), close_after=True) as (server, url):
        client = pool(url)
        bodies = [(await client.post(b"x", {})).body for _ in range(3)]
        await client.aclose()
    # The first said close; the others were closed by the server after answering, without
    # saying so: each next request still went out on a fresh connection.
    assert bodies == [b"a", b"b", b"c"]
    assert server.connections == 3


@pytest.mark.parametrize(
    ("answer", "body"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
         b"abcde"),
        (b"HTTP/1.0 200 OK\r\n\r\nuntil the end", b"until the end"),
        (b"HTTP/1.1 302 Found\r\nLocation: /else\r\nContent-Length: 0\r\n\r\n", b""),
    ],
    ids=["chunked", "close-delimited", "redirect-not-followed"],
)
async def test_response_framings(answer: bytes, body: bytes) -> None:
    async with raw_server(lambda n, head: answer, close_after=True) as (_, url):
        client = pool(url)
        response = await client.post(b"x", {})
        await client.aclose()
    assert response.body == body
    assert response.status == int(answer.split()[1])


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (None, "closed before the response was complete"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "closed before the response"),
        (b"SMTP ready\r\n\r\n", "malformed HTTP response"),
    ],
    ids=["closed-unanswered", "closed-mid-body", "not-http"],
)
async def test_broken_answers_are_transport_errors(answer: bytes | None, message: str) -> None:
    async with raw_server(lambda n, head: answer, close_after=True) as (_, url):
        client = pool(url)
        with pytest.raises(HttpTransportError, match=message):
            await client.post(b"x", {})
        await client.aclose()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (ok(b"y" * 1001), "declared 1001 bytes"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         + b"1f4\r\n" + b"z" * 500 + b"\r\n" + b"1f4\r\n" + b"z" * 500 + b"\r\n1\r\nz\r\n0\r\n\r\n",
         "more than 1000 bytes"),
    ],
    ids=["declared", "chunked"],
)
async def test_oversized_answers_are_refused_and_the_pool_recovers(
    answer: bytes, message: str
) -> None:
    answers = [answer, ok(b"fine")]
    async with raw_server(lambda n, head: answers.pop(0)) as (server, url):
        client = pool(url)
        with pytest.raises(HttpResponseTooLargeError, match=message):
            await client.post(b"x", {})
        after = await client.post(b"x", {})
        await client.aclose()
    assert after.body == b"fine"
    assert server.connections == 2  # the oversized answer's connection was not reused


async def test_refused_connection_is_a_connect_error() -> None:
    client = pool(f"http://127.0.0.1:{free_port()}/")
    with pytest.raises(HttpConnectError):
        await client.post(b"x", {})


async def test_a_cancelled_request_does_not_leave_its_connection_in_the_pool() -> None:
    answering = asyncio.Event()

    def script(number: int, head: bytes) -> bytes:
        answering.set()
        return ok(b"answer %d" % number)

    async with raw_server(script) as (server, url):
        client = pool(url)
        task = asyncio.ensure_future(client.post(b"x", {}))
        await answering.wait()
        task.cancel()  # e.g. the delivery deadline passed
        with pytest.raises(asyncio.CancelledError):
            await task
        # A late answer of the cancelled request must never become the next request's answer:
        # the next one goes out on a new connection.
        assert (await client.post(b"y", {})).body == b"answer 0"
        await client.aclose()
    assert server.connections == 2
