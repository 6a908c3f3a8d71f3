"""A bridged transfer after the session ended: the caller's keys and audio are the target's.

Per the protocol, ``session_end`` comes once per session, also after a successful transfer;
after it, nothing more of the call is the assistant's. So the caller's key presses on the
bridged call go to the transfer target (each exactly once, in order) and never to the assistant
as ``dtmf_received``, and the engine stops listening to the caller (no speech recognition for a
session that is over) while the bridge keeps carrying the audio.

The caller is voxflow's softphone answering REFER with 603 (so the engine bridges); the target
is a real baresip that auto-answers and reports each key it receives; the assistant is the
plain Flask IVR (1 → transfer to sales).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from peers import HOST, Baresip
from tones import tone, tone_seconds

from voxflow.media.dtmf import detect_digits
from voxflow.server.app import VoxflowApp
from voxflow.server.runner import CallRunner
from voxflow.testing.softphone import KeyMethod, PhoneCall, Softphone

pytestmark = [pytest.mark.peer, pytest.mark.timeout(90)]

SALES = "+49211100200"  # the IVR's transfer target for key 1
# After the bridge is up: RFC 4733 and SIP INFO presses, a repeated key and the non-digits.
KEYS: list[tuple[str, KeyMethod]] = [
    ("3", "rfc4733"), ("3", "rfc4733"), ("*", "rfc4733"), ("0", "rfc4733"),
    ("7", "info"), ("#", "info"), ("7", "info"), ("9", "rfc4733"), ("2", "info"),
]


@pytest.fixture
async def target(baresip: Callable[..., Baresip], tmp_path: Path) -> Baresip:
    """The transfer target: a real baresip that auto-answers and records what it hears."""
    sales = baresip("sales", user=SALES, answermode="auto", record_dir=tmp_path / "rec",
                    lifetime=80)
    await asyncio.to_thread(sales.start)
    return sales


@contextlib.asynccontextmanager
async def engine_and_phone(make_engine: Callable[..., VoxflowApp], flask_ivr: Any,
                           target: Baresip) -> AsyncIterator[tuple[VoxflowApp, Softphone]]:
    """The engine with the Flask IVR, transferring to ``target``, and the caller's phone."""
    async with (make_engine(webhook=flask_ivr.url,
                            transfer_domain=f"{HOST}:{target.sip_port}") as app,
                Softphone(user="4930123456") as phone):
        yield app, phone


async def until(condition: Callable[[], bool], what: str, within: float = 15.0) -> None:
    """Poll ``condition`` without blocking the loop (the engine runs in it)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.05)


async def menu_call(app: VoxflowApp, phone: Softphone,
                    flask_ivr: Any) -> tuple[PhoneCall, CallRunner]:
    """Call the IVR (refusing REFER) until its menu plays; with the call's runner."""
    host, port = app.line.address
    call = await phone.dial(f"sip:0049211555@{host}:{port}", accept_transfer=False)
    await asyncio.to_thread(flask_ivr.seen.wait_type, "assistant_speak", 15)
    return call, app.calls[flask_ivr.seen.of()[0]["session"]["id"]]


async def transfer_to_sales(call: PhoneCall, runner: CallRunner, flask_ivr: Any,
                            target: Baresip) -> None:
    """Press 1; return once the target answered the bridged call and the session ended."""
    call.press("1")
    await asyncio.to_thread(target.wait_event, "CALL_ESTABLISHED", 15)
    await asyncio.to_thread(flask_ivr.seen.wait_type, "session_end", 15)
    assert call.live  # the session ended, the call did not
    assert runner.bridge is not None


async def test_caller_keys_reach_the_bridged_target_once_each_in_order(
    flask_ivr: Any, make_engine: Callable[..., VoxflowApp], target: Baresip,
) -> None:
    expected = "".join(key for key, _ in KEYS)
    async with engine_and_phone(make_engine, flask_ivr, target) as (app, phone):
        call, runner = await menu_call(app, phone, flask_ivr)
        await transfer_to_sales(call, runner, flask_ivr, target)
        assert target.received_keys() == ""  # the "1" was the assistant's, not the target's
        for key, method in KEYS:
            call.press(key, method=method)
            await asyncio.sleep(0.35)  # one press after the other, as a person would
        got = await asyncio.to_thread(target.wait_keys, len(expected), 20)
        assert got == expected
        call.hangup()
        # Every key event baresip reports comes before its CALL_CLOSED: no late copies.
        await asyncio.to_thread(target.wait_event, "CALL_CLOSED", 10)
        assert target.received_keys() == expected

    events = flask_ivr.seen.of()
    kinds = [e["type"] for e in events]
    assert kinds.count("session_end") == 1 and kinds[-1] == "session_end", kinds
    # Only the key that chose the transfer was the assistant's; none came after session_end.
    assert [e["digit"] for e in events if e["type"] == "dtmf_received"] == ["1"]


async def test_listening_stops_at_session_end_while_the_bridge_carries_audio(
    flask_ivr: Any, make_engine: Callable[..., VoxflowApp], target: Baresip,
) -> None:
    async with engine_and_phone(make_engine, flask_ivr, target) as (app, phone):
        call, runner = await menu_call(app, phone, flask_ivr)
        listener = runner.listener
        assert listener is not None
        # It listens while the session lives: the caller's frames are being processed.
        await until(lambda: listener.frames_heard >= 25, "the listener to hear the caller")

        await transfer_to_sales(call, runner, flask_ivr, target)
        bridge = runner.bridge
        assert bridge is not None
        assert runner.listener is None  # stopped with the session
        heard = listener.frames_heard
        moved = bridge.frames_moved

        # The caller talks on (a tone the VAD takes for voice): the bridge carries it,
        # the listener hears none of it.
        call.play(tone(2.0))
        await until(lambda: bridge.frames_moved >= moved + 200,
                    "the bridge to carry 2 s of audio each way")
        assert listener.frames_heard == heard
        call.hangup()
        await asyncio.to_thread(target.wait_event, "CALL_CLOSED", 10)

    assert listener.frames_heard == heard
    kinds = flask_ivr.seen.types()
    assert kinds.count("session_end") == 1 and kinds[-1] == "session_end", kinds
    recordings = target.recordings("dec")
    assert recordings, "baresip recorded nothing"
    assert tone_seconds(recordings[0]) > 1.0  # the caller's tone reached the target


async def test_in_band_keys_cross_the_bridge_as_tones_only(
    flask_ivr: Any, make_engine: Callable[..., VoxflowApp], target: Baresip,
) -> None:
    """A key the caller sends as tones is in the bridged audio already; relaying it as a
    telephone-event too would give a target that hears both the key twice."""
    async with engine_and_phone(make_engine, flask_ivr, target) as (app, phone):
        call, runner = await menu_call(app, phone, flask_ivr)
        await transfer_to_sales(call, runner, flask_ivr, target)
        # The bridge is up some 40 ms after "1" was pressed, while the phone still sends that
        # key's telephone-events (and no voice); a person's next key comes later.
        await asyncio.sleep(1.0)
        for key in "428":
            call.press(key, method="inband")
            await asyncio.sleep(0.4)
        await asyncio.sleep(1.0)  # the last tone through the bridge and into the recording
        call.hangup()
        await asyncio.to_thread(target.wait_event, "CALL_CLOSED", 10)

    assert target.received_keys() == ""  # no telephone-event reached the target
    recordings = target.recordings("dec")
    assert recordings, "baresip recorded nothing"
    with wave.open(str(recordings[0])) as wav:
        heard = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        rate = wav.getframerate()
    assert detect_digits(heard, sample_rate=rate) == "428"  # each tone once, in the audio
