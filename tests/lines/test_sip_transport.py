"""The asyncio SIP adapter answers a real SIPp caller on 127.0.0.1."""

import asyncio
import shutil
import socket

import pytest

from voxflow.lines.sip_transport import SipTransport, open_sip_transport
from voxflow.sip.config import SipConfig
from voxflow.sip.events import CallConfirmed, CallEnded, Event, IncomingCall


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.peer
@pytest.mark.timeout(30)
async def test_sipp_uac_call_is_answered_and_ended() -> None:
    sipp = shutil.which("sipp")
    assert sipp, "SIPp (Debian package sip-tester) is required for this test"
    events: list[Event] = []
    holder: list[SipTransport] = []

    def on_event(event: Event) -> None:
        events.append(event)
        if isinstance(event, IncomingCall):
            holder[0].command(lambda ua, now: ua.ring(event.call_id, now))
            holder[0].command(lambda ua, now: ua.answer(event.call_id, "127.0.0.1", 40000, now))

    config = SipConfig(listen_address="127.0.0.1", listen_port=0)
    transport = await open_sip_transport(config, on_event)
    holder.append(transport)
    port = transport.agent.config.listen_port
    try:
        process = await asyncio.create_subprocess_exec(
            sipp,
            f"127.0.0.1:{port}",
            "-sn",
            "uac",
            "-m",
            "1",
            "-i",
            "127.0.0.1",
            "-p",
            str(free_udp_port()),
            "-mp",
            str(free_udp_port()),
            "-nostdin",
            "-timeout",
            "20s",
            "-timeout_error",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(process.communicate(), 25)
    finally:
        transport.close()
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
    kinds = [type(event) for event in events]
    assert kinds == [IncomingCall, CallConfirmed, CallEnded]
    ended = events[-1]
    assert isinstance(ended, CallEnded) and ended.by == "remote"
    assert transport.agent.stats.malformed == 0 and transport.agent.stats.internal_errors == 0
