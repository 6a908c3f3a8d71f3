"""Asyncio UDP adapter for :class:`voxflow.rtp.session.RtpSession`.

It only moves bytes: datagrams in go to the session (with ``time.monotonic()`` as ``now``), the
session's events go to a callback, and a sender task sends one frame per tick. Ticks come from
:class:`voxflow.rtp.pacer.Pacer` deadlines on the monotonic clock, so wake-up lateness never adds
up to drift (the event loop's own clock may have only 1 ms resolution, e.g. with uvloop).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import time
from collections.abc import Callable
from typing import cast

from voxflow.errors import RtpError
from voxflow.rtp.events import Address, RtpEvent
from voxflow.rtp.pacer import Pacer
from voxflow.rtp.session import RtpSession

log = logging.getLogger(__name__)

FrameSource = Callable[[], bytes | None]
"""Returns the next frame's payload, or None to send nothing this tick (silence, event)."""
EventSink = Callable[[RtpEvent], None]


class RtpPortAllocator:
    """Binds UDP sockets on even ports of ``ports`` on ``host`` (odd ports are left for RTCP)."""

    def __init__(self, ports: range, host: str = "127.0.0.1") -> None:
        self._candidates = [port for port in ports if port % 2 == 0 and 0 < port < 65536]
        if not self._candidates:
            raise RtpError(f"RTP port range {ports.start}-{ports.stop - 1} has no even port")
        self.host = host
        self._in_use: set[int] = set()
        self._cursor = 0

    def bind(self) -> socket.socket:
        """A non-blocking UDP socket bound to the next free even port; RtpError if none is."""
        for _ in range(len(self._candidates)):
            port = self._candidates[self._cursor]
            # Round robin so a just-released port is not reused at once (late packets of the
            # previous call would land in the next one).
            self._cursor = (self._cursor + 1) % len(self._candidates)
            if port in self._in_use:
                continue
            sock = socket.socket(
                socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_DGRAM
            )
            try:
                sock.bind((self.host, port))
            except OSError as error:
                sock.close()
                if error.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                raise RtpError(f"cannot bind RTP socket on {self.host}:{port}: {error}") from error
            sock.setblocking(False)
            self._in_use.add(port)
            return sock
        first, last = self._candidates[0], self._candidates[-1]
        raise RtpError(f"no free RTP port in {first}-{last} on {self.host}")

    def release(self, port: int) -> None:
        """Mark ``port`` free again (its socket must be closed)."""
        self._in_use.discard(port)

    @property
    def in_use(self) -> frozenset[int]:
        """Ports currently handed out."""
        return frozenset(self._in_use)


class RtpTransport(asyncio.DatagramProtocol):
    """One call leg's UDP socket: inbound datagrams → session, paced outbound frames."""

    def __init__(self, session: RtpSession, on_event: EventSink | None = None) -> None:
        self.session = session
        self._on_event = on_event
        self._transport: asyncio.DatagramTransport | None = None
        self._sender: asyncio.Task[None] | None = None
        self._release: Callable[[], None] | None = None
        self.late_ticks = 0

    @property
    def local_address(self) -> Address:
        """The bound (host, port)."""
        if self._transport is None:
            raise RtpError("RTP transport is not open")
        host, port = self._transport.get_extra_info("sockname")[:2]
        return (host, port)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        address: Address = (str(addr[0]), int(str(addr[1])))
        for event in self.session.receive_datagram(data, address, time.monotonic()):
            if self._on_event is not None:
                self._on_event(event)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that went away must not end the call.
        log.debug("RTP socket error on %s: %s", self.local_address, exc)

    def send(self, data: bytes) -> bool:
        """Send one datagram to the session's remote; False while no remote is known."""
        remote = self.session.remote
        if self._transport is None or remote is None:
            return False
        self._transport.sendto(data, remote)
        return True

    def start_sending(
        self, frame_source: FrameSource, *, samples_per_frame: int = 160, interval: float = 0.02
    ) -> asyncio.Task[None]:
        """Start the paced sender: one ``frame_source()`` call per tick."""
        if self._sender is not None and not self._sender.done():
            raise RtpError("RTP sender already running for this transport")
        self._sender = asyncio.get_running_loop().create_task(
            self._send_loop(frame_source, samples_per_frame, interval)
        )
        return self._sender

    async def stop_sending(self) -> None:
        """Stop the paced sender, if running."""
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def _send_loop(self, frame_source: FrameSource, samples: int, interval: float) -> None:
        pacer = Pacer(time.monotonic(), interval)
        while True:
            previous = pacer.tick
            deadline = pacer.next_deadline(time.monotonic())
            missed = pacer.tick - previous - 1
            if missed:
                # A stalled loop skipped ticks: keep the RTP clock in step with real time.
                self.late_ticks += missed
                self.session.advance(samples * missed)
            delay = deadline - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            payload = frame_source()
            if payload is not None and self.session.remote is not None:
                self.send(self.session.build_audio(payload, samples))
            else:
                self.session.advance(samples)

    async def close(self) -> None:
        """Stop sending, close the socket and give the port back."""
        await self.stop_sending()
        if self._transport is not None:
            self._transport.close()
        if self._release is not None:
            self._release()
            self._release = None


async def open_rtp_transport(
    allocator: RtpPortAllocator, session: RtpSession, on_event: EventSink | None = None
) -> RtpTransport:
    """Bind a port from ``allocator`` and start receiving for ``session``."""
    sock = allocator.bind()
    port = sock.getsockname()[1]
    loop = asyncio.get_running_loop()
    try:
        _, protocol = await loop.create_datagram_endpoint(
            lambda: RtpTransport(session, on_event), sock=sock
        )
    except BaseException:
        sock.close()
        allocator.release(port)
        raise
    protocol._release = lambda: allocator.release(port)
    return protocol
