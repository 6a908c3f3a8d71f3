"""One SIP call's media on the line: RTP in → decoded 20 ms frames and key presses; frames out.

The SIP line drives every call's :class:`CallMedia` from its single media tick, and runs one
:class:`InbandDetectorPool` for all calls, so in-band DTMF costs one batched numpy call per tick.
Key reports from RFC 4733, SIP INFO and in-band audio all go through the call's
:class:`~voxflow.media.dtmf.DtmfArbiter`, which decides what counts as one press.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from voxflow.errors import DtmfParseError, MediaError
from voxflow.lines.rtp_transport import RtpTransport
from voxflow.media.dtmf import (
    BatchDtmfDetector,
    DtmfArbiter,
    DtmfPress,
    KeyDown,
    KeyUp,
    SipInfoDtmfReceiver,
    TelephoneEventPacket,
    TelephoneEventReceiver,
    TelephoneEventSender,
)
from voxflow.media.g711 import Codec
from voxflow.rtp.events import PacketRejected, RtpEvent, TelephoneEventReceived
from voxflow.sip.sdp import NegotiatedMedia

log = logging.getLogger(__name__)

FRAME_SAMPLES = 160
FRAME_MS = 20.0
Int16Array = npt.NDArray[np.int16]
AudioSource = Callable[[], "Int16Array | None"]
"""Called once per 20 ms tick: 160 int16 samples to send, or None to send nothing (silence)."""

_SILENCE = np.zeros(FRAME_SAMPLES, dtype=np.int16)


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """One inbound 20 ms frame; ``lost`` frames carry zeros (nothing arrived in time)."""

    samples: Int16Array
    lost: bool
    at: float


@dataclass(slots=True)
class _OutgoingPress:
    """An RFC 4733 press being sent: its packets, how many went out, ticks since it started."""

    packets: list[TelephoneEventPacket]
    sent: int = 0
    ticks: int = 0
    start_timestamp: int = 0


class CallMedia:
    """The media of one answered call; every method is called from the line's event loop."""

    def __init__(
        self,
        transport: RtpTransport,
        media: NegotiatedMedia,
        on_presses: Callable[[list[DtmfPress]], None],
    ) -> None:
        self.transport = transport
        self.media = media
        self.audio_source: AudioSource | None = None
        self.detector_slot: int | None = None
        self._on_presses = on_presses
        self._info = SipInfoDtmfReceiver()
        self._outgoing_presses: deque[_OutgoingPress] = deque()
        self._arbiter = DtmfArbiter(telephone_event_negotiated=media.telephone_event is not None)
        self.rejected = 0
        self._apply(media)

    def _apply(self, media: NegotiatedMedia) -> None:
        self.media = media
        self.codec = Codec.from_name(media.codec.name)
        event = media.telephone_event
        self._events_in = TelephoneEventReceiver(event.clock_rate if event else 8000)
        self._events_out = TelephoneEventSender(event.payload_type) if event else None
        self.transport.session.renegotiate(
            audio_payload_type=media.codec.payload_type,
            event_payload_type=event.payload_type if event else None,
            remote=(media.remote_address, media.remote_port),
        )

    def update(self, media: NegotiatedMedia, now: float) -> None:
        """Follow a re-INVITE (codec, telephone-event or address change)."""
        self._apply(media)
        self._deliver(self._arbiter.renegotiate(media.telephone_event is not None, now * 1000))

    # -- inbound -------------------------------------------------------------------------------

    def on_rtp_event(self, event: RtpEvent) -> None:
        """Sink for the RTP transport: telephone events go to the RFC 4733 receiver."""
        if isinstance(event, PacketRejected):
            self.rejected += 1
            log.debug("RTP packet dropped (%s): %s", event.reason.value, event.detail)
            return
        if not isinstance(event, TelephoneEventReceived):
            return
        packet = event.packet
        try:
            reports = self._events_in.receive(
                ssrc=packet.ssrc,
                seq=packet.sequence,
                timestamp=packet.timestamp,
                marker=packet.marker,
                payload=packet.payload,
                now_ms=event.arrival * 1000,
            )
        except DtmfParseError as error:
            log.info("malformed telephone-event packet dropped: %s", error)
            return
        self.feed(reports, event.arrival)

    def receive_info(
        self, call_id: str, cseq: int, content_type: str, body: bytes, now: float
    ) -> None:
        """A DTMF INFO request of this call (already answered by the user agent)."""
        try:
            reports = self._info.receive(call_id, cseq, content_type, body, now * 1000)
        except DtmfParseError as error:
            log.info("INFO DTMF body not understood: %s", error)
            return
        self.feed(reports, now)

    def feed(self, reports: list[KeyDown | KeyUp], now: float) -> None:
        """Key reports from any source, through the arbiter."""
        for report in reports:
            self._deliver(self._arbiter.feed(report, now * 1000))

    def pop_frames(self, now: float) -> list[DecodedFrame]:
        """Inbound frames due by ``now``, decoded."""
        frames = []
        for frame in self.transport.session.pop_frames(now):
            if frame.payload is None:
                frames.append(DecodedFrame(_SILENCE, True, now))
                continue
            samples = self.codec.decode_codes(frame.payload)
            if samples.size != FRAME_SAMPLES:
                samples = np.resize(samples, FRAME_SAMPLES)
            frames.append(DecodedFrame(samples, False, now))
        return frames

    def poll(self, now: float) -> None:
        """Timers of the RFC 4733 receiver and the arbiter."""
        self.feed(list(self._events_in.poll(now * 1000)), now)
        self._deliver(self._arbiter.poll(now * 1000))

    def _deliver(self, presses: list[DtmfPress]) -> None:
        if presses:
            self._on_presses(presses)

    # -- outbound ------------------------------------------------------------------------------

    @property
    def can_send_rfc4733(self) -> bool:
        """Whether telephone-event was negotiated."""
        return self._events_out is not None

    def queue_dtmf(self, key: str, duration_ms: float) -> None:
        """Queue one RFC 4733 press; MediaError when none was negotiated or ``key`` is bad."""
        if self._events_out is None:
            raise MediaError("telephone-event was not negotiated for this call")
        self._outgoing_presses.append(
            _OutgoingPress(self._events_out.packets_for_key(key, duration_ms))
        )

    def send_tick(self) -> None:
        """Send this tick's outbound packet: a queued key press, else the audio source's frame."""
        session = self.transport.session
        if not self.media.we_send or session.remote is None:
            session.advance(FRAME_SAMPLES)
            return
        if self._outgoing_presses:
            self._send_event_tick()
            session.advance(FRAME_SAMPLES)
            return
        samples = self._next_audio()
        if samples is None:
            session.advance(FRAME_SAMPLES)
            return
        payload = self.codec.encode_samples(samples).tobytes()
        self.transport.send(session.build_audio(payload, FRAME_SAMPLES))

    def _send_event_tick(self) -> None:
        press = self._outgoing_presses[0]
        session = self.transport.session
        if press.ticks == 0:
            press.start_timestamp = session.next_timestamp
        while press.sent < len(press.packets):
            packet = press.packets[press.sent]
            if packet.send_offset_ms >= (press.ticks + 1) * FRAME_MS:
                break
            self.transport.send(
                session.build_event_packet(
                    packet.payload,
                    timestamp=press.start_timestamp + packet.timestamp_offset,
                    marker=packet.marker,
                )
            )
            press.sent += 1
        press.ticks += 1
        if press.sent == len(press.packets):
            self._outgoing_presses.popleft()

    def _next_audio(self) -> Int16Array | None:
        source = self.audio_source
        if source is None:
            return None
        try:
            frame = source()
        except Exception:  # the engine's source must not stop this call's media or others'
            log.exception("audio source failed; the call continues without it")
            self.audio_source = None
            return None
        if frame is None:
            return None
        samples = np.asarray(frame)
        if samples.shape != (FRAME_SAMPLES,):
            log.warning("audio source returned shape %s, expected (160,); dropped", samples.shape)
            return None
        return samples.astype(np.int16, copy=False)


class InbandDetectorPool:
    """One batched in-band DTMF detector for all calls of the line."""

    def __init__(self) -> None:
        self._detector = BatchDtmfDetector()
        self._calls: dict[int, CallMedia] = {}

    def add(self, media: CallMedia) -> None:
        """Give ``media`` a detector slot."""
        media.detector_slot = slot = self._detector.add_channel()
        self._calls[slot] = media

    def remove(self, media: CallMedia) -> None:
        """Free the slot of ``media``."""
        slot, media.detector_slot = media.detector_slot, None
        if slot is not None and self._calls.pop(slot, None) is not None:
            self._detector.remove_channel(slot)

    def process(self, frames: dict[int, list[DecodedFrame]], now: float) -> None:
        """Run the detector over this tick's frames (slot → frames) and feed every arbiter.

        A call with fewer frames than another this tick gets lost-flagged padding, which the
        detector neither counts as tone nor as a gap.
        """
        rounds = max((len(f) for f in frames.values()), default=0)
        if rounds == 0 or self._detector.channels == 0:
            return
        for round_index in range(rounds):
            batch = np.zeros((self._detector.channels, FRAME_SAMPLES), dtype=np.int16)
            lost = np.ones(self._detector.channels, dtype=bool)
            for slot, slot_frames in frames.items():
                if round_index < len(slot_frames):
                    frame = slot_frames[round_index]
                    batch[slot] = frame.samples
                    lost[slot] = frame.lost
            at_ms = now * 1000 + (round_index - rounds + 1) * FRAME_MS
            for slot, event in self._detector.process(batch, at_ms, lost):
                media = self._calls.get(slot)
                if media is not None:
                    media.feed([event], now)
