"""The SIP line: phone calls over SIP/RTP on UDP, presented to the engine as :class:`LineCall`.

:class:`SipLine` owns one SIP socket (a sans-IO :class:`~voxflow.sip.useragent.UserAgent` behind
:class:`~voxflow.lines.sip_transport.SipTransport`), an RTP port allocator and, per call, an RTP
socket feeding a sans-IO :class:`~voxflow.rtp.leg.MediaLeg`. One media task serves ALL calls:
every 20 ms (paced from ``time.monotonic()`` deadlines, so lateness never accumulates) it pulls
each leg's inbound frame through the one batched in-band DTMF detector
(:class:`~voxflow.rtp.inband.InbandDetectorPool`), drains key presses, and sends each call's
next outbound frame from its audio source.

Outbound silence: when a call's audio source returns None (or there is none), encoded digital
silence is sent (no comfort noise is negotiated); it keeps NAT bindings and the peer's jitter
buffer fed, and queued DTMF goes out in its place.

Exceptions from the engine's hooks and audio sources are logged; they never end the line or
another call.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

import numpy as np

from voxflow.errors import RtpError, SipStateError, VoxflowError
from voxflow.lines.calls import (
    AudioSource,
    CallEnd,
    CallStreams,
    Int16Array,
    KeyPress,
    TransferOutcome,
)
from voxflow.lines.calls import ItemStream as _Stream
from voxflow.lines.config import SipLineConfig
from voxflow.lines.rtp_transport import RtpPortAllocator
from voxflow.lines.sip_transport import SipTransport, open_sip_transport
from voxflow.media.dtmf import DtmfPress
from voxflow.rtp.inband import InbandDetectorPool
from voxflow.rtp.leg import FRAME_SAMPLES, InboundFrame, LegMedia, MediaLeg
from voxflow.rtp.pacer import Pacer
from voxflow.sip.events import (
    CallAnswered,
    CallConfirmed,
    CallEnded,
    Event,
    IncomingCall,
    InfoReceived,
    MediaUpdated,
    OutgoingCallProgress,
    RegistrationState,
    TransferProgress,
)
from voxflow.sip.headers import Address
from voxflow.sip.sdp import NegotiatedMedia
from voxflow.sip.uri import SipUri
from voxflow.sip.useragent import UserAgent

log = logging.getLogger(__name__)

__all__ = [
    "AudioSource",
    "CallEnd",
    "DialError",
    "DialOutcome",
    "InboundFrame",
    "IncomingCallPolicy",
    "KeyPress",
    "LineCall",
    "SipLine",
    "TransferOutcome",
]

T = TypeVar("T")
_TICK = 0.02
_FRAME_BUFFER = 250  # 5 s of inbound frames kept for a slow reader; older ones are dropped
_MAX_READS = 256  # datagrams one socket may take per wake-up before others get their turn
_MAX_DATAGRAM = 65536


IncomingCallPolicy = Callable[["LineCall"], "bool | int | Awaitable[bool | int]"]
"""Decides on a new call: True answers, False rejects with 603, an int rejects with that status."""

DEFAULT_RING_TIMEOUT = 30.0


class DialOutcome(StrEnum):
    """How an outgoing call attempt ended."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    REJECTED = "rejected"
    UNREACHABLE = "unreachable"
    FAILED = "failed"


class DialError(VoxflowError):
    """An outgoing call was not answered: ``outcome`` says why, ``status`` is the SIP code."""

    def __init__(self, outcome: DialOutcome, reason: str, status: int | None = None) -> None:
        super().__init__(f"{outcome.value}: {reason}")
        self.outcome = outcome
        self.reason = reason
        self.status = status


def dial_outcome(end: CallEnd) -> DialOutcome:
    """Classify the end of an unanswered outgoing call (pure).

    Decision: 480 counts as no answer, because proxies and trunks send it when their own ring
    timer expires; a transaction timeout (no response at all) is unreachable.
    """
    if end.by == "timeout" or end.status == 408:
        return DialOutcome.UNREACHABLE
    if end.status in (486, 600):
        return DialOutcome.BUSY
    if end.status == 480:
        return DialOutcome.NO_ANSWER
    if end.status is not None and end.status >= 300:
        return DialOutcome.REJECTED
    return DialOutcome.FAILED


class _RtpSocket:
    """One call's RTP socket, read straight from the event loop's selector.

    Every wake-up drains all queued datagrams (up to :data:`_MAX_READS`): asyncio's datagram
    transport reads only one per loop iteration, so once an iteration takes longer than the
    packet interval each socket's backlog grows without bound, and a key press waits behind
    seconds of queued audio until the kernel drops it. Key presses the leg accepted are handed
    to the call at once, not at the next media tick.
    """

    def __init__(self, sock: socket.socket, release: Callable[[], None]) -> None:
        self.leg: MediaLeg | None = None
        self.call: LineCall | None = None
        self.send_errors = 0
        self._sock: socket.socket | None = sock
        self._release = release
        self._port = int(sock.getsockname()[1])
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._read_ready)

    def _read_ready(self) -> None:
        sock, leg = self._sock, self.leg
        if sock is None:
            return
        for _ in range(_MAX_READS):
            try:
                data, addr = sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                # ICMP port unreachable from a peer that went away must not end the call.
                log.debug("RTP socket error: %s", exc)
                continue
            if leg is not None:
                leg.receive_datagram(data, (addr[0], addr[1]), time.monotonic())
        if leg is not None and self.call is not None:
            self.call._deliver_presses(leg.presses())

    @property
    def port(self) -> int:
        """The bound local port."""
        return self._port

    def send(self, datagrams: list[bytes]) -> None:
        remote = self.leg.remote if self.leg is not None else None
        sock = self._sock
        if sock is None or remote is None:
            return
        for datagram in datagrams:
            try:
                sock.sendto(datagram, remote)
            except OSError as exc:
                # A full send buffer or an unreachable peer loses this packet, as the network
                # would; it must not stop the tick.
                self.send_errors += 1
                log.debug("RTP send failed: %s", exc)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            self._loop.remove_reader(sock.fileno())
            sock.close()
            self._release()


def _open_rtp_socket(allocator: RtpPortAllocator) -> _RtpSocket:
    sock = allocator.bind()
    port = sock.getsockname()[1]
    try:
        return _RtpSocket(sock, lambda: allocator.release(port))
    except BaseException:
        sock.close()
        allocator.release(port)
        raise


@dataclass(slots=True)
class _CallMedia:
    """A call's media on the line: its leg, socket, detector slot and audio source."""

    leg: MediaLeg
    socket: _RtpSocket
    slot: int
    audio_source: AudioSource | None = None

    def next_frame(self) -> Int16Array | None:
        source = self.audio_source
        if source is None:
            return None
        try:
            frame = source()
        except Exception:  # the engine's source must not stop this call's media or others'
            log.exception("%s: audio source failed; continuing without it", self.leg.label)
            self.audio_source = None
            return None
        if frame is None:
            return None
        samples = np.asarray(frame)
        if samples.shape != (FRAME_SAMPLES,):
            log.warning("%s: audio frame of shape %s dropped", self.leg.label, samples.shape)
            return None
        return samples.astype(np.int16, copy=False)


class LineCall(CallStreams):
    """One phone call on the line, as the engine sees it."""

    def __init__(self, line: SipLine, incoming: IncomingCall) -> None:
        super().__init__()
        self._line = line
        self.call_id = incoming.call_id
        self.caller = incoming.from_number
        self.callee = incoming.to_number
        self.asserted_identity = incoming.asserted_identity
        self.remote_address = incoming.remote_addr
        self.headers = incoming.headers
        self.has_offer = incoming.offer is not None
        self.media: NegotiatedMedia | None = None
        self.confirmed = False
        self._media: _CallMedia | None = None
        self._transfer: asyncio.Future[TransferOutcome] | None = None
        self.transfer_progress: list[tuple[int, str]] = []
        self.key_log: list[KeyPress] = []
        self.outgoing = False
        self._answered_waiter: asyncio.Future[None] | None = None
        self._frame_sink: Callable[[InboundFrame], None] | None = None
        self.progress: list[tuple[int, str]] = []
        """Provisional responses (status, reason) to our INVITE when we placed the call."""

    def __repr__(self) -> str:
        return f"<LineCall {self.call_id} from {self.caller} to {self.callee}>"

    # -- what the call delivers -----------------------------------------------------------------

    @property
    def answered(self) -> bool:
        """Whether we answered (media is set up)."""
        return self._media is not None

    def frames(self) -> AsyncIterator[InboundFrame]:
        """Decoded inbound 20 ms frames (8 kHz int16, ``lost`` flag) from now on; ends with the
        call. Frames are only buffered once this was called; a reader more than 5 s behind
        loses the oldest frames."""
        if self._frames is None:
            self._frames = _Stream(_FRAME_BUFFER)
        return self._frames.__aiter__()

    # -- what the call accepts ------------------------------------------------------------------

    async def answer(self) -> None:
        """Answer now (only needed when the policy deferred answering; idempotent)."""
        await self._line._answer(self)

    def set_audio_source(self, source: AudioSource | None) -> None:
        """Pull-based playback: ``source()`` runs each 20 ms and returns 160 samples or None."""
        self._require_media().audio_source = source

    def play(self, samples: Int16Array) -> None:
        """Play ``samples`` (8 kHz int16) from the next tick, replacing the current source."""
        audio = np.asarray(samples, dtype=np.int16).ravel()
        padded = np.zeros(-(-audio.size // FRAME_SAMPLES) * FRAME_SAMPLES, dtype=np.int16)
        padded[: audio.size] = audio
        chunks = deque(padded.reshape(-1, FRAME_SAMPLES))
        self.set_audio_source(lambda: chunks.popleft() if chunks else None)

    def send_dtmf(self, key: str, duration_ms: float = 100.0) -> None:
        """Send ``key`` as RFC 4733, or in-band when telephone-event was not negotiated."""
        self._require_media().leg.send_dtmf(key, duration_ms, time.monotonic())

    def hangup(self) -> None:
        """End the call (BYE, CANCEL or a final response, whatever its state); idempotent."""
        if self._ended.done():
            return
        with contextlib.suppress(SipStateError):
            self._line._command(lambda ua, now: ua.hangup(self.call_id, now))

    async def transfer(self, target: str, max_wait: float = 10.0) -> TransferOutcome:
        """Blind transfer by REFER: success once the peer reports a 2xx from the target.

        A refused REFER (4xx-6xx), a failed NOTIFY status or no final status within
        ``max_wait`` seconds is a failure.
        """
        if self._transfer is not None and not self._transfer.done():
            return TransferOutcome(False, None, "a transfer is already in progress")
        self._transfer = asyncio.get_running_loop().create_future()
        try:
            self._line._command(lambda ua, now: ua.refer(self.call_id, target, now))
        except VoxflowError as error:
            self._transfer = None
            return TransferOutcome(False, None, f"transfer to {target!r} not sent: {error}")
        try:
            return await asyncio.wait_for(asyncio.shield(self._transfer), max_wait)
        except TimeoutError:
            return TransferOutcome(False, None, f"no final transfer status within {max_wait} s")

    # -- fed by the line ------------------------------------------------------------------------

    @property
    def rtp_port(self) -> int | None:
        """Our RTP port while the call has media."""
        return self._media.socket.port if self._media is not None else None

    @property
    def leg(self) -> MediaLeg | None:
        """The call's media leg (statistics) while it has media."""
        return self._media.leg if self._media is not None else None

    def _require_media(self) -> _CallMedia:
        if self._media is None:
            raise SipStateError(f"call {self.call_id} has no media yet (not answered)")
        return self._media

    def _deliver_presses(self, presses: list[DtmfPress]) -> None:
        for press in presses:
            key_press = KeyPress(press.key, press.source, press.at_ms / 1000)
            log.info("call %s: key %s via %s", self.call_id, press.key, press.source)
            self.key_log.append(key_press)
            self._presses.put(key_press)

    def set_frame_sink(self, sink: Callable[[InboundFrame], None] | None) -> None:
        """Hand every inbound frame to ``sink`` in the media tick as well (a bridge to another
        call); unlike :meth:`frames` it takes no reader away from anyone."""
        self._frame_sink = sink

    def _deliver_frame(self, frame: InboundFrame) -> None:
        sink = self._frame_sink
        if sink is not None:
            try:
                sink(frame)
            except Exception:  # a broken sink must not stop this call's media or others'
                log.exception("call %s: frame sink failed; removed", self.call_id)
                self._frame_sink = None
        if self._frames is not None:
            self._frames.put(frame)

    def _on_transfer_progress(self, event: TransferProgress) -> None:
        self.transfer_progress.append((event.status, event.reason))
        future = self._transfer
        if future is None or future.done():
            return
        if event.status >= 300:
            future.set_result(TransferOutcome(False, event.status, event.reason))
        elif event.final and event.status >= 200:
            future.set_result(TransferOutcome(True, event.status, event.reason))

    def _finish(self, end: CallEnd) -> None:
        self._close_streams(end)
        if self._transfer is not None and not self._transfer.done():
            self._transfer.set_result(TransferOutcome(False, None, f"call ended: {end.reason}"))


class SipLine:
    """SIP/RTP phone line: answers calls, moves their media, reports keys and hang-ups.

    ``policy`` decides on each incoming call (default: answer everything); answered calls
    are also handed out by :meth:`next_call`.
    """

    def __init__(self, config: SipLineConfig, policy: IncomingCallPolicy | None = None) -> None:
        self.config = config
        self.policy = policy
        self._sip_config = config.sip_config()
        self._allocator = RtpPortAllocator(config.rtp_ports, config.rtp_bind_host)
        self._sip: SipTransport | None = None
        self._calls: dict[str, LineCall] = {}
        self._inband = InbandDetectorPool()
        self._ticker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._answered: _Stream[LineCall] = _Stream()
        self._dialing: dict[str, _RtpSocket] = {}
        self._registration_changed = asyncio.Event()
        self.registration: RegistrationState | None = None
        self.late_ticks = 0
        self.ticks = 0
        self.overrun_ticks = 0
        self.worst_tick_lateness = 0.0

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the SIP socket, start the media tick and register to the trunk if configured."""
        if self._sip is not None:
            raise SipStateError("SIP line already started")
        self._sip = await open_sip_transport(self._sip_config, self._on_sip_event)
        self._ticker = asyncio.get_running_loop().create_task(self._tick_loop())
        if self.config.trunk is not None:
            self._command(lambda ua, now: ua.register(now))

    async def stop(self, grace: float = 1.0) -> None:
        """Hang up live calls, unregister, wait up to ``grace`` s for answers, close sockets."""
        if self._sip is None:
            return
        for call in list(self._calls.values()):
            call.hangup()
        if self.registration is not None and self.registration.registered:
            with contextlib.suppress(SipStateError):
                self._command(lambda ua, now: ua.unregister(now))
        deadline = time.monotonic() + grace
        # The user agent has no "idle" notification; a short poll while BYEs are answered.
        while (self.agent.call_count or self._registration_pending()) and (  # noqa: ASYNC110
            time.monotonic() < deadline
        ):
            await asyncio.sleep(0.02)
        for task in [*self._tasks, *([self._ticker] if self._ticker else [])]:
            task.cancel()
        for task in [*self._tasks, *([self._ticker] if self._ticker else [])]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for call in list(self._calls.values()):
            await self._release(call, CallEnd("line stopped", "local"))
        # A tick that ran over a whole interval late delayed every call's keys and audio.
        log.log(
            logging.WARNING if self.overrun_ticks or self.late_ticks else logging.INFO,
            "media tick: %d ticks, %d started over one tick late, %d skipped, worst %.1f ms late",
            self.ticks,
            self.overrun_ticks,
            self.late_ticks,
            self.worst_tick_lateness * 1000,
        )
        self._sip.close()
        self._sip = None
        self._answered.close()

    def _registration_pending(self) -> bool:
        return self.registration is not None and self.registration.registered

    @property
    def agent(self) -> UserAgent:
        """The SIP user agent (for statistics)."""
        if self._sip is None:
            raise SipStateError("SIP line is not started")
        return self._sip.agent

    @property
    def address(self) -> tuple[str, int]:
        """Where the SIP socket listens (host, port) — the real port when 0 was configured."""
        config = self.agent.config
        return (config.listen_address, config.listen_port)

    @property
    def uri(self) -> str:
        """A SIP URI that reaches this line."""
        host, port = self.agent.config.advertised_address, self.address[1]
        return f"sip:{self.config.user}@{host}:{port}"

    @property
    def calls(self) -> list[LineCall]:
        """Live calls."""
        return list(self._calls.values())

    async def next_call(self, max_wait: float | None = None) -> LineCall:
        """The next answered call (TimeoutError after ``max_wait`` seconds)."""

        async def first() -> LineCall:
            async for call in self._answered:
                return call
            raise SipStateError("SIP line stopped")

        return await asyncio.wait_for(first(), max_wait)

    async def wait_registered(self, max_wait: float = 10.0) -> RegistrationState:
        """Wait until the trunk accepted our REGISTER; TimeoutError with the last state if not."""
        deadline = time.monotonic() + max_wait
        while self.registration is None or not self.registration.registered:
            self._registration_changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"not registered within {max_wait} s: {self.registration}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._registration_changed.wait(), remaining)
        return self.registration

    # -- signalling -----------------------------------------------------------------------------

    def _command(self, action: Callable[[UserAgent, float], T]) -> T:
        if self._sip is None:
            raise SipStateError("SIP line is not started")
        return self._sip.command(action)

    def _on_sip_event(self, event: Event) -> None:
        if isinstance(event, IncomingCall):
            call = LineCall(self, event)
            self._calls[call.call_id] = call
            self._spawn(self._admit(call))
        elif isinstance(event, RegistrationState):
            log.info("trunk registration: %s (%s %s)", event.registered, event.status, event.reason)
            self.registration = event
            self._registration_changed.set()
        elif (found := self._calls.get(getattr(event, "call_id", ""))) is not None:
            self._on_call_event(found, event)

    def _on_call_event(self, call: LineCall, event: Event) -> None:
        now = time.monotonic()
        if isinstance(event, CallConfirmed):
            call.confirmed = True
        elif isinstance(event, CallEnded):
            log.info("call %s ended by %s: %s", call.call_id, event.by, event.reason)
            self._spawn(self._release(call, CallEnd(event.reason, event.by, event.status)))
        elif isinstance(event, InfoReceived) and call._media is not None:
            leg = call._media.leg
            leg.receive_info(call.call_id, event.cseq, event.content_type, event.body, now)
            call._deliver_presses(leg.presses())
        elif isinstance(event, MediaUpdated) and call._media is not None:
            try:
                call._media.leg.update_media(LegMedia.from_negotiated(event.media), now)
                call.media = event.media
            except VoxflowError as error:
                log.warning("call %s: re-INVITE media not usable: %s", call.call_id, error)
        elif isinstance(event, TransferProgress):
            call._on_transfer_progress(event)
        elif isinstance(event, OutgoingCallProgress):
            call.progress.append((event.status, event.reason))
        elif isinstance(event, CallAnswered):
            self._outgoing_answered(call, event.media)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _admit(self, call: LineCall) -> None:
        if not call.has_offer:
            # Answering would send our offer in the 200 and leave media to the ACK; not built.
            log.warning("call %s: INVITE without SDP offer refused (488)", call.call_id)
            self._command(lambda ua, now: ua.reject(call.call_id, 488, now))
            return
        try:
            verdict = await self._decide(call)
            if call.end is not None:
                return
            if verdict is True:
                self._command(lambda ua, now: ua.ring(call.call_id, now))
                await self._answer(call)
            elif verdict is not None:
                status = 603 if verdict is False else int(verdict)
                self._command(lambda ua, now: ua.reject(call.call_id, status, now))
        except (VoxflowError, OSError) as error:
            log.warning("call %s could not be answered: %s", call.call_id, error)
            with contextlib.suppress(VoxflowError):
                self._command(lambda ua, now: ua.reject(call.call_id, 503, now))

    async def _decide(self, call: LineCall) -> bool | int | None:
        """The policy's verdict; None when the policy answers the call itself later."""
        if self.policy is None:
            return True
        try:
            verdict = self.policy(call)
            if inspect.isawaitable(verdict):
                verdict = await verdict
        except Exception:  # a broken policy refuses this call only
            log.exception("incoming-call policy failed for %s", call.call_id)
            return 500
        if call.answered:
            return None
        if isinstance(verdict, bool):
            return verdict
        if isinstance(verdict, int) and 300 <= verdict <= 699:
            return verdict
        log.error("incoming-call policy returned %r; rejecting %s", verdict, call.call_id)
        return 500

    async def _answer(self, call: LineCall) -> None:
        if call.answered or call.end is not None:
            return
        rtp = _open_rtp_socket(self._allocator)
        if call.end is not None:
            rtp.close()
            return
        address = self.config.advertised_address
        try:
            negotiated = self._command(
                lambda ua, now: ua.answer(call.call_id, address, rtp.port, now)
            )
            if negotiated is None:
                raise RtpError("INVITE without SDP offer is not supported by the SIP line")
            leg = MediaLeg(LegMedia.from_negotiated(negotiated), label=f"call {call.call_id}")
        except VoxflowError:
            rtp.close()
            raise
        rtp.leg = leg
        rtp.call = call
        call.media = negotiated
        call._media = _CallMedia(leg, rtp, self._inband.add(leg))
        log.info(
            "call %s answered: %s from %s:%s",
            call.call_id,
            negotiated.codec.name,
            negotiated.remote_address,
            negotiated.remote_port,
        )
        self._answered.put(call)

    # -- outgoing calls -------------------------------------------------------------------------

    async def dial(
        self,
        target_uri: str,
        *,
        caller: str | None = None,
        ring_timeout: float = DEFAULT_RING_TIMEOUT,
        extra_headers: dict[str, str] | None = None,
    ) -> LineCall:
        """Call ``target_uri``; the answered call with media, or :class:`DialError`.

        ``caller`` is our From user (default: the line's user). Without an answer within
        ``ring_timeout`` seconds the attempt is cancelled (no answer; unreachable when the far
        end never sent a provisional response). Outgoing calls are not handed to
        :meth:`next_call`.
        """
        try:
            uri = SipUri.parse(target_uri)
        except VoxflowError as error:
            raise DialError(DialOutcome.FAILED, str(error)) from None
        rtp = _open_rtp_socket(self._allocator)
        address = self.config.advertised_address
        user = caller or self.config.user
        try:
            call_id = self._command(lambda ua, now: ua.invite(
                target_uri, address, rtp.port, now, from_user=user, extra_headers=extra_headers))
        except VoxflowError as error:
            rtp.close()
            raise DialError(DialOutcome.FAILED, str(error)) from None
        remote = (uri.host_for_socket, uri.port or 5060)
        call = LineCall(self, IncomingCall(
            call_id, None, Address(SipUri("sip", user, address)), Address(uri), uri, remote))
        call.outgoing = True
        self._calls[call_id] = call
        self._dialing[call_id] = rtp
        log.info("call %s: dialling %s", call_id, target_uri)
        answered = asyncio.get_running_loop().create_future()
        call._answered_waiter = answered
        try:
            await asyncio.wait({answered, call._ended}, timeout=ring_timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            call._answered_waiter = None
            if not call.answered:
                self._dialing.pop(call_id, None)
                rtp.close()
        if call.answered:  # (even when it ended at once: an answered call is an answered call)
            return call
        end = call.end
        if end is None:  # the ring timeout: CANCEL
            call.hangup()
            if not call.progress:
                raise DialError(DialOutcome.UNREACHABLE,
                                 f"no response from {target_uri} within {ring_timeout:g} s")
            raise DialError(DialOutcome.NO_ANSWER, f"not answered within {ring_timeout:g} s")
        raise DialError(dial_outcome(end), end.reason, end.status)

    def _outgoing_answered(self, call: LineCall, negotiated: NegotiatedMedia) -> None:
        rtp = self._dialing.pop(call.call_id, None)
        if rtp is None or call.answered:
            return
        try:
            leg = MediaLeg(LegMedia.from_negotiated(negotiated), label=f"call {call.call_id}")
        except VoxflowError as error:
            log.warning("call %s: answer media not usable: %s", call.call_id, error)
            rtp.close()
            call.hangup()
            return
        rtp.leg = leg
        rtp.call = call
        call.media = negotiated
        call.confirmed = True
        call._media = _CallMedia(leg, rtp, self._inband.add(leg))
        log.info("call %s answered by %s: %s", call.call_id, call.callee, negotiated.codec.name)
        waiter = call._answered_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _release(self, call: LineCall, end: CallEnd) -> None:
        self._calls.pop(call.call_id, None)
        media, call._media = call._media, None
        call._finish(end)
        if media is not None:
            self._inband.remove(media.slot)
            media.socket.close()

    # -- media ----------------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        pacer = Pacer(time.monotonic(), _TICK)
        while True:
            previous = pacer.tick
            deadline = pacer.next_deadline(time.monotonic())
            self.late_ticks += max(0, pacer.tick - previous - 1)
            delay = deadline - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.monotonic()
            lateness = now - deadline
            self.ticks += 1
            self.overrun_ticks += lateness > _TICK
            self.worst_tick_lateness = max(self.worst_tick_lateness, lateness)
            try:
                self._tick(now)
            except Exception:  # the media tick must survive anything one call does
                log.exception("media tick failed")

    def _tick(self, now: float) -> None:
        frames = self._inband.process(now)
        for call in list(self._calls.values()):
            media = call._media
            if media is None:
                continue
            try:
                media.leg.poll(now)
                call._deliver_presses(media.leg.presses())
                frame = frames.get(media.slot)
                if frame is not None:
                    call._deliver_frame(frame)
                samples = media.next_frame()
                media.socket.send(
                    media.leg.send_silence(now)
                    if samples is None
                    else media.leg.send_audio(samples, now)
                )
            except Exception:
                log.exception("call %s: media tick failed", call.call_id)
