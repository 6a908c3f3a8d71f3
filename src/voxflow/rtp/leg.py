"""The media leg of one call: RTP ⇄ 20 ms audio frames, and every key press through one arbiter.

Sans-IO, like everything under :mod:`voxflow.rtp`: the adapter hands in datagrams, SIP INFO
bodies, in-band detector results and ``now`` (seconds, monotonic); the leg hands back decoded
frames, datagrams to send to :attr:`MediaLeg.remote`, and accepted key presses.

Inbound
    :meth:`MediaLeg.receive_datagram` feeds the :class:`~voxflow.rtp.session.RtpSession`
    (latching, payload-type demux, jitter buffer). Telephone-events (plain or RFC 2198 RED
    wrapped) go to the RFC 4733 receiver; a malformed one is counted and logged, never raised.
    :meth:`MediaLeg.pull_frame` gives one decoded frame per 20 ms tick; concealed audio comes out
    as silence with ``lost=True`` so the in-band detector neither starts nor ends a press on it.
Key presses
    RFC 4733, SIP INFO (:meth:`MediaLeg.receive_info`) and in-band (:meth:`MediaLeg.feed_inband`,
    results of the engine's one batched detector, see :mod:`voxflow.rtp.inband`) all go through
    the leg's :class:`~voxflow.media.dtmf.DtmfArbiter`. In-band presses pass the
    :class:`~voxflow.rtp.echo_guard.OutboundToneGuard` first, so the echo of a prompt holding a
    DTMF tone pair is not a key. :meth:`MediaLeg.presses` drains accepted presses, each once.
    Call :meth:`MediaLeg.poll` at :meth:`MediaLeg.next_deadline` (RFC 4733 end timeouts, held
    in-band presses).
Outbound
    :meth:`MediaLeg.send_audio` once per 20 ms tick encodes one frame with the negotiated G.711
    law and packs it per ``ptime``. While we must not send (hold: ``recvonly``/``inactive``) it
    returns nothing but keeps the RTP clock running. There is no comfort noise (CN is not
    negotiated): :meth:`MediaLeg.send_silence` sends encoded digital silence, which keeps NAT
    bindings and the peer's jitter buffer alive. :meth:`MediaLeg.send_dtmf` queues a key: with
    telephone-event negotiated, its RFC 4733 packet train replaces the audio of the following
    ticks (one packet per tick, all with the press-start timestamp, marker on the first, END
    three times) while the audio clock keeps advancing; without it, the key's tone pair replaces
    the audio instead, followed by a pause so repeated keys stay separate.
"""

from __future__ import annotations

import functools
import logging
import random
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from voxflow.errors import ConfigError, DtmfParseError, MediaError, RtpParseError
from voxflow.media.dtmf import (
    DtmfArbiter,
    DtmfPress,
    DtmfSource,
    KeyDown,
    KeyUp,
    SipInfoDtmfReceiver,
    TelephoneEventReceiver,
    TelephoneEventSender,
    extract_telephone_events,
    generate_tone,
)
from voxflow.media.dtmf.rfc4733 import TelephoneEventPacket
from voxflow.media.g711 import Codec
from voxflow.rtp.echo_guard import OutboundToneGuard
from voxflow.rtp.events import Address, PacketRejected, TelephoneEventReceived
from voxflow.rtp.packet import RtpPacket, parse_rtp
from voxflow.rtp.session import RtpSession, RtpSessionStats

logger = logging.getLogger(__name__)

SAMPLE_RATE: Final = 8000
FRAME_SAMPLES: Final = 160
FRAME_MS: Final = 20.0
_FRAME_SECONDS: Final = FRAME_MS / 1000
_SILENCE: Final = np.zeros(FRAME_SAMPLES, dtype=np.int16)
_SILENCE.flags.writeable = False
# Decoded frames not yet pulled are kept at most this deep; older ones are dropped (a stalled
# tick loop must not turn into ever-growing latency).
_MAX_QUEUED_FRAMES: Final = 5


@functools.cache
def _silence_payload(codec: Codec) -> bytes:
    return codec.encode_samples(_SILENCE).tobytes()


# -- configuration -----------------------------------------------------------------------------


class _SdpCodec(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def payload_type(self) -> int: ...
    @property
    def clock_rate(self) -> int: ...


class NegotiatedMediaLike(Protocol):
    """What the SDP layer's negotiated-media result offers (``voxflow.sip.sdp.NegotiatedMedia``)."""

    @property
    def codec(self) -> _SdpCodec: ...
    @property
    def telephone_event(self) -> _SdpCodec | None: ...
    @property
    def ptime(self) -> int: ...
    @property
    def remote_address(self) -> str: ...
    @property
    def remote_port(self) -> int: ...
    @property
    def we_send(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class LegMedia:
    """How the leg's media was negotiated; ``sending`` is False on hold (recvonly/inactive)."""

    codec: Codec
    payload_type: int
    telephone_event_payload_type: int | None = None
    telephone_event_clock: int = SAMPLE_RATE
    red_payload_type: int | None = None
    ptime: int = 20
    remote: Address | None = None
    sending: bool = True

    def __post_init__(self) -> None:
        for name in ("payload_type", "telephone_event_payload_type", "red_payload_type"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 127:
                raise ConfigError(f"media {name} {value} is outside 0..127")
        if self.ptime <= 0 or self.ptime % 10:
            raise ConfigError(f"media ptime must be a positive multiple of 10 ms, got {self.ptime}")
        if self.telephone_event_clock <= 0:
            raise ConfigError(
                f"telephone-event clock must be positive, got {self.telephone_event_clock}"
            )

    @classmethod
    def from_negotiated(
        cls, negotiated: NegotiatedMediaLike, *, red_payload_type: int | None = None
    ) -> LegMedia:
        """Build from the SDP offer/answer result; raises ``MediaError`` for a non-G.711 codec."""
        if negotiated.codec.clock_rate != SAMPLE_RATE:
            raise MediaError(
                f"codec {negotiated.codec.name}/{negotiated.codec.clock_rate} is not 8 kHz G.711"
            )
        event = negotiated.telephone_event
        has_remote = negotiated.remote_port > 0 and negotiated.remote_address != "0.0.0.0"
        return cls(
            codec=Codec.from_name(negotiated.codec.name),
            payload_type=negotiated.codec.payload_type,
            telephone_event_payload_type=event.payload_type if event is not None else None,
            telephone_event_clock=event.clock_rate if event is not None else SAMPLE_RATE,
            red_payload_type=red_payload_type,
            ptime=negotiated.ptime,
            remote=(negotiated.remote_address, negotiated.remote_port) if has_remote else None,
            sending=negotiated.we_send,
        )


@dataclass(frozen=True, slots=True)
class LegSettings:
    """Tunables of the DTMF side; defaults follow the project's DTMF notes."""

    allow_abcd: bool = False
    inband_hold_ms: float = 200.0
    duplicate_window_ms: float = 250.0
    echo_tail_ms: float = 250.0
    outbound_dtmf_level_dbm0: float = -10.0
    outbound_dtmf_gap_ms: float = 60.0


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InboundFrame:
    """One 20 ms frame of decoded inbound audio (8 kHz int16); silence when ``lost``."""

    samples: npt.NDArray[np.int16]
    lost: bool


@dataclass(frozen=True, slots=True)
class LegStats:
    """Counters since the leg was created (``rtp`` holds the session's own counters)."""

    rtp: RtpSessionStats
    frames: int
    lost_frames: int
    dropped_frames: int
    rejected: int
    bad_telephone_events: int
    bad_info_bodies: int
    echo_suppressed: int
    presses: dict[DtmfSource, int]


# -- the leg ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _OutboundKey:
    """A queued outbound key: an RFC 4733 packet train or in-band samples, consumed per tick."""

    key: str
    duration_ms: float
    packets: list[TelephoneEventPacket]
    samples: npt.NDArray[np.int16] | None
    start_timestamp: int | None = None
    tick: int = 0


class MediaLeg:
    """Sans-IO media of one call; see the module docstring."""

    def __init__(
        self,
        media: LegMedia,
        *,
        settings: LegSettings | None = None,
        label: str = "",
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings if settings is not None else LegSettings()
        self.label = label
        self._session = RtpSession(
            audio_payload_type=media.payload_type,
            event_payload_type=media.telephone_event_payload_type,
            remote=media.remote,
            rng=rng,
        )
        self._arbiter = DtmfArbiter(
            telephone_event_negotiated=media.telephone_event_payload_type is not None,
            inband_hold_ms=self.settings.inband_hold_ms,
            duplicate_window_ms=self.settings.duplicate_window_ms,
            allow_abcd=self.settings.allow_abcd,
        )
        self._info = SipInfoDtmfReceiver()
        self._echo_guard = OutboundToneGuard(tail_ms=self.settings.echo_tail_ms)
        self._media = media
        self._events = TelephoneEventReceiver(media.telephone_event_clock)
        self._presses: list[DtmfPress] = []
        self._frames: deque[bytes | None] = deque()  # codes; decoded when pulled
        self._pending_out = np.zeros(0, dtype=np.int16)
        self._outbound_keys: deque[_OutboundKey] = deque()
        self._echo_keys: set[str] = set()
        self._counts: Counter[str] = Counter()
        self._press_counts: Counter[DtmfSource] = Counter()

    # -- configuration ---------------------------------------------------------------------------

    @property
    def media(self) -> LegMedia:
        """The media configuration in force."""
        return self._media

    @property
    def remote(self) -> Address | None:
        """Where to send datagrams: the latched address, else the one from the SDP."""
        return self._session.remote

    @property
    def ssrc(self) -> int:
        """Our outbound SSRC."""
        return self._session.ssrc

    def update_media(self, media: LegMedia, now: float) -> None:
        """Apply a re-INVITE's offer/answer: codec and payload types, telephone-event, hold.

        The RFC 4733 receiver starts afresh and the arbiter follows telephone-event coming or
        going. Audio already in the jitter buffer (at most its depth, <= 100 ms) is decoded
        with the new law, because buffered frames do not remember their payload type.
        """
        old = self._media
        self._media = media
        self._session.renegotiate(
            audio_payload_type=media.payload_type,
            event_payload_type=media.telephone_event_payload_type,
            remote=media.remote,
        )
        if media.telephone_event_clock != old.telephone_event_clock:
            self._events = TelephoneEventReceiver(media.telephone_event_clock)
        else:
            self._events.reset()
        negotiated = media.telephone_event_payload_type is not None
        if negotiated != (old.telephone_event_payload_type is not None):
            self._accept(self._arbiter.renegotiate(negotiated, now * 1000))
        if media.codec is not old.codec:
            self._pending_out = self._pending_out[:0]
        if not negotiated:
            self._outbound_keys = deque(self._without_telephone_event(self._outbound_keys))
        logger.info("%s media updated: %s", self.label, media)

    def _without_telephone_event(self, queue: deque[_OutboundKey]) -> list[_OutboundKey]:
        # Keys not yet begun go in-band instead; a train already under way cannot be finished
        # without its payload type, and half a key in-band would be a different press.
        kept = []
        for queued in queue:
            if queued.samples is not None:
                kept.append(queued)
            elif queued.start_timestamp is None:
                queued.samples = self._inband_samples(queued.key, queued.duration_ms)
                queued.packets = []
                kept.append(queued)
            else:
                logger.info(
                    "%s outbound RFC 4733 %r cut short by re-INVITE", self.label, queued.key
                )
        return kept

    # -- inbound ---------------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        """Take one datagram from the media socket; bad ones are counted, never raised."""
        red = self._media.red_payload_type
        if red is not None and len(data) > 1 and data[1] & 0x7F == red:
            self._receive_red(data, addr, now)
            return
        for event in self._session.receive_datagram(data, addr, now):
            if isinstance(event, TelephoneEventReceived):
                packet = event.packet
                self._receive_event_payload(packet, packet.timestamp, packet.payload, now)
            elif isinstance(event, PacketRejected):
                self._counts["rejected"] += 1
                logger.debug(
                    "%s RTP dropped (%s): %s", self.label, event.reason.value, event.detail
                )

    def _receive_red(self, data: bytes, addr: Address, now: float) -> None:
        # The session knows only the audio and telephone-event payload types, so RED is taken
        # here, from the remote the session trusts (any source before it has latched).
        session = self._session
        if session.latched and (addr[0], addr[1]) != session.remote:
            self._counts["rejected"] += 1
            return
        try:
            packet = parse_rtp(data)
            blocks = self._red_blocks(packet)
        except (RtpParseError, DtmfParseError) as error:
            self._counts["rejected"] += 1
            logger.debug("%s RED packet dropped: %s", self.label, error)
            return
        for timestamp, payload in blocks:
            self._receive_event_payload(packet, timestamp, payload, now)

    def _red_blocks(self, packet: RtpPacket) -> list[tuple[int, bytes]]:
        event_pt = self._media.telephone_event_payload_type
        if event_pt is None:
            return []
        return extract_telephone_events(
            packet.payload_type,
            packet.payload,
            packet.timestamp,
            telephone_event_pt=event_pt,
            red_pt=self._media.red_payload_type,
        )

    def _receive_event_payload(
        self, packet: RtpPacket, timestamp: int, payload: bytes, now: float
    ) -> None:
        try:
            reports = self._events.receive(
                ssrc=packet.ssrc,
                seq=packet.sequence,
                timestamp=timestamp,
                marker=packet.marker and timestamp == packet.timestamp,
                payload=payload,
                now_ms=now * 1000,
            )
        except DtmfParseError as error:
            self._counts["bad_telephone_events"] += 1
            logger.info("%s telephone-event packet ignored: %s", self.label, error)
            return
        self._feed(reports, now)

    def pull_frame(self, now: float) -> InboundFrame:
        """The next 20 ms of inbound audio; call once per tick. Concealed audio is silence with
        ``lost=True`` (also before the first packet)."""
        payload = self.pull_payload(now)
        if payload is None:
            return InboundFrame(_SILENCE, True)
        return InboundFrame(self._media.codec.decode_codes(payload), False)

    def pull_payload(self, now: float) -> bytes | None:
        """Like :meth:`pull_frame`, but the frame's G.711 codes (None when lost), so a caller
        serving many legs can decode all of them in one call (law: :attr:`media`)."""
        frames = self._frames
        frames.extend(self._session.pop_payloads(now))
        while len(frames) > _MAX_QUEUED_FRAMES:
            frames.popleft()  # never decoded: a stalled tick loop must not cost more later
            self._counts["dropped_frames"] += 1
        payload = frames.popleft() if frames else None
        self._counts["frames"] += 1
        if payload is None:
            self._counts["lost_frames"] += 1
        return payload

    def receive_info(
        self, call_id: str, cseq: int, content_type: str, body: str | bytes, now: float
    ) -> bool:
        """Take a SIP INFO body; True if it is a DTMF body we understood (answer 200), False
        otherwise (answer 415 for a foreign content type, 400 for a bad DTMF body)."""
        try:
            reports = self._info.receive(call_id, cseq, content_type, body, now * 1000)
        except DtmfParseError as error:
            self._counts["bad_info_bodies"] += 1
            logger.info("%s INFO body not used: %s", self.label, error)
            return False
        self._feed(reports, now)
        return True

    def feed_inband(self, events: list[KeyDown | KeyUp], now: float) -> None:
        """Take this leg's results from the in-band detector; our own echo is dropped here."""
        passed: list[KeyDown | KeyUp] = []
        for event in events:
            if isinstance(event, KeyDown) and self._echo_guard.is_echo(
                event.key, event.onset_ms, event.at_ms
            ):
                self._echo_keys.add(event.key)
                self._counts["echo_suppressed"] += 1
                logger.info("%s in-band %r ignored: echo of our own audio", self.label, event.key)
            elif isinstance(event, KeyUp) and event.key in self._echo_keys:
                self._echo_keys.discard(event.key)
            else:
                passed.append(event)
        self._feed(passed, now)

    # -- key presses -----------------------------------------------------------------------------

    def poll(self, now: float) -> None:
        """Run the DTMF timers (RFC 4733 end timeout, held in-band presses)."""
        now_ms = now * 1000
        self._feed(self._events.poll(now_ms), now)
        self._accept(self._arbiter.poll(now_ms))

    def next_deadline(self) -> float | None:
        """When :meth:`poll` must next run (seconds), or None when no DTMF timer is pending."""
        deadlines = [
            deadline
            for deadline in (self._events.next_deadline(), self._arbiter.next_deadline())
            if deadline is not None
        ]
        return min(deadlines) / 1000 if deadlines else None

    def presses(self) -> list[DtmfPress]:
        """Accepted key presses since the last call, in order (each is returned once)."""
        presses, self._presses = self._presses, []
        return presses

    def _feed(self, reports: Sequence[KeyDown | KeyUp], now: float) -> None:
        for report in reports:
            self._accept(self._arbiter.feed(report, now * 1000))

    def _accept(self, presses: list[DtmfPress]) -> None:
        for press in presses:
            self._press_counts[press.source] += 1
        self._presses.extend(presses)

    # -- outbound --------------------------------------------------------------------------------

    def send_audio(self, samples: npt.ArrayLike, now: float) -> list[bytes]:
        """Encode one 20 ms frame (int16[160]) and return the datagrams to send now.

        A queued key replaces the frame (see the module docstring). On hold nothing is sent, but
        the RTP clock advances so the stream resumes at the right timestamp.
        """
        frame = np.asarray(samples)
        if frame.dtype != np.int16 or frame.shape != (FRAME_SAMPLES,):
            raise MediaError(
                f"send_audio expects int16[{FRAME_SAMPLES}], got {frame.dtype}{list(frame.shape)}"
            )
        if not self._media.sending:
            self._session.advance(FRAME_SAMPLES)
            return []
        if frame is _SILENCE and not self._outbound_keys and not self._pending_out.size:
            silence = self._silence_packet()
            if silence is not None:
                return [self._session.build_audio(silence, FRAME_SAMPLES)]
        if self._outbound_keys:
            queued = self._outbound_keys[0]
            if queued.samples is None:
                return self._send_event_tick(queued)
            frame = self._take_inband(queued)
        self._echo_guard.record(frame, now * 1000)
        self._pending_out = np.concatenate([self._pending_out, frame])
        return self._flush_audio()

    def send_silence(self, now: float) -> list[bytes]:
        """Send a frame of digital silence (keeps NAT bindings and the peer's buffer fed)."""
        if self._media.sending and not self._outbound_keys and not self._pending_out.size:
            # What send_audio does with _SILENCE in this state, without its checks (every call
            # that plays nothing comes here every tick).
            silence = self._silence_packet()
            if silence is not None:
                return [self._session.build_audio(silence, FRAME_SAMPLES)]
        return self.send_audio(_SILENCE, now)

    def _silence_packet(self) -> bytes | None:
        """The encoded payload of one 20 ms packet of silence, or None unless ptime is 20.

        Silence is what most calls send most of the time; its payload is the same every tick,
        and it cannot carry a tone pair, so the echo guard has nothing to record.
        """
        if self._media.ptime != FRAME_MS:
            return None
        return _silence_payload(self._media.codec)

    def send_dtmf(self, key: str, duration_ms: float, now: float) -> None:
        """Queue ``key`` for sending over the next ticks of :meth:`send_audio`.

        RFC 4733 when telephone-event was negotiated, else the tone pair in the audio. Raises
        ``DtmfParseError`` for a character that is not a key, ``MediaError`` for a bad duration.
        """
        event_pt = self._media.telephone_event_payload_type
        if event_pt is not None:
            sender = TelephoneEventSender(event_pt, self._media.telephone_event_clock, FRAME_MS)
            packets = sender.packets_for_key(key, duration_ms)
            self._outbound_keys.append(_OutboundKey(key.upper(), duration_ms, packets, None))
        else:
            tone = self._inband_samples(key, duration_ms)
            self._outbound_keys.append(_OutboundKey(key.upper(), duration_ms, [], tone))
        logger.debug("%s queued outbound DTMF %r at %.3f", self.label, key, now)

    def _inband_samples(self, key: str, duration_ms: float) -> npt.NDArray[np.int16]:
        try:
            tone = generate_tone(
                key, duration_ms, level_dbm0=self.settings.outbound_dtmf_level_dbm0
            )
        except MediaError as error:
            raise DtmfParseError(str(error)) from None
        gap = np.zeros(round(self.settings.outbound_dtmf_gap_ms * SAMPLE_RATE / 1000), np.int16)
        samples = np.concatenate([tone, gap])
        padded: npt.NDArray[np.int16] = np.concatenate(
            [samples, np.zeros(-samples.size % FRAME_SAMPLES, dtype=np.int16)]
        )
        return padded

    def _take_inband(self, queued: _OutboundKey) -> npt.NDArray[np.int16]:
        assert queued.samples is not None
        start = queued.tick * FRAME_SAMPLES
        frame = queued.samples[start : start + FRAME_SAMPLES]
        queued.tick += 1
        if (queued.tick * FRAME_SAMPLES) >= queued.samples.size:
            self._outbound_keys.popleft()
        return frame

    def _send_event_tick(self, queued: _OutboundKey) -> list[bytes]:
        session = self._session
        if queued.start_timestamp is None:
            # Audio still waiting for a full ptime is dropped: the event starts now.
            session.advance(self._pending_out.size)
            self._pending_out = self._pending_out[:0]
            queued.start_timestamp = session.next_timestamp
        window_end = (queued.tick + 1) * FRAME_MS
        due = [packet for packet in queued.packets if packet.send_offset_ms < window_end]
        queued.packets = queued.packets[len(due) :]
        queued.tick += 1
        datagrams = [
            session.build_event_packet(
                packet.payload,
                timestamp=queued.start_timestamp + packet.timestamp_offset,
                marker=packet.marker,
            )
            for packet in due
        ]
        session.advance(FRAME_SAMPLES)
        if not queued.packets:
            self._outbound_keys.popleft()
        return datagrams

    def _flush_audio(self) -> list[bytes]:
        per_packet = self._media.ptime * SAMPLE_RATE // 1000
        datagrams = []
        while self._pending_out.size >= per_packet:
            chunk, self._pending_out = (
                self._pending_out[:per_packet],
                self._pending_out[per_packet:],
            )
            payload = self._media.codec.encode_samples(chunk).tobytes()
            datagrams.append(self._session.build_audio(payload, per_packet))
        return datagrams

    # -- statistics ------------------------------------------------------------------------------

    @property
    def stats(self) -> LegStats:
        """A snapshot of the counters."""
        counts = self._counts
        return LegStats(
            rtp=self._session.stats,
            frames=counts["frames"],
            lost_frames=counts["lost_frames"],
            dropped_frames=counts["dropped_frames"],
            rejected=counts["rejected"],
            bad_telephone_events=counts["bad_telephone_events"],
            bad_info_bodies=counts["bad_info_bodies"],
            echo_suppressed=counts["echo_suppressed"],
            presses=dict(self._press_counts),
        )
