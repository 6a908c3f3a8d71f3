"""A webhook that is down, slow, or answers garbage never crashes anything: each failure is
logged with its reason, the call's record keeps it, and after three in a row the engine
apologises and hangs up (the SIPp caller receives the BYE)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from assistant_peers import WebhookServer, running_webhook_server
from peers import Sipp, free_port

from voxflow.server.app import VoxflowApp

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def webhook() -> Iterator[WebhookServer]:
    with running_webhook_server() as server:
        yield server


CASES = [
    # (name, path or None for "nothing listens", outcome in the log and record, timeout)
    ("down", None, "connect_error", 5.0),
    ("slow", "slow", "timeout", 0.3),
    ("invalid_json", "garbage", "invalid_json", 5.0),
    ("unknown_action", "unknown-action", "invalid_action", 5.0),
    ("wrong_session", "wrong-session", "wrong_session", 5.0),
    ("client_error", "no-such-route", "http_status", 5.0),
    ("server_error", "error", "http_status", 5.0),
]


@pytest.mark.parametrize(("name", "path", "outcome", "timeout_s"), CASES,
                         ids=[case[0] for case in CASES])
async def test_failing_webhook_gets_the_fallback(
    webhook: WebhookServer, make_engine: Callable[..., VoxflowApp], sipp: Callable[..., Sipp],
    info_call: Callable[..., Path], caplog: pytest.LogCaptureFixture,
    name: str, path: str | None, outcome: str, timeout_s: float,
) -> None:
    url = f"{webhook.url}/{path}" if path else f"http://127.0.0.1:{free_port()}/"
    caplog.set_level(logging.INFO)
    # session_start fails, then two key presses fail: the third failure brings the fallback.
    scenario = info_call("12", first_pause_ms=500, gap_ms=300)
    async with make_engine(webhook=url, webhook_timeout=timeout_s,
                           fallback_text="Sorry, goodbye.") as app:
        client = sipp(name, scenario=scenario)
        host, port = app.line.address
        result = await asyncio.to_thread(client.run, f"{host}:{port}", timeout=30)
        # SIPp ends successfully only once it received the engine's BYE.
        assert result.exit_code == 0 and result.successful == 1, result.output[-3000:]
    assert not app.calls
    calls = app.records.recent_calls()
    assert len(calls) == 1
    session_id = calls[0].call_id
    timeline = app.records.timeline(session_id)

    failed = [m for m in caplog.messages
              if "assistant delivery failed" in m and f"outcome={outcome}" in m]
    assert failed and all(session_id in m for m in failed), caplog.messages
    assert any("consecutive assistant failures: playing the fallback" in m
               for m in caplog.messages)
    deliveries = [e for e in timeline if e.kind == "delivery"]
    assert [d.outcome for d in deliveries[:3]] == [outcome] * 3
    assert all(d.payload and d.payload.get("error") for d in deliveries[:3])
    spoken = [e.payload for e in timeline if e.kind == "event" and e.type == "assistant_speak"]
    assert spoken and spoken[-1]["text"] == "Sorry, goodbye."
    assert [e.type for e in timeline if e.kind == "event"][-1] == "session_end"
    assert calls[0].end_reason is not None
