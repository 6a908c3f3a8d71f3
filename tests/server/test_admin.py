"""The admin API over real HTTP: uvicorn on a free 127.0.0.1 port inside a running engine whose
assistant is the seed IVR (plain Flask webhook under werkzeug)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from voxflow.errors import ConfigError
from voxflow.server.admin import AdminServer
from voxflow.server.app import VoxflowApp
from voxflow.server.config import load_settings

SUPPORT = "+49211100201"


@dataclass
class Admin:
    app: VoxflowApp
    client: httpx.AsyncClient


async def wait_for_timeline(client: httpx.AsyncClient, call_id: str,
                            done: Callable[[list[dict[str, Any]]], bool],
                            timeout_s: float = 15.0) -> dict[str, Any]:
    """Poll the call's timeline until ``done(timeline)``; the last answer."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        reply = await client.get(f"/api/calls/{call_id}")
        assert reply.status_code == 200, reply.text
        data: dict[str, Any] = reply.json()
        if done(data["timeline"]):
            return data
        if asyncio.get_running_loop().time() > deadline:
            seen = [(e["kind"], e["type"]) for e in data["timeline"]]
            raise AssertionError(f"timeline condition not met within {timeout_s} s: {seen}")
        await asyncio.sleep(0.05)


def has(kind: str, entry_type: str, **payload: Any) -> Callable[[list[dict[str, Any]]], bool]:
    def check(timeline: list[dict[str, Any]]) -> bool:
        return any(e["kind"] == kind and e["type"] == entry_type
                   and all((e["payload"] or {}).get(k) == v for k, v in payload.items())
                   for e in timeline)
    return check


@pytest.fixture
async def admin(make_engine: Callable[..., VoxflowApp], flask_ivr: Any) -> AsyncIterator[Admin]:
    app = make_engine(webhook=flask_ivr.url)
    async with app:
        server = AdminServer(app, "127.0.0.1", 0)
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                yield Admin(app, client)
        finally:
            await server.stop()


async def test_health_and_empty_call_list(admin: Admin) -> None:
    health = await admin.client.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "live_calls": 0}
    calls = await admin.client.get("/api/calls")
    assert calls.json() == {"live": [], "recent": []}


async def test_simulated_call_key_two_is_transferred_and_shows_in_timeline(
    admin: Admin, flask_ivr: Any
) -> None:
    started = await admin.client.post("/api/simulated-calls", json={"caller": "+4930555"})
    assert started.status_code == 201
    call_id = started.json()["call_id"]
    listed = (await admin.client.get("/api/calls")).json()
    assert [c["call_id"] for c in listed["live"]] == [call_id]
    assert listed["live"][0]["simulated"] is True
    assert listed["live"][0]["from_number"] == "+4930555"

    # The menu prompt is the answer to session_start; press 2 once it has come back.
    await wait_for_timeline(admin.client, call_id, has("action", "speak"))
    pressed = await admin.client.post(f"/api/calls/{call_id}/dtmf", json={"digit": "2"})
    assert pressed.status_code == 202, pressed.text

    data = await wait_for_timeline(
        admin.client, call_id,
        lambda t: has("event", "dtmf_received", digit="2")(t)
        and has("action", "transfer", target_phone_number=SUPPORT)(t)
        and has("event", "session_end")(t),
    )
    timeline = data["timeline"]
    kinds = [(e["kind"], e["type"]) for e in timeline]
    # The key press reached the session by the line's path, before its event went out.
    assert kinds.index(("line", "key")) < kinds.index(("event", "dtmf_received"))
    assert kinds.index(("event", "dtmf_received")) < kinds.index(("action", "transfer"))
    deliveries = [e for e in timeline if e["kind"] == "delivery"]
    assert deliveries and all(e["outcome"] in ("ok", "no_action") for e in deliveries)
    assert all(e["latency_ms"] is not None and e["latency_ms"] > 0 for e in deliveries)
    assert [e["offset_s"] for e in timeline] == sorted(e["offset_s"] for e in timeline)
    # The webhook itself saw the key press of this very call.
    assert any(e["type"] == "dtmf_received" and e["digit"] == "2"
               for e in flask_ivr.seen.of(call_id))

    # The transfer ended the call: it leaves the live list and is a recent call with a reason.
    for _ in range(200):
        listed = (await admin.client.get("/api/calls")).json()
        recent = {c["call_id"]: c for c in listed["recent"]}
        if not listed["live"] and recent.get(call_id, {}).get("end_reason"):
            break
        await asyncio.sleep(0.05)
    assert listed["live"] == []
    assert recent[call_id]["transport"] == "simulated"
    assert recent[call_id]["end_reason"] == "hangup (local)"
    final = (await admin.client.get(f"/api/calls/{call_id}")).json()["timeline"]
    hangups = [e["payload"]["reason"] for e in final
               if (e["kind"], e["type"]) == ("line", "hangup")]
    assert len(hangups) == 1 and hangups[0].startswith(f"transferred: to {SUPPORT}")

    metrics = await admin.client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in families.values() for s in family.samples}
    assert samples[("voxflow_calls_live", ())] == 0
    assert samples[("voxflow_calls_total", (("line", "simulated"),))] == 1
    assert samples[("voxflow_dtmf_received_total",
                    (("line", "simulated"), ("source", "stream")))] == 1
    assert samples[("voxflow_deliveries_total", (("outcome", "ok"),))] >= 2
    assert families["voxflow_delivery_latency_seconds"].type == "histogram"
    count = samples[("voxflow_delivery_latency_seconds_count", ())]
    assert count == len([e for e in timeline if e["kind"] == "delivery"])
    assert samples[("voxflow_delivery_latency_seconds_bucket", (("le", "+Inf"),))] == count


async def test_bad_requests_are_refused_with_a_reason(admin: Admin) -> None:
    unknown = await admin.client.post("/api/calls/nope/dtmf", json={"digit": "1"})
    assert unknown.status_code == 404
    assert "nope" in unknown.json()["error"]
    assert (await admin.client.get("/api/calls/nope")).status_code == 404
    assert (await admin.client.post("/api/calls/nope/hangup")).status_code == 404

    call_id = (await admin.client.post("/api/simulated-calls")).json()["call_id"]
    bad_key = await admin.client.post(f"/api/calls/{call_id}/dtmf", json={"digit": "A"})
    assert bad_key.status_code == 400
    assert "0-9" in bad_key.json()["error"]
    not_json = await admin.client.post(f"/api/calls/{call_id}/dtmf", content=b"{")
    assert not_json.status_code == 400

    hung_up = await admin.client.post(f"/api/calls/{call_id}/hangup")
    assert hung_up.status_code == 202
    data = await wait_for_timeline(admin.client, call_id, has("event", "session_end"))
    assert has("line", "hangup", reason="hung up from the admin API")(data["timeline"])
    assert all(e["type"] != "dtmf_received" for e in data["timeline"])


async def test_admin_token_guards_api_and_metrics_but_not_health(
    make_engine: Callable[..., VoxflowApp], flask_ivr: Any
) -> None:
    app = make_engine(webhook=flask_ivr.url)
    async with app:
        server = AdminServer(app, "127.0.0.1", 0, token="s3cret")
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=server.url) as client:
                assert (await client.get("/health")).status_code == 200
                assert (await client.get("/")).status_code == 200
                for path in ("/api/calls", "/metrics"):
                    refused = await client.get(path)
                    assert refused.status_code == 401
                    assert refused.headers["www-authenticate"] == "Bearer"
                wrong = await client.get("/api/calls", headers={"Authorization": "Bearer nope"})
                assert wrong.status_code == 401
                refused_post = await client.post("/api/simulated-calls")
                assert refused_post.status_code == 401
                assert app.calls == {}
                ok = await client.get("/api/calls", headers={"Authorization": "Bearer s3cret"})
                assert ok.status_code == 200
        finally:
            await server.stop()


async def test_dashboard_files_are_served(admin: Admin) -> None:
    page = await admin.client.get("/")
    assert page.status_code == 200
    assert 'id="keypad"' in page.text and "/static/app.js" in page.text
    script = await admin.client.get("/static/app.js")
    assert script.status_code == 200 and "/api/simulated-calls" in script.text
    assert (await admin.client.get("/static/style.css")).status_code == 200


def test_admin_listen_setting_is_off_by_default_and_validated() -> None:
    base = {"webhook": "http://127.0.0.1:9/", "sip_listen": "127.0.0.1:5060"}
    assert load_settings(environ={}, overrides=base).admin_address() is None
    on = load_settings(environ={"VOXFLOW_ADMIN_LISTEN": "127.0.0.1:8089"}, overrides=base)
    assert on.admin_address() == ("127.0.0.1", 8089)
    with pytest.raises(ConfigError, match="admin_listen"):
        load_settings(environ={}, overrides={**base, "admin_listen": "nowhere"})


async def test_admin_port_in_use_is_a_config_error(
    make_engine: Callable[..., VoxflowApp], flask_ivr: Any
) -> None:
    app = make_engine(webhook=flask_ivr.url)
    async with app:
        first = AdminServer(app, "127.0.0.1", 0)
        await first.start()
        try:
            assert first.address is not None
            second = AdminServer(app, "127.0.0.1", first.address[1])
            with pytest.raises(ConfigError, match="admin_listen"):
                await second.start()
        finally:
            await first.stop()
