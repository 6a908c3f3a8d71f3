"""A light SIP/RTP caller fleet built from voxflow's sans-IO SIP core, over real UDP.

One SIP socket (one :class:`~voxflow.sip.useragent.UserAgent`) places many calls; each call has
its own RTP socket. One 20 ms ticker, paced from monotonic deadlines, sends every call's RTP:
encoded digital silence, or in its place the RFC 4733 packet train of a queued key press (one
packet per tick, all with the press-start timestamp, marker on the first, END three times), as
:class:`~voxflow.rtp.leg.MediaLeg` does. Packets are pre-built (payloads per key are made once,
headers with one ``struct.pack``), so the fleet spends microseconds per call per tick and stays
an honest sender even with hundreds of calls in one process.

For each press it notes when it was asked for (``due_at``) and the wall-clock time its first
telephone-event packet left (``sent_at``), so a receiver in another process can measure latency
and the fleet's own lag is visible. The ticker also records how late each tick ran
(:class:`TickStats`). Inbound RTP is never read (the kernel drops it): the fleet only needs to
be a polite far end, and reading 50 packets per call per second would cost it more than sending.

:func:`run_worker` runs one fleet in a process of its own, driven over a pipe (see
``event_latency.py``): several such processes spread the callers over the machine's cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import socket
import struct
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from voxflow.lines.sip_transport import SipTransport, open_sip_transport
from voxflow.media.dtmf import TelephoneEventSender
from voxflow.sip.config import SipConfig
from voxflow.sip.events import CallAnswered, CallEnded, Event
from voxflow.sip.sdp import NegotiatedMedia

HOST = "127.0.0.1"
TICK = 0.02
FRAME_SAMPLES = 160
RAMP = 25  # calls dialled at once: calls arrive in waves, as on a real trunk
_SILENCE = {"PCMU": b"\xff" * FRAME_SAMPLES, "PCMA": b"\xd5" * FRAME_SAMPLES}
_HEADER = struct.Struct("!BBHII")


@dataclass
class SentKey:
    """One key press: asked for at ``due_at``; ``sent_at`` once its first packet went out
    (both unix seconds)."""

    key: str
    due_at: float = 0.0
    sent_at: float | None = None
    queued: bool = False  # behind an earlier press of the same call, so sent late on purpose


@dataclass
class TickStats:
    """How late the fleet's ticker woke (ms after each deadline) and ticks it had to skip."""

    ticks: int = 0
    skipped: int = 0
    late_ms: list[float] = field(default_factory=list)


@functools.cache
def _event_payloads(payload_type: int, clock: int, key: str, duration_ms: float
                    ) -> tuple[tuple[float, bool, bytes], ...]:
    """(send offset ms, marker, payload) of each packet of one press, made once per key."""
    sender = TelephoneEventSender(payload_type, clock, TICK * 1000)
    return tuple((p.send_offset_ms, p.marker, p.payload)
                 for p in sender.packets_for_key(key, duration_ms))


@dataclass
class _Press:
    sent: SentKey
    packets: deque[tuple[float, bool, bytes]]
    tick: int = 0
    timestamp: int | None = None


@dataclass
class FleetCall:
    """One call of the fleet."""

    call_id: str
    from_user: str
    answered: asyncio.Future[None]
    ended: asyncio.Future[str]
    rtp: socket.socket
    keys: list[SentKey] = field(default_factory=list)
    remote: tuple[str, int] | None = None
    audio_pt: int = 0
    event_pt: int | None = None
    event_clock: int = 8000
    silence: bytes = _SILENCE["PCMU"]
    _presses: deque[_Press] = field(default_factory=deque)
    _seq: int = field(default_factory=lambda: random.randrange(1 << 16))
    _ts: int = field(default_factory=lambda: random.randrange(1 << 32))
    _ssrc: int = field(default_factory=lambda: random.randrange(1 << 32))

    def set_media(self, media: NegotiatedMedia) -> None:
        """Take codec, telephone-event type and remote address from the answer."""
        self.remote = (media.remote_address, media.remote_port)
        self.audio_pt = media.codec.payload_type
        self.silence = _SILENCE.get(media.codec.name.upper(), _SILENCE["PCMU"])
        if media.telephone_event is not None:
            self.event_pt = media.telephone_event.payload_type
            self.event_clock = media.telephone_event.clock_rate

    def press(self, key: str, duration_ms: float = 100.0, due_at: float | None = None) -> SentKey:
        """Send ``key`` as RFC 4733 from the next tick on (after presses already queued)."""
        if self.remote is None or self.event_pt is None:
            raise RuntimeError(f"call {self.call_id} is not answered with telephone-event")
        sent = SentKey(key, time.time() if due_at is None else due_at, queued=bool(self._presses))
        packets = _event_payloads(self.event_pt, self.event_clock, key.upper(), duration_ms)
        self.keys.append(sent)
        self._presses.append(_Press(sent, deque(packets)))
        return sent

    def tick(self) -> None:
        """Send this tick's packet(s): the press under way, else one frame of silence."""
        if self.remote is None:
            return
        if not self._presses:
            self._send(self.audio_pt, False, self._ts, self.silence)
        else:
            press = self._presses[0]
            if press.timestamp is None:
                press.timestamp = self._ts
            window_end = (press.tick + 1) * TICK * 1000
            while press.packets and press.packets[0][0] < window_end:
                _, marker, payload = press.packets.popleft()
                assert self.event_pt is not None
                if press.sent.sent_at is None:
                    # Stamped before the send: a preemption right after it must not make the
                    # webhook's arrival look earlier than the press.
                    press.sent.sent_at = time.time()
                self._send(self.event_pt, marker, press.timestamp, payload)
            press.tick += 1
            if not press.packets:
                self._presses.popleft()
        self._ts = (self._ts + FRAME_SAMPLES) & 0xFFFFFFFF

    def _send(self, payload_type: int, marker: bool, timestamp: int, payload: bytes) -> None:
        header = _HEADER.pack(0x80, payload_type | (0x80 if marker else 0), self._seq,
                              timestamp, self._ssrc)
        self._seq = (self._seq + 1) & 0xFFFF
        assert self.remote is not None
        with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
            self.rtp.sendto(header + payload, self.remote)


class CallerFleet:
    """Places calls to ``target`` (``sip:user@host:port``) and presses keys on them."""

    def __init__(self, rtp_port_base: int) -> None:
        self._next_rtp = rtp_port_base
        self._sip: SipTransport | None = None
        self.calls: dict[str, FleetCall] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._scheduled: list[tuple[float, FleetCall, str, float, float]] = []
        self.ticks = TickStats()

    async def start(self) -> CallerFleet:
        """Bind the SIP socket and start the media ticker."""
        config = SipConfig(listen_address=HOST, listen_port=0, user="fleet", max_calls=2000,
                           rate_limits=None)
        self._sip = await open_sip_transport(config, self._on_event)
        self._ticker = asyncio.create_task(self._tick_loop())
        return self

    async def dial(self, target: str, from_user: str) -> FleetCall:
        """Call ``target`` and wait until it is answered (media flowing)."""
        assert self._sip is not None
        loop = asyncio.get_running_loop()
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Inbound RTP is never read: a small buffer keeps the kernel from holding much of it.
        rtp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        for _ in range(100):  # ports found free a moment ago may have been taken since
            port = self._next_rtp
            self._next_rtp += 2
            try:
                rtp.bind((HOST, port))
                break
            except OSError:
                continue
        else:
            rtp.close()
            raise RuntimeError(f"no free RTP port below {self._next_rtp}")
        rtp.setblocking(False)
        call_id = self._sip.command(
            lambda ua, now: ua.invite(target, HOST, port, now, from_user=from_user)
        )
        call = FleetCall(call_id, from_user, loop.create_future(), loop.create_future(), rtp)
        self.calls[call_id] = call
        await asyncio.wait_for(asyncio.shield(call.answered), 10)
        return call

    def schedule(self, due_at: float, call: FleetCall, key: str, duration_ms: float) -> None:
        """Press ``key`` on ``call`` at the first tick at or after ``due_at`` (unix seconds)."""
        due_mono = due_at - time.time() + time.monotonic()
        self._scheduled.append((due_mono, call, key, duration_ms, due_at))
        self._scheduled.sort(key=lambda item: item[0], reverse=True)

    def hangup(self, call: FleetCall) -> None:
        """End ``call`` (BYE)."""
        if self._sip is not None and not call.ended.done():
            self._sip.command(lambda ua, now: ua.hangup(call.call_id, now))

    async def close(self) -> None:
        """Hang up what is live, stop the ticker, close the sockets."""
        for call in self.calls.values():
            self.hangup(call)
        live = [call.ended for call in self.calls.values() if not call.ended.done()]
        if live:
            await asyncio.wait(live, timeout=3)
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for call in self.calls.values():
            call.rtp.close()
        if self._sip is not None:
            self._sip.close()

    def _on_event(self, event: Event) -> None:
        call = self.calls.get(getattr(event, "call_id", ""))
        if call is None:
            return
        if isinstance(event, CallAnswered) and call.remote is None:
            call.set_media(event.media)
            if not call.answered.done():
                call.answered.set_result(None)
        elif isinstance(event, CallEnded):
            if not call.answered.done():
                call.answered.set_exception(RuntimeError(f"call failed: {event.reason}"))
            if not call.ended.done():
                call.ended.set_result(event.reason)

    async def _tick_loop(self) -> None:
        deadline = time.monotonic()
        while True:
            deadline += TICK
            delay = deadline - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.monotonic()
            behind = int((now - deadline) / TICK)
            if behind > 5:  # a stalled process: skip ahead rather than burst (counted)
                self.ticks.skipped += behind
                deadline += behind * TICK
            self.ticks.ticks += 1
            self.ticks.late_ms.append((now - deadline) * 1000)
            while self._scheduled and self._scheduled[-1][0] <= now:
                _, call, key, duration_ms, due_at = self._scheduled.pop()
                if not call.ended.done():
                    call.press(key, duration_ms, due_at)
            for call in self.calls.values():
                if not call.ended.done():
                    call.tick()


# -- one fleet in a process of its own -----------------------------------------------------------


def run_worker(conn: Connection, rtp_port_base: int, target: str, users: Sequence[str]) -> None:
    """Process entry point: dial ``users`` to ``target``, then follow the pipe's commands.

    Sends ``("ready", n)``; takes ``("presses", [(due_at, user, key, duration_ms), ...])``;
    answers ``("report", None)`` with each call's keys and the ticker's lag; ``("close", None)``
    hangs up and answers ``"closed"``.
    """
    asyncio.run(_worker(conn, rtp_port_base, target, users))


async def _worker(conn: Connection, rtp_port_base: int, target: str,
                  users: Sequence[str]) -> None:
    loop = asyncio.get_running_loop()
    fleet = await CallerFleet(rtp_port_base).start()
    try:
        by_user: dict[str, FleetCall] = {}
        for first in range(0, len(users), RAMP):
            wave = users[first:first + RAMP]
            for call in await asyncio.gather(*(fleet.dial(target, user) for user in wave)):
                by_user[call.from_user] = call
        conn.send(("ready", len(by_user)))
        while True:
            command, argument = await loop.run_in_executor(None, conn.recv)
            if command == "presses":
                fleet.ticks = TickStats()  # the lag that matters is the pressing phase's
                for due_at, user, key, duration_ms in argument:
                    fleet.schedule(due_at, by_user[user], key, duration_ms)
            elif command == "report":
                report: dict[str, Any] = {
                    "keys": {user: [(k.key, None if k.queued else k.due_at, k.sent_at)
                                   for k in call.keys]
                             for user, call in by_user.items()},
                    "ticks": fleet.ticks.ticks, "skipped": fleet.ticks.skipped,
                    "late_ms": fleet.ticks.late_ms,
                }
                conn.send(("report", report))
            elif command == "close":
                break
    finally:
        await fleet.close()
        conn.send(("closed", None))
