"""Outbound calls: the engine dials through a stand-in trunk on 127.0.0.1 and runs the assistant.

The callee is a real baresip that auto-answers (or SIPp answering busy / only ringing); the
assistant is the plain Flask IVR; the AI Flow outbound-call API is driven by the SDK's client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from peers import HOST, Baresip, Sipp
from typer.testing import CliRunner

from voxflow.errors import OutboundCallError
from voxflow.lines.sip import DialOutcome
from voxflow.sdk import call as sdk_call
from voxflow.server.admin import AdminServer
from voxflow.server.app import VoxflowApp
from voxflow.server.cli import app as cli

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]

DIALLED = "+49211555"

_UAS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="{name}">
  <recv request="INVITE"/>
{body}
</scenario>
"""
_RESPONSE = """  <send><![CDATA[
SIP/2.0 {status}
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
{cseq}
Contact: <sip:sipp@[local_ip]:[local_port]>
Content-Length: 0

]]></send>
"""
_LAST_CSEQ = "[last_CSeq:]"
_BUSY = _RESPONSE.format(status="486 Busy Here", cseq=_LAST_CSEQ) + '  <recv request="ACK"/>\n'
# Rings until cancelled: 200 for the CANCEL, 487 for the INVITE, then the ACK.
# The 487 answers the INVITE, whose CSeq the CANCEL shares by number only (RFC 3261 §9.1).
_RINGING = (_RESPONSE.format(status="180 Ringing", cseq=_LAST_CSEQ)
            + '  <recv request="CANCEL"/>\n' + _RESPONSE.format(status="200 OK", cseq=_LAST_CSEQ)
            + _RESPONSE.format(status="487 Request Terminated", cseq="CSeq: 1 INVITE")
            + '  <recv request="ACK"/>\n')


@pytest.fixture
def sip_uas(tmp_path: Path, sipp: Callable[..., Sipp]) -> Iterator[Callable[[str], Sipp]]:
    """``sip_uas("busy")`` / ``sip_uas("ringing")`` → a SIPp trunk stand-in, serving."""

    def make(kind: str) -> Sipp:
        body = {"busy": _BUSY, "ringing": _RINGING}[kind]
        scenario = tmp_path / f"uas_{kind}.xml"
        scenario.write_text(_UAS.format(name=kind, body=body))
        return sipp(f"uas_{kind}", scenario=scenario).serve(lifetime=30)

    yield make


def record_of(app: VoxflowApp, session_id: str) -> Any:
    app.records.flush()
    return app.records.call(session_id)


async def test_outbound_call_runs_the_assistant_and_reports_keys_as_outbound(
    flask_ivr: Any, make_engine: Callable[..., VoxflowApp], baresip: Callable[..., Baresip],
) -> None:
    callee = baresip("callee", user=DIALLED, answermode="auto")
    await asyncio.to_thread(callee.start)
    async with make_engine(webhook=flask_ivr.url,
                           transfer_domain=f"{HOST}:{callee.sip_port}") as app:
        placed = app.dial(DIALLED)
        outcome = await asyncio.wait_for(placed.wait_outcome(), 10)
        assert outcome is DialOutcome.ANSWERED, placed.detail
        await asyncio.to_thread(callee.wait_event, "CALL_ESTABLISHED", 5)
        # The assistant speaks (the menu), then the callee presses 1.
        await asyncio.to_thread(flask_ivr.seen.wait_type, "assistant_speak", 15)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(callee.send_digits, "1")
        await asyncio.to_thread(flask_ivr.seen.wait_type, "dtmf_received", 10)

    events = flask_ivr.seen.of(placed.session_id)
    assert [e["type"] for e in events][:3] == ["session_start", "assistant_speak",
                                               "dtmf_received"]
    dtmf = events[2]
    assert dtmf["digit"] == "1"
    session = dtmf["session"]
    assert session["direction"] == "outbound"
    assert session["to_phone_number"] == DIALLED
    assert session["from_phone_number"] == session["phone_number"] == "voxflow"
    record = record_of(app, placed.session_id)
    assert record is not None and record.direction == "outbound"


async def test_busy_callee_is_a_clear_result_and_in_the_call_record(
    make_engine: Callable[..., VoxflowApp], flask_ivr: Any, sip_uas: Callable[[str], Sipp],
) -> None:
    trunk = sip_uas("busy")
    async with make_engine(webhook=flask_ivr.url, transfer_domain=trunk.uri) as app:
        placed = app.dial(DIALLED)
        assert await asyncio.wait_for(placed.wait_outcome(), 10) is DialOutcome.BUSY
        await asyncio.wait_for(placed.wait_done(), 5)
        assert placed.status == 486
        record = record_of(app, placed.session_id)

    assert flask_ivr.seen.of(placed.session_id) == []  # nobody answered: no session events
    assert record is not None and record.direction == "outbound"
    assert record.end_reason is not None and record.end_reason.startswith("busy: 486")
    timeline = app.records.timeline(placed.session_id)
    assert [e.payload["outcome"] for e in timeline if e.type == "dial_result"] == ["busy"]


async def test_unanswered_call_is_cancelled_at_the_ring_timeout(
    make_engine: Callable[..., VoxflowApp], flask_ivr: Any, sip_uas: Callable[[str], Sipp],
) -> None:
    trunk = sip_uas("ringing")
    async with make_engine(webhook=flask_ivr.url, transfer_domain=trunk.uri) as app:
        placed = app.dial(DIALLED, ring_timeout=1.0)
        assert await asyncio.wait_for(placed.wait_outcome(), 10) is DialOutcome.NO_ANSWER
        # The CANCEL went out and was answered: the line holds no call any more.
        for _ in range(100):
            if not app.line.calls and app.line.agent.call_count == 0:
                break
            await asyncio.sleep(0.05)
        assert app.line.calls == [] and app.line.agent.call_count == 0
        record = record_of(app, placed.session_id)

    assert record is not None and record.end_reason.startswith("no-answer")


async def test_sdk_call_against_the_engine_api(
    make_engine: Callable[..., VoxflowApp], flask_ivr: Any, sip_uas: Callable[[str], Sipp],
) -> None:
    trunk = sip_uas("busy")
    async with make_engine(webhook=flask_ivr.url, transfer_domain=trunk.uri) as app:
        admin = AdminServer(app, HOST, 0, token="s3cret")
        await admin.start()
        try:
            placed = await sdk_call("default", DIALLED, "e0", "s3cret", base_url=admin.url)
            assert placed.status == 201
            assert placed.session_id in app.outbound
            outbound = app.outbound[placed.session_id]
            assert await asyncio.wait_for(outbound.wait_outcome(), 10) is DialOutcome.BUSY

            with pytest.raises(OutboundCallError) as unknown:
                await sdk_call("sales", DIALLED, "e0", "s3cret", base_url=admin.url)
            assert unknown.value.status == 404
            with pytest.raises(OutboundCallError) as bad_body:
                await sdk_call("default", "not a number", "e0", "s3cret", base_url=admin.url)
            assert bad_body.value.status == 400
            assert len(app.outbound) == 1  # neither refused request placed a call
        finally:
            await admin.stop()


async def test_bad_token_is_refused_and_places_no_call(
    make_engine: Callable[..., VoxflowApp], flask_ivr: Any,
) -> None:
    async with make_engine(webhook=flask_ivr.url, api_token="api-token") as app:
        admin = AdminServer(app, HOST, 0, token="s3cret")
        await admin.start()
        try:
            with pytest.raises(OutboundCallError) as wrong:
                await sdk_call("default", DIALLED, "e0", "guess", base_url=admin.url)
            assert wrong.value.status == 401
            # The api_token is accepted too; without trunk or transfer domain there is no
            # number to call from: 400.
            with pytest.raises(OutboundCallError) as no_route:
                await sdk_call("default", DIALLED, "e0", "api-token", base_url=admin.url)
            assert no_route.value.status == 400
            assert "phone number" in no_route.value.body
        finally:
            await admin.stop()
        assert app.outbound == {}


async def test_voxflow_dial_asks_the_running_engine(
    make_engine: Callable[..., VoxflowApp], flask_ivr: Any, sip_uas: Callable[[str], Sipp],
) -> None:
    trunk = sip_uas("busy")
    async with make_engine(webhook=flask_ivr.url, transfer_domain=trunk.uri) as app:
        admin = AdminServer(app, HOST, 0, token="s3cret")
        await admin.start()
        try:
            args = ["dial", DIALLED, "--admin", admin.url, "--token", "s3cret"]
            result = await asyncio.to_thread(CliRunner().invoke, cli, args)
            wrong = await asyncio.to_thread(CliRunner().invoke, cli,
                                            [*args[:-1], "guess"])
        finally:
            await admin.stop()
        assert result.exit_code == 0, result.output
        (session_id,) = app.outbound
        assert f"session {session_id}" in result.output
        assert wrong.exit_code == 1 and "401" in wrong.output
