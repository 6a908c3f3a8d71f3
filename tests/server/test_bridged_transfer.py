"""Transfer when the caller's side refuses REFER: the engine calls the target itself and
bridges the two calls' audio and keys; the session ends, the call goes on.

The caller is voxflow's softphone answering REFER with 603; the target is a real baresip that
auto-answers and records what it hears; the assistant is the plain Flask IVR (1 → transfer).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from peers import HOST, Baresip
from tones import tone, tone_seconds

from voxflow.server.app import VoxflowApp
from voxflow.testing.softphone import Softphone

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]

SALES = "+49211100200"  # the IVR's transfer target for key 1


async def test_refused_refer_falls_back_to_a_bridged_call(
    flask_ivr: Any, make_engine: Callable[..., VoxflowApp], baresip: Callable[..., Baresip],
    tmp_path: Path,
) -> None:
    target = baresip("sales", user=SALES, answermode="auto", record_dir=tmp_path / "rec")
    await asyncio.to_thread(target.start)
    async with make_engine(webhook=flask_ivr.url,
                           transfer_domain=f"{HOST}:{target.sip_port}") as app:
        host, port = app.line.address
        async with Softphone(user="4930123456") as phone:
            call = await phone.dial(f"sip:0049211555@{host}:{port}", accept_transfer=False)
            await asyncio.to_thread(flask_ivr.seen.wait_type, "assistant_speak", 15)
            call.press("1")
            # REFER is refused (603), so the engine calls the target and bridges.
            await asyncio.to_thread(target.wait_event, "CALL_ESTABLISHED", 10)
            await asyncio.to_thread(flask_ivr.seen.wait_type, "session_end", 10)
            assert call.live  # the session ended, the call did not
            call.play(tone(2.0))
            await asyncio.sleep(2.5)
            assert call.refers and SALES in call.refers[0]
            call.hangup()
            await asyncio.to_thread(target.wait_event, "CALL_CLOSED", 5)  # the bridge followed

    events = flask_ivr.seen.of()
    assert [e["type"] for e in events][-1] == "session_end"
    assert [e["type"] for e in events].count("session_end") == 1
    session_id = events[0]["session"]["id"]
    timeline = app.records.timeline(session_id)
    bridged = [e.payload for e in timeline if e.type == "transfer_bridge"]
    assert bridged and "603" in bridged[0]["reason"]
    results = [e.payload for e in timeline if e.type == "transfer_result"]
    assert results and results[0]["success"] is True and "bridged" in results[0]["reason"]
    # The caller's tone reached the target through the bridge.
    heard = target.recordings("dec")
    assert heard, "baresip recorded nothing"
    assert tone_seconds(heard[0]) > 1.0, tone_seconds(heard[0])
