import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from assistant_peers import WebhookServer, free_port, session_start, user_speak

from voxflow.dispatch.result import DeliveryOutcome, DeliveryResult
from voxflow.dispatch.webhook import WebhookDispatcher
from voxflow.errors import ConfigError
from voxflow.protocol import HangupAction, SpeakAction
from voxflow.protocol.signing import verify


async def deliver_to(url: str, session_id: str = "call-1", **options: Any) -> DeliveryResult:
    dispatcher = WebhookDispatcher(url, **options)
    try:
        return await dispatcher.deliver(user_speak(session_id, "hello"))
    finally:
        await dispatcher.aclose()


async def test_single_action_is_parsed(webhook_server: WebhookServer) -> None:
    result = await deliver_to(f"{webhook_server.url}/speak")
    assert result.outcome is DeliveryOutcome.OK
    assert result.status == 200
    assert result.actions == [SpeakAction(session_id="call-1", text="echo hello")]
    assert result.latency_ms > 0
    assert result.event_type == "user_speak"


async def test_array_of_actions_keeps_order(webhook_server: WebhookServer) -> None:
    result = await deliver_to(f"{webhook_server.url}/array")
    assert result.outcome is DeliveryOutcome.OK
    assert [type(a) for a in result.actions] == [SpeakAction, HangupAction]


@pytest.mark.parametrize(("path", "status"), [("no-content", 204), ("empty", 200)])
async def test_no_action_answers(webhook_server: WebhookServer, path: str, status: int) -> None:
    result = await deliver_to(f"{webhook_server.url}/{path}")
    assert result.outcome is DeliveryOutcome.NO_ACTION
    assert result.status == status
    assert result.actions == []
    assert not result.failed


async def test_event_is_posted_as_json_with_token(webhook_server: WebhookServer) -> None:
    await deliver_to(f"{webhook_server.url}/speak", "call-token", api_token="t0ken")
    request = next(r for r in webhook_server.requests("speak") if r.session_id == "call-token")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-api-token"] == "t0ken"
    event = json.loads(request.body)
    assert event["type"] == "user_speak"
    assert event["session"]["from_phone_number"] == "+9876543210"
    assert "x-voxflow-signature" not in request.headers


async def test_signature_verifies_on_the_receiving_side(webhook_server: WebhookServer) -> None:
    await deliver_to(f"{webhook_server.url}/speak", "call-signed", signing_secret="s3cret")
    request = next(r for r in webhook_server.requests("speak") if r.session_id == "call-signed")
    verify(request.headers, request.body, ["s3cret"], now=time.time())
    assert "x-api-token" not in request.headers


async def test_slow_assistant_times_out_within_deadline_without_retry(
    webhook_server: WebhookServer,
) -> None:
    before = len(webhook_server.requests("slow"))
    result = await deliver_to(f"{webhook_server.url}/slow", timeout_s=0.25)
    assert result.outcome is DeliveryOutcome.TIMEOUT
    assert "within 0.25 s" in (result.error or "")
    assert 250 <= result.latency_ms < 900  # the deadline, not the server's 1 s
    assert len(webhook_server.requests("slow")) == before + 1
    assert result.attempts == 1


async def test_server_down_is_connect_error_after_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}/speak"
    result = await deliver_to(url, connect_retries=2, retry_backoff_s=0.01)
    assert result.outcome is DeliveryOutcome.CONNECT_ERROR
    assert result.attempts == 3
    assert "after 3 attempt(s)" in (result.error or "")
    assert result.failed


@pytest.mark.parametrize(("path", "status"), [("error", 500), ("missing", 404)])
async def test_error_status_is_reported(
    webhook_server: WebhookServer, path: str, status: int
) -> None:
    result = await deliver_to(f"{webhook_server.url}/{path}")
    assert result.outcome is DeliveryOutcome.HTTP_STATUS
    assert result.status == status
    assert f"HTTP {status}" in (result.error or "")
    assert result.actions == []


async def test_garbage_body_is_invalid_json(webhook_server: WebhookServer) -> None:
    result = await deliver_to(f"{webhook_server.url}/garbage")
    assert result.outcome is DeliveryOutcome.INVALID_JSON
    assert "<html>oops</html>" in (result.error or "")


async def test_unknown_action_type_is_named(webhook_server: WebhookServer) -> None:
    result = await deliver_to(f"{webhook_server.url}/unknown-action")
    assert result.outcome is DeliveryOutcome.INVALID_ACTION
    assert "unknown action type 'dance'" in (result.error or "")


async def test_foreign_session_id_rejects_the_response(webhook_server: WebhookServer) -> None:
    result = await deliver_to(f"{webhook_server.url}/wrong-session")
    assert result.outcome is DeliveryOutcome.WRONG_SESSION
    assert result.actions == []
    assert "'other-call'" in (result.error or "")


@pytest.mark.parametrize("path", ["huge", "huge-chunked"])
async def test_oversized_response_is_cut_off(webhook_server: WebhookServer, path: str) -> None:
    result = await deliver_to(f"{webhook_server.url}/{path}")
    assert result.outcome is DeliveryOutcome.RESPONSE_TOO_LARGE
    assert "1048576-byte limit" in (result.error or "")


async def test_one_pooled_client_serves_many_deliveries(webhook_server: WebhookServer) -> None:
    dispatcher = WebhookDispatcher(f"{webhook_server.url}/speak")
    try:
        results = [await dispatcher.deliver(session_start(f"pool-{i}")) for i in range(5)]
    finally:
        await dispatcher.aclose()
    assert [r.outcome for r in results] == [DeliveryOutcome.OK] * 5
    assert [r.actions[0].session_id for r in results] == [f"pool-{i}" for i in range(5)]


@pytest.mark.parametrize(
    ("url", "options"),
    [("ftp://x/", {}), ("/relative", {}), ("http://x/", {"timeout_s": 0})],
)
def test_bad_configuration_is_rejected(url: str, options: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match="webhook"):
        WebhookDispatcher(url, **options)


@pytest.mark.parametrize(("max_connections", "deliveries"), [(20, 20), (3, 4)])
async def test_connection_limit_holds(
    webhook_server: WebhookServer, max_connections: int, deliveries: int
) -> None:
    # Exactly max_connections requests are in flight at once: the server's 1 s answers overlap
    # up to the limit, and one request over it waits for a free connection.
    dispatcher = WebhookDispatcher(
        f"{webhook_server.url}/slow", timeout_s=5, max_connections=max_connections
    )
    sessions = [f"limit-{max_connections}-{i}" for i in range(deliveries)]
    try:
        results = await asyncio.gather(
            *(dispatcher.deliver(session_start(session)) for session in sessions)
        )
    finally:
        await dispatcher.aclose()
    assert [r.outcome for r in results] == [DeliveryOutcome.OK] * deliveries
    arrived = sorted(r.loop_time for r in webhook_server.requests("slow")
                     if r.session_id in sessions)
    assert len(arrived) == deliveries
    assert arrived[max_connections - 1] - arrived[0] < 0.8  # all within the limit overlapped
    if deliveries > max_connections:
        assert arrived[max_connections] - arrived[0] >= 0.9  # waited for a connection


def test_max_connections_must_allow_a_request() -> None:
    with pytest.raises(ConfigError, match="max_connections"):
        WebhookDispatcher("http://x/", max_connections=0)


# -- against a scripted raw HTTP server: framing, broken answers, what is (not) sent twice ---------

Script = Callable[[int, bytes], bytes | None]
"""(request number on this connection, request body) → raw answer; None closes silently."""


class RawServer:
    def __init__(self) -> None:
        self.connections = 0
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []


@asynccontextmanager
async def raw_server(
    script: Script, close_after: bool = False, delay_first_s: float = 0.0
) -> AsyncIterator[tuple[RawServer, str]]:
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
                body = await reader.readexactly(length)
                state.heads.append(head)
                state.bodies.append(body)
                if len(state.heads) == 1 and delay_first_s:
                    await asyncio.sleep(delay_first_s)
                answer = script(number, body)
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


def hangup(session_id: str = "call-1") -> bytes:
    return json.dumps({"type": "hangup", "session_id": session_id}).encode()


def ok(body: bytes = hangup(), extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def test_deliveries_reuse_one_keep_alive_connection_and_carry_headers() -> None:
    async with raw_server(lambda n, body: ok()) as (server, url):
        dispatcher = WebhookDispatcher(url, api_token="t")
        try:
            results = [await dispatcher.deliver(user_speak("call-1", "hi")) for _ in range(2)]
        finally:
            await dispatcher.aclose()
    assert [r.outcome for r in results] == [DeliveryOutcome.OK] * 2
    assert server.connections == 1
    assert server.heads[0].startswith(b"POST /hook?x=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{url.split(':')[2].split('/')[0]}\r\n".encode() in server.heads[0]
    assert b"X-API-TOKEN: t\r\n" in server.heads[0]
    assert [json.loads(body)["type"] for body in server.bodies] == ["user_speak"] * 2


async def test_connections_the_server_closes_are_not_reused() -> None:
    answers = [ok(extra=b"Connection: close\r\n"), ok(), ok()]
    async with raw_server(lambda n, body: answers.pop(0), close_after=True) as (server, url):
        results = [await deliver_to(url) for _ in range(3)]
    assert [r.outcome for r in results] == [DeliveryOutcome.OK] * 3
    assert server.connections == 3


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(hangup()), hangup()),
        b"HTTP/1.0 200 OK\r\n\r\n" + hangup(),
    ],
    ids=["chunked", "close-delimited"],
)
async def test_response_framings(answer: bytes) -> None:
    async with raw_server(lambda n, body: answer, close_after=True) as (_, url):
        result = await deliver_to(url)
    assert result.outcome is DeliveryOutcome.OK
    assert [type(a) for a in result.actions] == [HangupAction]


async def test_redirect_is_reported_not_followed() -> None:
    answer = b"HTTP/1.1 302 Found\r\nLocation: /else\r\nContent-Length: 0\r\n\r\n"
    async with raw_server(lambda n, body: answer) as (server, url):
        result = await deliver_to(url)
    assert result.outcome is DeliveryOutcome.HTTP_STATUS
    assert result.status == 302
    assert "(redirects are not followed)" in (result.error or "")
    assert len(server.heads) == 1  # nothing went to /else


@pytest.mark.parametrize(
    "answer",
    [
        None,
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"SMTP ready\r\n\r\n",
    ],
    ids=["closed-unanswered", "closed-mid-body", "not-http"],
)
async def test_failure_after_sending_is_not_retried(answer: bytes | None) -> None:
    async with raw_server(lambda n, body: answer, close_after=True) as (server, url):
        result = await deliver_to(url, connect_retries=2, retry_backoff_s=0.01)
    assert result.outcome is DeliveryOutcome.CONNECT_ERROR
    assert "after the request was sent (not retried)" in (result.error or "")
    assert result.attempts == 1
    assert len(server.bodies) == 1  # the assistant saw the event exactly once


@pytest.mark.parametrize("retries", [0, 1])
async def test_connect_retries_count(retries: int) -> None:
    url = f"http://127.0.0.1:{free_port()}/speak"
    result = await deliver_to(url, connect_retries=retries, retry_backoff_s=0.01)
    assert result.outcome is DeliveryOutcome.CONNECT_ERROR
    assert result.attempts == retries + 1
    assert f"after {retries + 1} attempt(s)" in (result.error or "")


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
async def test_size_cap_is_enforced_and_the_pool_recovers(answer: bytes, message: str) -> None:
    answers = [answer, ok()]
    async with raw_server(lambda n, body: answers.pop(0)) as (server, url):
        dispatcher = WebhookDispatcher(url, max_response_bytes=1000)
        try:
            refused = await dispatcher.deliver(user_speak("call-1", "hi"))
            after = await dispatcher.deliver(user_speak("call-1", "hi"))
        finally:
            await dispatcher.aclose()
    assert refused.outcome is DeliveryOutcome.RESPONSE_TOO_LARGE
    assert message in (refused.error or "")
    assert "1000-byte limit" in (refused.error or "")
    # The next delivery gets its own answer, on a fresh connection or on one whose oversized
    # answer had already been framed completely (never one left half read).
    assert after.outcome is DeliveryOutcome.OK
    assert [type(a) for a in after.actions] == [HangupAction]
    assert len(server.bodies) == 2


def answer_own_session(number: int, body: bytes) -> bytes:
    return ok(hangup(json.loads(body)["session"]["id"]))


async def test_a_late_answer_never_becomes_the_next_deliverys_answer() -> None:
    async with raw_server(answer_own_session, delay_first_s=0.6) as (server, url):
        dispatcher = WebhookDispatcher(url, timeout_s=0.3)
        try:
            late = await dispatcher.deliver(user_speak("first", "hi"))
            after = await dispatcher.deliver(user_speak("second", "hi"))
        finally:
            await dispatcher.aclose()
    assert late.outcome is DeliveryOutcome.TIMEOUT
    # Had the first request's late answer been read as the second's, it would name "first".
    assert after.outcome is DeliveryOutcome.OK
    assert [a.session_id for a in after.actions] == ["second"]
    assert server.connections == 2  # the timed-out request's connection was dropped


async def test_a_proxy_named_by_the_environment_carries_the_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with raw_server(lambda n, body: ok()) as (proxy, proxy_url):
        address = proxy_url.split("/")[2]
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://user:pw@{address}")
        result = await deliver_to("http://assistant.invalid/hook")
    assert result.outcome is DeliveryOutcome.OK
    assert proxy.heads[0].startswith(b"POST http://assistant.invalid/hook HTTP/1.1\r\n")
    assert b"Proxy-Authorization: Basic dXNlcjpwdw==\r\n" in proxy.heads[0]  # user:pw


def test_a_proxy_aiohttp_cannot_use_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(ConfigError, match="proxy"):
        WebhookDispatcher("http://assistant.invalid/hook")
