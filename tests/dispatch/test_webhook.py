import asyncio
import json
import time
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
