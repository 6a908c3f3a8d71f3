"""End-to-end: real SIP clients (baresip, SIPp, kamailio) against the SIP line on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from peers import HOST, Baresip, Kamailio, Sipp, free_port_block, write_wav
from sipp_scenarios import info_keys_scenario

from voxflow.lines.config import SipLineConfig, TrunkSettings
from voxflow.lines.sip import KeyPress, LineCall, SipLine
from voxflow.media.dtmf import DtmfSource, generate_sequence
from voxflow.rtp.leg import MediaLeg

pytestmark = [pytest.mark.peer, pytest.mark.timeout(30)]

MakeBaresip = Callable[..., Baresip]


def line_config(**options: object) -> SipLineConfig:
    base = free_port_block(40)
    return SipLineConfig(
        listen_host=HOST,
        listen_port=0,
        rtp_port_min=base,
        rtp_port_max=base + 39,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
async def line() -> AsyncIterator[SipLine]:
    sip_line = SipLine(line_config())
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

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(gather(), within)
    return keys


def leg_of(call: LineCall) -> MediaLeg:
    leg = call.leg
    assert leg is not None, "call has no media"
    return leg


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


async def test_sip_info_keys_from_sipp_are_reported_in_order(
    line: SipLine, sipp: Callable[..., Sipp], tmp_path: Path
) -> None:
    digits = "4#7*90"
    scenario = tmp_path / "info_keys.xml"
    scenario.write_text(info_keys_scenario(digits))
    client = sipp("info", scenario=scenario)
    answered = asyncio.ensure_future(line.next_call(15))
    result = await asyncio.to_thread(client.run, f"{HOST}:{line.address[1]}", timeout=20)
    assert result.exit_code == 0 and result.successful == 1, result.output[-2000:]
    call = await answered
    await asyncio.wait_for(call.wait_ended(), 2)
    assert line.agent.stats.malformed == 0
    assert "".join(k.key for k in call.key_log) == digits
    assert {k.source for k in call.key_log} == {DtmfSource.SIP_INFO}
    assert call.end is not None and call.end.by == "remote"


async def test_blind_transfer_is_accepted_by_baresip(line: SipLine, baresip: MakeBaresip) -> None:
    peer = baresip("caller", answermode="auto")
    call = await dial_in(peer, line)
    # baresip follows the REFER by calling the target: let that be this line, as "sales".
    target = f"sip:sales@{HOST}:{line.address[1]}"
    outcome = await call.transfer(target, max_wait=10)
    assert outcome.success, (outcome, call.transfer_progress)
    assert outcome.status == 200
    assert call.transfer_progress[0][0] == 202
    transferred = await line.next_call(5)
    assert transferred.callee == "sales"
    event = await asyncio.to_thread(peer.wait_event, "TRANSFER", 5)
    assert "sales" in str(event)


async def test_trunk_registration_answers_the_digest_challenge(
    kamailio: Callable[..., Kamailio],
) -> None:
    registrar = kamailio("registrar", user="engine", password="secret")
    await asyncio.to_thread(registrar.start)
    trunk = TrunkSettings(
        registrar=HOST, host=HOST, port=registrar.port, username="engine", password="secret"
    )
    sip_line = SipLine(line_config(trunk=trunk))
    await sip_line.start()
    try:
        state = await sip_line.wait_registered(10)
        assert state.registered and state.status == 200 and state.expires > 0
    finally:
        await sip_line.stop()
    assert sip_line.registration is not None and not sip_line.registration.registered


async def test_wrong_password_leaves_the_trunk_unregistered(
    kamailio: Callable[..., Kamailio],
) -> None:
    registrar = kamailio("registrar", user="engine", password="secret")
    await asyncio.to_thread(registrar.start)
    trunk = TrunkSettings(
        registrar=HOST, host=HOST, port=registrar.port, username="engine", password="wrong"
    )
    sip_line = SipLine(line_config(trunk=trunk))
    await sip_line.start()
    try:
        with pytest.raises(TimeoutError):
            await sip_line.wait_registered(3)
        assert sip_line.registration is not None
        assert sip_line.registration.status in (401, 403)
    finally:
        await sip_line.stop()


def flood_invite(port: int, index: int, sdp_port: int) -> bytes:
    sdp = (
        f"v=0\r\no=- {index} 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
        f"m=audio {sdp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    return (
        f"INVITE sip:bot@{HOST}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:9;branch=z9hG4bKflood{index}\r\n"
        f"From: <sip:flood@{HOST}>;tag=f{index}\r\nTo: <sip:bot@{HOST}>\r\n"
        f"Call-ID: flood-{index}@{HOST}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:flood@{HOST}:9>\r\nContent-Type: application/sdp\r\n"
        f"Content-Length: {len(sdp)}\r\n\r\n{sdp}"
    ).encode()


async def test_hostile_input_leaves_the_line_serving_calls(baresip: MakeBaresip) -> None:
    # Trunk-style policy: calls from the flooding source are refused, everything else answered.
    sip_line = SipLine(line_config(), policy=lambda call: 403 if call.caller == "flood" else True)
    await sip_line.start()
    try:
        first = baresip("first")
        call = await dial_in(first, sip_line)
        sip_address = sip_line.address
        rtp = call.rtp_port
        assert rtp is not None
        # No waiting for the caller's audio first: spoofed RTP that arrives before it may latch,
        # and the caller's packets from its signalled address must take the stream back.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
            for size in (1, 17, 500, 1400, 65000):
                attacker.sendto(os.urandom(size), sip_address)
            invite = flood_invite(sip_address[1], 0, 9)
            for cut in (10, 60, len(invite) // 2, len(invite) - 5):
                attacker.sendto(invite[:cut], sip_address)
            attacker.sendto(invite[:200] + b"X-Pad: " + b"a" * 60000 + b"\r\n\r\n", sip_address)
            for _ in range(50):  # RTP-looking packets from an address that is not the caller
                attacker.sendto(bytes([0x80, 0]) + os.urandom(170), (HOST, rtp))
                attacker.sendto(os.urandom(172), (HOST, rtp))
            for index in range(1, 501):
                attacker.sendto(flood_invite(sip_address[1], index, 9), sip_address)
                if index % 50 == 0:
                    await asyncio.sleep(0.01)
        await asyncio.to_thread(first.send_digits, "42")
        keys = await collect_keys(call, 2, 6)
        assert "".join(k.key for k in keys) == "42"
        session_stats = leg_of(call).stats.rtp
        assert session_stats.rejected_wrong_source + session_stats.rejected_not_rtp >= 25
        signalled = (call.media.remote_address, call.media.remote_port)
        assert leg_of(call).remote == signalled  # the caller holds the stream, not the attacker
        await asyncio.to_thread(first.hangup)
        await asyncio.wait_for(call.wait_ended(), 5)

        second = baresip("second")
        fresh = await dial_in(second, sip_line)
        await asyncio.to_thread(second.send_digits, "9#")
        keys = await collect_keys(fresh, 2, 6)
        assert "".join(k.key for k in keys) == "9#"
        stats = sip_line.agent.stats
        assert stats.malformed >= 5 and stats.internal_errors == 0
        assert [c.call_id for c in sip_line.calls] == [fresh.call_id]
    finally:
        await sip_line.stop()


async def test_a_backlog_is_read_in_one_wake_up_and_keys_skip_the_media_tick(
    line: SipLine,
) -> None:
    # A stalled event loop leaves many datagrams queued on a call's socket. One wake-up of the
    # reader must take them all (one datagram per loop iteration let the backlog, and a key press
    # queued behind it, grow until the kernel dropped packets), and a press goes to the call at
    # once, without waiting for the next media tick.
    from sip_caller import CallerFleet

    fleet = await CallerFleet(free_port_block(4)).start()
    try:
        caller = await fleet.dial(line.uri, "4930999")
        call = await line.next_call(10)
        assert line._ticker is not None
        line._ticker.cancel()  # no media tick from here on
        with contextlib.suppress(asyncio.CancelledError):
            await line._ticker
        received = leg_of(call).stats.rtp.received
        for _ in range(30):  # 600 ms of audio, sent while the line cannot read
            caller.tick()
        caller.press("5", duration_ms=80)
        caller.tick()  # the press's first RFC 4733 packet, behind the audio
        for _ in range(3):
            await asyncio.sleep(0)
        assert leg_of(call).stats.rtp.received - received >= 30
        assert [press.key for press in call.key_log] == ["5"]
    finally:
        await fleet.close()
