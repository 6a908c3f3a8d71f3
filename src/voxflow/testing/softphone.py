"""A small SIP/RTP softphone (caller side) built from voxflow's own sans-IO cores.

:class:`Softphone` owns one SIP socket (a :class:`~voxflow.sip.useragent.UserAgent` behind the
:class:`~voxflow.lines.sip_transport.SipTransport` adapter) and places calls; each
:class:`PhoneCall` has its own RTP socket and :class:`~voxflow.rtp.leg.MediaLeg`. One 20 ms
ticker sends every call's audio (queued speech, else silence) and reads what it hears. A call
can press keys by RFC 4733, SIP INFO or in-band tones, play speech, record both directions
(:meth:`PhoneCall.stereo`) and accepts (or refuses) the far end's REFER.

It has no user interface: whatever shows the call (a test, ``voxflow demo``, a terminal phone)
subscribes with :meth:`PhoneCall.subscribe` and gets :class:`PhoneEvent` values.

The user agent core does not take incoming REFERs; the adapter answers them itself from the
request (202, then a ``message/sipfrag`` NOTIFY), see :func:`refer_replies`. Limitation: the
NOTIFY uses the next in-dialog CSeq, which the core does not know about, so after an accepted
transfer the far end is expected to end the call (voxflow does) rather than this phone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt

from voxflow.errors import SipParseError, SipStateError
from voxflow.lines.sip_transport import SipTransport
from voxflow.media.dtmf import generate_tone
from voxflow.rtp.leg import FRAME_SAMPLES, LegMedia, MediaLeg
from voxflow.sip.config import SipConfig
from voxflow.sip.events import CallAnswered, CallEnded, Event, IncomingCall
from voxflow.sip.headers import Address, Headers
from voxflow.sip.message import Request, Response, parse_message
from voxflow.sip.useragent import UserAgent

log = logging.getLogger(__name__)

__all__ = [
    "KeyMethod",
    "PhoneCall",
    "PhoneEvent",
    "Softphone",
    "refer_replies",
]

KeyMethod = Literal["rfc4733", "info", "inband"]
Int16Array = npt.NDArray[np.int16]
T = TypeVar("T")
_TICK = 0.02
_SILENCE = np.zeros(FRAME_SAMPLES, dtype=np.int16)


@dataclass(frozen=True, slots=True)
class PhoneEvent:
    """Something that happened on a call: ``kind`` is ``answered``, ``key``, ``audio``,
    ``refer`` or ``ended``; ``at`` is monotonic seconds; ``detail`` says more."""

    kind: str
    at: float
    detail: dict[str, str] = field(default_factory=dict)


def refer_replies(
    request: Request,
    *,
    contact: str,
    via_sent_by: str,
    cseq: int,
    accept: bool = True,
    branch: str | None = None,
) -> tuple[Response, Request | None]:
    """The answers to an in-dialog REFER: the response, and (when accepted) the NOTIFY that
    reports the transferred call answered (``SIP/2.0 200 OK`` sipfrag, subscription over).

    Pure: everything dialog-related is copied from the REFER (our tag is in its To, the peer's
    in its From; the peer's Contact is the NOTIFY's request URI).
    """
    if not accept:
        return Response.for_request(request, 603, "Declined"), None
    response = Response.for_request(request, 202, "Accepted")
    contact_header = request.headers.get("Contact")
    target = (Address.parse(contact_header, "Contact").uri if contact_header
              else request.from_address.uri)
    headers = Headers()
    headers.add("Via", f"SIP/2.0/UDP {via_sent_by};branch=z9hG4bK{branch or secrets.token_hex(8)}"
                ";rport")
    headers.add("Max-Forwards", "70")
    headers.add("From", str(request.to_address))
    headers.add("To", str(request.from_address))
    headers.add("Call-ID", request.call_id)
    headers.add("CSeq", f"{cseq} NOTIFY")
    headers.add("Contact", contact)
    headers.add("Event", "refer")
    headers.add("Subscription-State", "terminated;reason=noresource")
    headers.add("Content-Type", "message/sipfrag")
    return response, Request(headers, b"SIP/2.0 200 OK\r\n", "NOTIFY", target)


def refer_target(request: Request) -> str:
    """The Refer-To URI of a REFER, without angle brackets and header parameters."""
    value = request.headers.get("Refer-To")
    if not value:
        raise SipParseError("REFER without Refer-To")
    return str(Address.parse(value, "Refer-To").uri)


class _PhoneTransport(SipTransport):
    """The SIP adapter, plus the REFER handling the user agent core does not have."""

    phone: Softphone

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data[:6] == b"REFER ":
            try:
                request = parse_message(data)
            except SipParseError:
                request = None
            if isinstance(request, Request) and self.phone._on_refer(request, addr):
                return
        super().datagram_received(data, addr)

    def send_raw(self, data: bytes, addr: tuple[str, int]) -> None:
        """Send bytes the core did not produce (REFER answers)."""
        if self._transport is not None:
            self._transport.sendto(data, addr)


class _Rtp(asyncio.DatagramProtocol):
    call: PhoneCall | None = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        leg = self.call.leg if self.call is not None else None
        if leg is not None:
            leg.receive_datagram(data, (str(addr[0]), int(addr[1])), time.monotonic())

    def error_received(self, exc: Exception) -> None:
        log.debug("softphone RTP socket error: %s", exc)


class PhoneCall:
    """One outgoing call of the :class:`Softphone`."""

    def __init__(self, phone: Softphone, call_id: str, rtp: asyncio.DatagramTransport,
                 accept_transfer: bool) -> None:
        self.phone = phone
        self.call_id = call_id
        self.accept_transfer = accept_transfer
        self.leg: MediaLeg | None = None
        self.answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.ended: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
        self.refers: list[str] = []
        self.sent: list[Int16Array] = []
        self.heard: list[Int16Array] = []
        self._rtp = rtp
        self._voice: deque[Int16Array] = deque()
        self._listeners: list[Callable[[PhoneEvent], None]] = []
        self._in_dialog_cseq = 1  # our INVITE; every INFO (and NOTIFY) takes the next number
        self._refer_answers: dict[int, bytes] = {}  # REFER CSeq → our response (retransmits)

    # -- what a user of the phone sees -------------------------------------------------------

    def subscribe(self, listener: Callable[[PhoneEvent], None]) -> None:
        """Call ``listener`` with every :class:`PhoneEvent` of this call from now on."""
        self._listeners.append(listener)

    @property
    def live(self) -> bool:
        """Answered and not ended."""
        return self.leg is not None and not self.ended.done()

    async def wait_ended(self, max_wait: float | None = None) -> tuple[str, str]:
        """Wait for the end: ``(reason, by)`` where ``by`` is ``local``/``remote``/``timeout``."""
        return await asyncio.wait_for(asyncio.shield(self.ended), max_wait)

    # -- what the caller does ------------------------------------------------------------------

    def press(self, key: str, method: KeyMethod = "rfc4733", duration_ms: float = 120.0) -> None:
        """Press ``key`` by RFC 4733 telephone-events, SIP INFO or an in-band tone pair."""
        leg = self._require_leg()
        now = time.monotonic()
        if method == "rfc4733":
            leg.send_dtmf(key, duration_ms, now)
        elif method == "info":
            body = f"Signal={key}\r\nDuration={int(duration_ms)}\r\n".encode()
            self.phone._command(
                lambda ua, t: ua.send_info(self.call_id, "application/dtmf-relay", body, t))
            self._in_dialog_cseq += 1
        elif method == "inband":
            tone = generate_tone(key, duration_ms, level_dbm0=-10.0)
            self.play(np.concatenate([tone, np.zeros(FRAME_SAMPLES * 4, dtype=np.int16)]))
        else:
            raise ValueError(f"press: method {method!r} is not rfc4733, info or inband")
        self._emit("key", key=key, method=method)

    def play(self, samples: npt.ArrayLike) -> float:
        """Queue 8 kHz int16 audio as the caller's voice; returns its length in seconds."""
        audio = np.asarray(samples, dtype=np.int16).ravel()
        padded = np.zeros(-(-audio.size // FRAME_SAMPLES) * FRAME_SAMPLES, dtype=np.int16)
        padded[: audio.size] = audio
        self._voice.extend(padded.reshape(-1, FRAME_SAMPLES))
        seconds = audio.size / 8000
        self._emit("audio", seconds=f"{seconds:.2f}")
        return seconds

    def hangup(self) -> None:
        """End the call (BYE, or CANCEL while it rings); idempotent."""
        if not self.ended.done():
            with contextlib.suppress(SipStateError):
                self.phone._command(lambda ua, now: ua.hangup(self.call_id, now))

    def stereo(self) -> Int16Array:
        """Both directions as ``[samples, 2]`` int16: caller left, far end right."""
        count = min(len(self.sent), len(self.heard))
        if count == 0:
            return np.zeros((0, 2), dtype=np.int16)
        left = np.concatenate(self.sent[:count])
        right = np.concatenate(self.heard[:count])
        return np.stack([left, right], axis=1)

    # -- fed by the phone ----------------------------------------------------------------------

    def _require_leg(self) -> MediaLeg:
        if self.leg is None or self.ended.done():
            raise SipStateError(f"call {self.call_id} is not live")
        return self.leg

    def _emit(self, kind: str, **detail: str) -> None:
        event = PhoneEvent(kind, time.monotonic(), dict(detail))
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not stop the call
                log.exception("softphone listener failed on %r", event)

    def _tick(self, now: float) -> None:
        leg = self.leg
        if leg is None or self.ended.done():
            return
        self.heard.append(leg.pull_frame(now).samples)
        frame = self._voice.popleft() if self._voice else _SILENCE
        self.sent.append(frame)
        remote = leg.remote
        for datagram in leg.send_audio(frame, now):
            if remote is not None:
                self._rtp.sendto(datagram, remote)

    def _close(self) -> None:
        self._rtp.close()


class Softphone:
    """A caller: ``async with Softphone() as phone: call = await phone.dial(uri)``."""

    def __init__(self, host: str = "127.0.0.1", user: str = "caller") -> None:
        self.host = host
        self.user = user
        self.calls: dict[str, PhoneCall] = {}
        self._sip: _PhoneTransport | None = None
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> Softphone:
        """Bind the SIP socket (a free port) and start the media ticker."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=(self.host, 0))
        port = int(transport.get_extra_info("sockname")[1])
        config = SipConfig(listen_address=self.host, listen_port=port, user=self.user,
                           rate_limits=None)
        protocol = _PhoneTransport(UserAgent(config), self._on_event)
        protocol.phone = self
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        self._sip = protocol
        self._ticker = loop.create_task(self._tick_loop(), name="softphone-media")
        return self

    async def close(self) -> None:
        """Hang up what is live (waiting briefly for the answers) and close the sockets."""
        for call in self.calls.values():
            call.hangup()
        live = [call.ended for call in self.calls.values() if not call.ended.done()]
        if live:
            await asyncio.wait(live, timeout=2)
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for call in self.calls.values():
            call._close()
        if self._sip is not None:
            self._sip.close()
            self._sip = None

    async def __aenter__(self) -> Softphone:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def address(self) -> tuple[str, int]:
        """Where the phone's SIP socket listens."""
        config = self._agent().config
        return config.listen_address, config.listen_port

    async def dial(self, target: str, *, from_user: str | None = None,
                   accept_transfer: bool = True, max_wait: float = 10.0) -> PhoneCall:
        """Call ``target`` (``sip:user@host:port``) and wait until it is answered.

        ``accept_transfer`` decides how a REFER from the far end is answered (202 and a
        NOTIFY reporting success, or 603). Raises ``SipStateError`` if the call is refused.
        """
        loop = asyncio.get_running_loop()
        rtp, protocol = await loop.create_datagram_endpoint(_Rtp, local_addr=(self.host, 0))
        rtp_port = int(rtp.get_extra_info("sockname")[1])
        call_id = self._command(lambda ua, now: ua.invite(
            target, self.host, rtp_port, now, from_user=from_user or self.user))
        call = PhoneCall(self, call_id, rtp, accept_transfer)
        protocol.call = call
        self.calls[call_id] = call
        try:
            await asyncio.wait_for(asyncio.shield(call.answered), max_wait)
        except TimeoutError:
            call.hangup()
            raise SipStateError(f"call to {target} not answered within {max_wait} s") from None
        return call

    # -- internals -----------------------------------------------------------------------------

    def _agent(self) -> UserAgent:
        if self._sip is None:
            raise SipStateError("softphone is not started")
        return self._sip.agent

    def _command(self, action: Callable[[UserAgent, float], T]) -> T:
        if self._sip is None:
            raise SipStateError("softphone is not started")
        return self._sip.command(action)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, IncomingCall):
            # This phone only dials out: a call to it is refused at once, as by a busy handset,
            # instead of ringing until the caller's ring timeout.
            self._command(lambda ua, now: ua.reject(event.call_id, 486, now))
            return
        call = self.calls.get(getattr(event, "call_id", ""))
        if call is None:
            return
        if isinstance(event, CallAnswered) and call.leg is None:
            media = LegMedia.from_negotiated(event.media)
            call.leg = MediaLeg(media, label=f"phone {call.call_id}")
            if not call.answered.done():
                call.answered.set_result(None)
            call._emit("answered", codec=event.media.codec.name)
        elif isinstance(event, CallEnded):
            if not call.answered.done():
                call.answered.set_exception(SipStateError(
                    f"call failed: {event.status or ''} {event.reason}".strip()))
                call.answered.exception()  # retrieved here so an unawaited dial stays quiet
            if not call.ended.done():
                call.ended.set_result((event.reason, event.by))
            call._emit("ended", reason=event.reason, by=event.by)

    def _on_refer(self, request: Request, addr: tuple[str, int]) -> bool:
        """Answer a REFER for one of our calls; False leaves it to the core (481 etc.)."""
        call = self.calls.get(request.call_id)
        if call is None or self._sip is None or call.ended.done():
            return False
        if (earlier := call._refer_answers.get(request.cseq.number)) is not None:
            self._sip.send_raw(earlier, addr)  # a retransmission: same answer, no new NOTIFY
            return True
        try:
            target = refer_target(request)
        except SipParseError:
            return False
        host, port = self.address
        call._in_dialog_cseq += 1
        response, notify = refer_replies(
            request, contact=f"<sip:{self.user}@{host}:{port}>", via_sent_by=f"{host}:{port}",
            cseq=call._in_dialog_cseq, accept=call.accept_transfer)
        call._refer_answers[request.cseq.number] = bytes(response)
        self._sip.send_raw(bytes(response), addr)
        if notify is not None:
            self._sip.send_raw(bytes(notify), addr)
        call.refers.append(target)
        call._emit("refer", target=target, accepted=str(call.accept_transfer).lower())
        return True

    async def _tick_loop(self) -> None:
        deadline = time.monotonic()
        while True:
            deadline += _TICK
            # Deadlines, not sleeps of a fixed length, so lateness never accumulates.
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            now = time.monotonic()
            for call in list(self.calls.values()):
                try:
                    call._tick(now)
                except Exception:
                    log.exception("softphone: media tick of %s failed", call.call_id)
