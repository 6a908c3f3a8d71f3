"""The seed IVR end to end: a plain Flask webhook, the engine, and real SIP clients.

baresip calls the engine, hears the menu, presses keys (RFC 4733) while it plays; SIPp sends
keys as SIP INFO. Transfers go to a SIPp UAS standing in for the trunk.
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from peers import Baresip, Sipp

from voxflow.server.app import VoxflowApp

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]

MakeBaresip = Callable[..., Baresip]
CALLER, CALLED = "4930123456", "0049211555"
SESSION_KEYS = {"id", "account_id", "phone_number", "direction", "from_phone_number",
                "to_phone_number"}


def read_wav(path: Path) -> npt.NDArray[np.int16]:
    with wave.open(str(path)) as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)


def loud_seconds(samples: npt.NDArray[np.int16]) -> float:
    """How long the recording carries speech-level energy (20 ms frames above -40 dBFS)."""
    frames = samples[: samples.size // 160 * 160].reshape(-1, 160).astype(np.float64)
    rms = np.sqrt((frames**2).mean(axis=1))
    return float((rms > 300).sum() * 0.02)


async def call_in(app: VoxflowApp, peer: Baresip) -> None:
    await asyncio.to_thread(peer.start)
    host, port = app.line.address
    await asyncio.to_thread(peer.dial, f"sip:{CALLED}@{host}:{port}")
    await asyncio.to_thread(peer.wait_event, "CALL_ESTABLISHED")


async def press_during_prompt(app: VoxflowApp, peer: Baresip, seen: Any, key: str) -> None:
    """Wait until the menu has been playing for a second, then press ``key``."""
    await asyncio.to_thread(seen.wait_type, "assistant_speak", 15)
    await asyncio.sleep(1.0)
    await asyncio.to_thread(peer.send_digits, key)


def assert_session_object(session: dict[str, Any]) -> None:
    assert set(session) == SESSION_KEYS
    assert session["account_id"] == "account-123"
    assert session["direction"] == "inbound"
    assert session["from_phone_number"] == "+4930123456"
    assert session["to_phone_number"] == session["phone_number"] == "+49211555"
    assert len(session["id"]) == 36


@pytest.mark.parametrize(("key", "target"), [("1", "+49211100200"), ("2", "+49211100201")])
async def test_key_during_menu_cuts_it_and_transfers(
    flask_ivr: Any, make_engine: Callable[..., VoxflowApp], baresip: MakeBaresip,
    trunk: Sipp, tmp_path: Path, key: str, target: str,
) -> None:
    async with make_engine(webhook=flask_ivr.url, transfer_domain=trunk.uri) as app:
        peer = baresip("caller", user=CALLER, answermode="auto", record_dir=tmp_path / "rec")
        await call_in(app, peer)
        await press_during_prompt(app, peer, flask_ivr.seen, key)
        transfer = await asyncio.to_thread(peer.wait_event, "TRANSFER", 10)
        assert f"{target}@" in str(transfer.get("param", transfer))
        await asyncio.to_thread(flask_ivr.seen.wait_type, "session_end", 10)
        await asyncio.to_thread(peer.wait_event, "CALL_CLOSED", 5)

    seen = flask_ivr.seen
    assert seen.types() == ["session_start", "assistant_speak", "dtmf_received",
                            "assistant_speech_ended", "session_end"]
    dtmf = seen.of()[2]
    assert dtmf["digit"] == key
    assert_session_object(dtmf["session"])
    assert len({e["session"]["id"] for e in seen.of()}) == 1
    # The menu was cut: baresip heard far less than the synthesised prompt lasts.
    prompt_s = seen.of()[1]["duration_ms"] / 1000
    heard = read_wav(peer.recordings("dec")[0])  # the menu call (the transferred one follows)
    assert 0.5 < loud_seconds(heard) < prompt_s - 2, (loud_seconds(heard), prompt_s)
    timeline = app.records.timeline(dtmf["session"]["id"])
    results = [e.payload for e in timeline if e.type == "transfer_result"]
    assert results and results[0]["success"] is True


async def test_nine_repeats_the_menu(
    flask_ivr: Any, make_engine: Callable[..., VoxflowApp], baresip: MakeBaresip
) -> None:
    async with make_engine(webhook=flask_ivr.url) as app:
        peer = baresip("caller", user=CALLER)
        await call_in(app, peer)
        await press_during_prompt(app, peer, flask_ivr.seen, "9")
        await asyncio.to_thread(flask_ivr.seen.wait_type, "assistant_speak", 10, 2)
        await asyncio.to_thread(peer.hangup)
        await asyncio.to_thread(flask_ivr.seen.wait_type, "session_end", 10)

    types = flask_ivr.seen.types()
    assert types[:5] == ["session_start", "assistant_speak", "dtmf_received",
                         "assistant_speech_ended", "assistant_speak"]
    assert types[-1] == "session_end" and types.count("session_end") == 1
    first, again = (e for e in flask_ivr.seen.of() if e["type"] == "assistant_speak")
    assert again["text"] == first["text"] and "Press 1 for sales" in first["text"]
    assert again["speech_started_at"] > first["speech_started_at"]


async def test_hash_says_goodbye_then_hangs_up(
    flask_ivr: Any, make_engine: Callable[..., VoxflowApp], baresip: MakeBaresip
) -> None:
    async with make_engine(webhook=flask_ivr.url) as app:
        peer = baresip("caller", user=CALLER)
        await call_in(app, peer)
        await press_during_prompt(app, peer, flask_ivr.seen, "#")
        closed_at = await asyncio.to_thread(peer.wait_event, "CALL_CLOSED", 10)
        await asyncio.to_thread(flask_ivr.seen.wait_type, "session_end", 10)

    assert closed_at["type"] == "CALL_CLOSED"
    events = flask_ivr.seen.of()
    types = [e["type"] for e in events]
    assert types.count("dtmf_received") == 1 and types[-1] == "session_end"
    goodbye = [e for e in events if e["type"] == "assistant_speak" and e["text"] == "Goodbye!"]
    assert len(goodbye) == 1
    assert types.index("dtmf_received") < events.index(goodbye[0]) < types.index("session_end")


@pytest.mark.parametrize(("key", "refer", "expected"), [
    ("1", True, "Refer-To: <sip:+49211100200@"),
    ("#", False, "BYE sip:"),
])
async def test_keys_by_sip_info_from_sipp(
    flask_ivr: Any, make_engine: Callable[..., VoxflowApp], sipp: Callable[..., Sipp],
    info_call: Callable[..., Path], key: str, refer: bool, expected: str,
) -> None:
    scenario = info_call(key, accept_refer=refer)
    async with make_engine(webhook=flask_ivr.url) as app:
        client = sipp("info", scenario=scenario)
        host, port = app.line.address
        result = await asyncio.to_thread(
            client.run, f"{host}:{port}", service="0049211555", timeout=30, extra=("-trace_msg",)
        )
        assert result.exit_code == 0 and result.successful == 1, result.output[-3000:]
        await asyncio.to_thread(flask_ivr.seen.wait_type, "session_end", 10)

    messages = "".join(p.read_text() for p in client.workdir.glob("*_messages.log"))
    assert expected in messages
    events = flask_ivr.seen.of()
    types = [e["type"] for e in events]
    assert types[:3] == ["session_start", "assistant_speak", "dtmf_received"]
    assert types.count("dtmf_received") == 1 and events[2]["digit"] == key
    assert_session_object(events[2]["session"])
    assert types[-1] == "session_end" and types.count("session_end") == 1
