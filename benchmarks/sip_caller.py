"""A light SIP/RTP caller fleet built from voxflow's sans-IO cores, over real UDP.

One SIP socket (one :class:`~voxflow.sip.useragent.UserAgent`) places many calls; each call has
its own RTP socket and :class:`~voxflow.rtp.leg.MediaLeg`; one 20 ms ticker sends every call's
silence and queued RFC 4733 key presses. For each press it notes the wall-clock time its first
telephone-event packet left (``sent_at``), so a receiver in another process can measure latency.
Inbound RTP is read and dropped: the fleet only needs to be a polite far end.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from voxflow.lines.sip_transport import SipTransport, open_sip_transport
from voxflow.rtp.leg import LegMedia, MediaLeg
from voxflow.sip.config import SipConfig
from voxflow.sip.events import CallAnswered, CallEnded, Event

HOST = "127.0.0.1"
TICK = 0.02


@dataclass
class SentKey:
    """One key press; ``sent_at`` (unix seconds) once its first RFC 4733 packet went out."""

    key: str
    sent_at: float | None = None


class _Drop(asyncio.DatagramProtocol):
    pass


@dataclass
class FleetCall:
    """One call of the fleet."""

    call_id: str
    from_user: str
    answered: asyncio.Future[None]
    ended: asyncio.Future[str]
    leg: MediaLeg | None = None
    rtp: asyncio.DatagramTransport | None = None
    keys: list[SentKey] = field(default_factory=list)
    _waiting: list[SentKey] = field(default_factory=list)

    def press(self, key: str, duration_ms: float = 100.0) -> None:
        """Send ``key`` as RFC 4733 from the next tick on."""
        if self.leg is None:
            raise RuntimeError(f"call {self.call_id} is not answered")
        self.leg.send_dtmf(key, duration_ms, time.monotonic())
        sent = SentKey(key)
        self.keys.append(sent)
        self._waiting.append(sent)


class CallerFleet:
    """Places calls to ``target`` (``sip:user@host:port``) and presses keys on them."""

    def __init__(self, rtp_port_base: int) -> None:
        self._next_rtp = rtp_port_base
        self._sip: SipTransport | None = None
        self.calls: dict[str, FleetCall] = {}
        self._ticker: asyncio.Task[None] | None = None

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
        port = self._next_rtp
        self._next_rtp += 2
        transport, _ = await loop.create_datagram_endpoint(_Drop, local_addr=(HOST, port))
        call_id = self._sip.command(
            lambda ua, now: ua.invite(target, HOST, port, now, from_user=from_user)
        )
        call = FleetCall(call_id, from_user, loop.create_future(), loop.create_future(),
                         rtp=transport)
        self.calls[call_id] = call
        await asyncio.wait_for(asyncio.shield(call.answered), 10)
        return call

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
            if call.rtp is not None:
                call.rtp.close()
        if self._sip is not None:
            self._sip.close()

    def _on_event(self, event: Event) -> None:
        call = self.calls.get(getattr(event, "call_id", ""))
        if call is None:
            return
        if isinstance(event, CallAnswered) and call.leg is None:
            call.leg = MediaLeg(LegMedia.from_negotiated(event.media), label=call.from_user)
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
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            now = time.monotonic()
            for call in list(self.calls.values()):
                if call.leg is None or call.rtp is None or call.ended.done():
                    continue
                self._send(call, call.leg.send_silence(now))

    @staticmethod
    def _send(call: FleetCall, datagrams: list[bytes]) -> None:
        assert call.leg is not None and call.rtp is not None
        remote = call.leg.remote
        if remote is None:
            return
        event_pt = call.leg.media.telephone_event_payload_type
        for datagram in datagrams:
            call.rtp.sendto(datagram, remote)
            is_event_start = len(datagram) > 1 and datagram[1] == 0x80 | (event_pt or 0)
            if call._waiting and is_event_start:
                # Marker bit + telephone-event type: the first packet of the oldest unsent press.
                waiting = call._waiting[0]
                if waiting.sent_at is None:
                    waiting.sent_at = time.time()
                    call._waiting.pop(0)
