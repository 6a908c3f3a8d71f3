"""RTP over real UDP sockets on 127.0.0.1: two transports, plus a raw socket injecting trouble."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from voxflow.errors import RtpError
from voxflow.lines.rtp_transport import RtpPortAllocator, RtpTransport, open_rtp_transport
from voxflow.rtp.events import PacketRejected, RejectReason, RemoteLatched, RtpEvent
from voxflow.rtp.jitter import Frame
from voxflow.rtp.packet import RtpPacket, parse_rtp
from voxflow.rtp.session import RtpSession

PORTS = range(31000, 31200)


@pytest.fixture
def allocator() -> RtpPortAllocator:
    return RtpPortAllocator(PORTS, "127.0.0.1")


@pytest.fixture
def raw_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2.0)
    yield sock
    sock.close()


@pytest.fixture
async def receiver(
    allocator: RtpPortAllocator,
) -> AsyncIterator[tuple[RtpTransport, EventLog]]:
    events = EventLog()
    transport = await open_rtp_transport(
        allocator, RtpSession(audio_payload_type=0, event_payload_type=101), events.append
    )
    yield transport, events
    await transport.close()


class EventLog:
    """Collects a transport's events and lets a test wait until they satisfy a condition."""

    def __init__(self) -> None:
        self.events: list[RtpEvent] = []
        self._changed = asyncio.Event()

    def append(self, event: RtpEvent) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(2.0):
            while not condition():
                self._changed.clear()
                await self._changed.wait()


async def drain_frames(session: RtpSession, count: int) -> list[Frame]:
    """Pop frames on the session's own playout clock until ``count`` came out."""
    frames: list[Frame] = []
    while len(frames) < count:
        deadline = session.next_frame_deadline()
        assert deadline is not None
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))
        frames.extend(session.pop_frames(time.monotonic()))
    return frames[:count]


async def test_two_transports_exchange_paced_audio(
    allocator: RtpPortAllocator, receiver: tuple[RtpTransport, EventLog]
) -> None:
    b, b_events = receiver
    a_session = RtpSession(audio_payload_type=0, remote=b.local_address)
    a = await open_rtp_transport(allocator, a_session)
    try:
        assert a.local_address[1] % 2 == 0 and a.local_address != b.local_address
        frames = iter(bytes([i]) * 160 for i in range(10))
        a.start_sending(lambda: next(frames, None))
        await b_events.wait_until(lambda: b.session.stats.received == 10)
        assert b_events.events[0] == RemoteLatched(a.local_address)
        received = await drain_frames(b.session, 10)
        assert [f.payload for f in received] == [bytes([i]) * 160 for i in range(10)]
        assert b.session.stats.jitter.lost == 0
    finally:
        await a.close()
    assert a.local_address[1] not in allocator.in_use


async def test_raw_socket_loss_and_strangers_are_handled(
    receiver: tuple[RtpTransport, EventLog], raw_socket: socket.socket
) -> None:
    b, events = receiver
    for seq in range(8):
        if seq != 4:  # one packet lost on the way
            raw_socket.sendto(
                RtpPacket(0, seq, 160 * seq, 7, bytes([seq]) * 160).to_bytes(), b.local_address
            )
        await asyncio.sleep(0.002)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        stranger.sendto(RtpPacket(0, 8, 1280, 7, b"\x00" * 160).to_bytes(), b.local_address)
    raw_socket.sendto(b"\x00\x01\x00\x00 a STUN probe", b.local_address)
    await events.wait_until(lambda: len(events.events) >= 10)
    assert events.events[0] == RemoteLatched(raw_socket.getsockname())
    rejected = [e.reason for e in events.events if isinstance(e, PacketRejected)]
    assert rejected == [RejectReason.WRONG_SOURCE, RejectReason.NOT_RTP]
    frames = await drain_frames(b.session, 8)
    assert [f.lost for f in frames] == [False] * 4 + [True] + [False] * 3
    assert b.session.stats.jitter.lost == 1


async def test_replies_go_to_the_latched_address(
    receiver: tuple[RtpTransport, EventLog], raw_socket: socket.socket
) -> None:
    b, events = receiver
    assert not b.send(b"nobody to send to yet")
    raw_socket.sendto(RtpPacket(0, 1, 0, 7, b"\xff" * 160).to_bytes(), b.local_address)
    await events.wait_until(lambda: b.session.latched)
    b.start_sending(lambda: b"\x55" * 160)
    reply = parse_rtp(await asyncio.to_thread(raw_socket.recv, 2048))
    await b.stop_sending()
    assert reply.payload == b"\x55" * 160 and reply.marker and reply.ssrc == b.session.ssrc


async def test_sender_refuses_to_run_twice(receiver: tuple[RtpTransport, EventLog]) -> None:
    b, _ = receiver
    b.start_sending(lambda: None)
    with pytest.raises(RtpError, match="already running"):
        b.start_sending(lambda: None)
    await b.stop_sending()


def test_allocator_uses_even_ports_and_reports_exhaustion() -> None:
    allocator = RtpPortAllocator(range(31400, 31404), "127.0.0.1")
    first, second = allocator.bind(), allocator.bind()
    try:
        ports = {first.getsockname()[1], second.getsockname()[1]}
        assert ports == {31400, 31402}
        with pytest.raises(RtpError, match="no free RTP port in 31400-31402"):
            allocator.bind()
    finally:
        first.close()
        second.close()
    allocator.release(31400)
    third = allocator.bind()
    assert third.getsockname()[1] == 31400
    third.close()


def test_allocator_skips_ports_taken_by_other_programs() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", 31500))
        allocator = RtpPortAllocator(range(31500, 31504), "127.0.0.1")
        sock = allocator.bind()
        assert sock.getsockname()[1] == 31502
        sock.close()


def test_allocator_rejects_a_range_without_even_ports() -> None:
    with pytest.raises(RtpError, match="no even port"):
        RtpPortAllocator(range(31601, 31602))
