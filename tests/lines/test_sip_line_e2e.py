"""End-to-end: real SIP clients (baresip, SIPp, kamailio) against voxflow's SIP line on 127.0.0.1."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from peers import HOST, Baresip, free_port_block, write_wav

from voxflow.lines.config import SipLineConfig
from voxflow.lines.sip import KeyPress, LineCall, SipLine
from voxflow.media.dtmf import DtmfSource, generate_sequence

pytestmark = [pytest.mark.peer, pytest.mark.timeout(30)]

MakeBaresip = Callable[..., Baresip]


@pytest.fixture
async def line() -> AsyncIterator[SipLine]:
    base = free_port_block(40)
    sip_line = SipLine(
        SipLineConfig(
            listen_host=HOST, listen_port=0, rtp_port_min=base, rtp_port_max=base + 39
        )
    )
    await sip_line.start()
    yield sip_line
    await sip_line.stop()


def tone(hz: float, seconds: float, amplitude: float = 8000.0) -> npt.NDArray[np.int16]:
    t = np.arange(int(seconds * 8000)) / 8000
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def dominant_hz(samples: npt.NDArray[np.int16]) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / 8000)[int(np.argmax(spectrum))])


def read_wav(path: Path) -> npt.NDArray[np.int16]:
    with wave.open(str(path)) as wav:
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        return data[:: wav.getnchannels()]


async def collect_keys(call: LineCall, count: int, within: float) -> list[KeyPress]:
    keys: list[KeyPress] = []

    async def gather() -> None:
        async for press in call.presses():
            keys.append(press)
            if len(keys) == count:
                return

    try:
        await asyncio.wait_for(gather(), within)
    except TimeoutError:
        pass
    return keys


async def dial_in(peer: Baresip, line: SipLine) -> LineCall:
    """Start ``peer``, let it call the line and wait until both sides see the call up."""
    await asyncio.to_thread(peer.start)
    await asyncio.to_thread(peer.dial, line.uri)
    call = await line.next_call(10)
    await asyncio.to_thread(peer.wait_event, "CALL_ESTABLISHED")
    return call


async def test_baresip_call_carries_audio_both_ways_and_rfc4733_keys(
    line: SipLine, baresip: MakeBaresip, tmp_path: Path
) -> None:
    peer = baresip(
        "caller",
        audio_source=write_wav(tmp_path / "a440.wav", 20, tone_hz=440),
        record_dir=tmp_path / "rec",
    )
    call = await dial_in(peer, line)
    assert call.media is not None and call.media.telephone_event is not None
    call.play(tone(1000, 4))
    heard: list[npt.NDArray[np.int16]] = []

    async def listen() -> None:
        async for frame in call.frames():
            if not frame.lost:
                heard.append(frame.samples)

    listener = asyncio.ensure_future(listen())
    await asyncio.to_thread(peer.send_digits, "123#*0")
    keys = await collect_keys(call, 6, 8)
    await asyncio.sleep(0.5)  # let a duplicate, if any, show up
    assert "".join(k.key for k in call.key_log) == "123#*0"
    assert {k.source for k in keys} == {DtmfSource.RFC4733}

    await asyncio.to_thread(peer.hangup)
    end = await asyncio.wait_for(call.wait_ended(), 5)
    await listener
    assert end.by == "remote" and end.reason == "bye"
    assert line.calls == []

    inbound = np.concatenate(heard)
    assert inbound.size >= 8000, "less than one second of decoded inbound audio"
    assert abs(dominant_hz(inbound[-8000:]) - 440) < 10
    await asyncio.to_thread(peer.wait_event, "CALL_CLOSED")
    recorded = [read_wav(p) for p in peer.recordings("dec")]
    assert recorded, f"baresip wrote no recording; log:\n{peer.log()[-1500:]}"
    received = max(recorded, key=len)
    loud = received[np.abs(received) > 1000]
    assert loud.size > 4000, "baresip heard (almost) nothing"
    assert abs(dominant_hz(received[: 8000 * 3]) - 1000) < 10


async def test_line_hangup_reaches_baresip(line: SipLine, baresip: MakeBaresip) -> None:
    peer = baresip("caller")
    call = await dial_in(peer, line)
    call.hangup()
    end = await asyncio.wait_for(call.wait_ended(), 5)
    assert end.by == "local"
    closed = await asyncio.to_thread(peer.wait_event, "CALL_CLOSED", 5)
    assert closed["type"] == "CALL_CLOSED"
    await asyncio.sleep(0.3)
    assert line.agent.call_count == 0


async def test_inband_keys_from_a_wav_are_reported_once_each(
    line: SipLine, baresip: MakeBaresip, tmp_path: Path
) -> None:
    digits = "159#*0"
    lead = np.zeros(8000 * 2, dtype=np.int16)
    tones = generate_sequence(digits, on_ms=120, off_ms=150)
    samples = np.concatenate([lead, tones, np.zeros(8000 * 10, np.int16)])
    source = tmp_path / "keys.wav"
    with wave.open(str(source), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(samples.tobytes())
    peer = baresip("caller", audio_source=source)
    call = await dial_in(peer, line)
    keys = await collect_keys(call, len(digits), 8)
    await asyncio.sleep(0.5)
    assert "".join(k.key for k in call.key_log) == digits
    assert {k.source for k in keys} == {DtmfSource.INBAND}
    await asyncio.to_thread(peer.hangup)
    await asyncio.wait_for(call.wait_ended(), 5)
