"""RFC 4733 telephone-events: payload codec, RED unwrapping, a tolerant receiver and a sender.

Everything here is sans-IO: the RTP layer parses headers and hands over the fields; time comes in
as ``now_ms``. RTP timestamps and durations are in units of the *negotiated* telephone-event
clock (``a=rtpmap:<pt> telephone-event/<clock>``), never an assumed 8000.

Receiver rules (why each exists is noted where it is implemented):

* A press is identified by (SSRC, event-start timestamp after segment stitching, event code).
* ``KeyDown`` is emitted on the first packet seen of a new press, whatever it is (update or END,
  marker or not), so lost first packets and missing markers cost nothing.
* Later packets of a press only extend its duration; END copies and stragglers are dropped.
* An END-only packet just after a closed press of the same code is a re-stamped copy of that
  press only if its sequence number fits in the run of END copies already seen; otherwise it is
  a fast repeat of the key whose first packets were lost.
* A press ends on its first END packet, when another event starts, or by timeout.
* Hook flash (event 16) and codes above 16 are never keys: they are logged and ignored.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from dataclasses import dataclass

from voxflow.errors import DtmfParseError, MediaError
from voxflow.media.dtmf.events import DtmfSource, KeyDown, KeyUp
from voxflow.media.dtmf.keys import ALL_KEYS, EVENT_CODES, FLASH_EVENT_CODE, KEY_BY_EVENT_CODE
from voxflow.media.serial import seq_diff, ts_diff

logger = logging.getLogger(__name__)

_BLOCK = struct.Struct("!BBH")
_END_BIT = 0x80
_VOLUME_MASK = 0x3F
#: Largest value of the 16-bit duration field; longer events are sent as segments.
MAX_SEGMENT_DURATION = 0xFFFF
_DURATION_MODULUS = 0x10000
#: Largest timestamp step of an update packet still taken as a re-stamped part of the press
#: before it: below the shortest pause that separates two presses of one key.
_RESTAMPED_UPDATE_GAP_MS = 30.0


# --- payload codec -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TelephoneEventBlock:
    """One 4-byte telephone-event block.

    ``volume`` is the attenuation in dB below 0 dBm0 (0..63); ``duration`` is in RTP clock units
    counted from the event (segment) start.
    """

    event: int
    end: bool
    volume: int
    duration: int


def parse_telephone_event_payload(payload: bytes) -> list[TelephoneEventBlock]:
    """Split a telephone-event payload into its 4-byte blocks (RFC 4733 §2.3).

    Raises :class:`~voxflow.errors.DtmfParseError` unless the payload is a non-empty multiple of
    four bytes. The reserved bit is ignored as the RFC requires.
    """
    if not payload or len(payload) % _BLOCK.size:
        raise DtmfParseError(
            f"telephone-event payload is {len(payload)} bytes; expected a non-empty multiple of "
            f"{_BLOCK.size} (event, E/R/volume, 16-bit duration per block)"
        )
    blocks = []
    for event, flags, duration in _BLOCK.iter_unpack(payload):
        blocks.append(
            TelephoneEventBlock(
                event=event,
                end=bool(flags & _END_BIT),
                volume=flags & _VOLUME_MASK,
                duration=duration,
            )
        )
    return blocks


def build_telephone_event_payload(blocks: list[TelephoneEventBlock]) -> bytes:
    """Serialise blocks into a telephone-event payload; raise ``DtmfParseError`` on bad fields."""
    parts = []
    for block in blocks:
        if not 0 <= block.event <= 0xFF:
            raise DtmfParseError(f"telephone-event code {block.event} does not fit in 8 bits")
        if not 0 <= block.volume <= _VOLUME_MASK:
            raise DtmfParseError(f"telephone-event volume {block.volume} is outside 0..63")
        if not 0 <= block.duration <= MAX_SEGMENT_DURATION:
            raise DtmfParseError(f"telephone-event duration {block.duration} is outside 0..65535")
        flags = (_END_BIT if block.end else 0) | block.volume
        parts.append(_BLOCK.pack(block.event, flags, block.duration))
    return b"".join(parts)


# --- RFC 2198 redundancy -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RedBlock:
    """One block of an RFC 2198 (``audio/red``) payload, with its own RTP timestamp."""

    payload_type: int
    timestamp: int
    data: bytes


def unwrap_red(payload: bytes, timestamp: int) -> list[RedBlock]:
    """Split an RFC 2198 payload into its blocks, oldest (redundant) first, primary last.

    ``timestamp`` is the RTP timestamp of the packet; redundant blocks get theirs from the
    14-bit offset in their header. Raises ``DtmfParseError`` on a truncated payload.
    """
    headers: list[tuple[int, int, int | None]] = []
    pos = 0
    while True:
        if pos >= len(payload):
            raise DtmfParseError(f"RED payload ends inside its block headers at byte {pos}")
        first = payload[pos]
        if not first & 0x80:
            headers.append((first & 0x7F, 0, None))
            pos += 1
            break
        if pos + 4 > len(payload):
            raise DtmfParseError(f"RED payload has a truncated 4-byte block header at byte {pos}")
        word = int.from_bytes(payload[pos : pos + 4], "big")
        headers.append(((word >> 24) & 0x7F, (word >> 10) & 0x3FFF, word & 0x3FF))
        pos += 4
    blocks = []
    for payload_type, offset, length in headers:
        end = len(payload) if length is None else pos + length
        if end > len(payload):
            raise DtmfParseError(
                f"RED block of payload type {payload_type} claims {length} bytes but only "
                f"{len(payload) - pos} remain"
            )
        block_ts = (timestamp - offset) & 0xFFFFFFFF
        blocks.append(RedBlock(payload_type, block_ts, payload[pos:end]))
        pos = end
    return blocks


def extract_telephone_events(
    payload_type: int,
    payload: bytes,
    timestamp: int,
    *,
    telephone_event_pt: int,
    red_pt: int | None = None,
) -> list[tuple[int, bytes]]:
    """Return ``(timestamp, telephone-event payload)`` pairs carried by one RTP packet.

    Both payload types come from the negotiated SDP. A packet of ``telephone_event_pt`` yields
    itself; a packet of ``red_pt`` yields its telephone-event blocks, oldest first; anything
    else yields nothing.
    """
    if payload_type == telephone_event_pt:
        return [(timestamp, payload)]
    if red_pt is not None and payload_type == red_pt:
        return [
            (block.timestamp, block.data)
            for block in unwrap_red(payload, timestamp)
            if block.payload_type == telephone_event_pt and block.data
        ]
    return []


# --- receiver ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Press:
    """What the receiver knows about one press; positions are clock units after ``start_ts``."""

    code: int
    start_ts: int
    segment_offset: int
    segment_duration: int
    duration: int
    last_packet_ms: float
    last_seq: int
    #: Lowest and highest sequence numbers of the END packets seen (the sender's END copies
    #: are consecutive, so together they bound where a further copy can sit).
    end_seqs: tuple[int, int] | None = None
    ended: bool = False

    def note_packet(self, seq: int, end: bool, now_ms: float) -> None:
        """Record one more packet of this press."""
        self.last_packet_ms = max(self.last_packet_ms, now_ms)
        if seq_diff(seq, self.last_seq) > 0:
            self.last_seq = seq
        if end:
            if self.end_seqs is None:
                self.end_seqs = (seq, seq)
            else:
                low, high = self.end_seqs
                low = seq if seq_diff(seq, low) < 0 else low
                high = seq if seq_diff(seq, high) > 0 else high
                self.end_seqs = (low, high)

    @property
    def span_end(self) -> int:
        return max(self.duration, self.segment_offset + self.segment_duration)


class TelephoneEventReceiver:
    """Turns telephone-event packets of one RTP stream into exactly one KeyDown/KeyUp per press.

    ``clock_rate`` is the negotiated telephone-event clock. ``key_filter`` limits the reported keys
    (A-D are reported by default; the arbiter decides). ``end_timeout_ms`` ends a press whose END
    packets never arrive. ``restamp_guard_ms`` bounds how far after a press an END-only copy of
    the same code is still taken for that press (middleboxes that re-stamp END packets).
    ``max_misorder`` is how many sequence numbers behind the newest a packet may be before it is
    dropped as a straggler; a new event starting before the latest press (within
    ``stale_window_ms``) is a reordered leftover and is dropped too, so output stays in order.
    ``history`` is how many ended presses are remembered to recognise their late copies.
    ``end_repeats`` is how many END copies a sender transmits (three per RFC 4733 §2.5.1.4).
    """

    def __init__(
        self,
        clock_rate: int = 8000,
        *,
        key_filter: frozenset[str] = ALL_KEYS,
        end_timeout_ms: float = 150.0,
        restamp_guard_ms: float = 100.0,
        max_misorder: int = 100,
        stale_window_ms: float = 5000.0,
        history: int = 16,
        end_repeats: int = 3,
    ) -> None:
        if clock_rate <= 0:
            raise MediaError(f"telephone-event clock rate must be positive, got {clock_rate}")
        unknown = set(key_filter) - ALL_KEYS
        if unknown:
            raise MediaError(f"key_filter holds non-DTMF keys {sorted(unknown)}")
        self.clock_rate = clock_rate
        self.key_filter = key_filter
        self.end_timeout_ms = end_timeout_ms
        self.restamp_guard_ms = restamp_guard_ms
        self.max_misorder = max_misorder
        self.stale_window_ms = stale_window_ms
        self._history = history
        self.end_repeats = end_repeats
        self.reset()

    def reset(self) -> None:
        """Forget all stream state (re-INVITE, new media session)."""
        self._ssrc: int | None = None
        self._retired_ssrcs: deque[int] = deque(maxlen=4)
        self._newest_seq: int | None = None
        self._open: _Press | None = None
        self._closed: deque[_Press] = deque(maxlen=self._history)

    # -- public API -----------------------------------------------------------------------------

    def receive(
        self,
        *,
        ssrc: int,
        seq: int,
        timestamp: int,
        marker: bool,
        payload: bytes,
        now_ms: float,
    ) -> list[KeyDown | KeyUp]:
        """Process one telephone-event packet; return the key events it causes.

        Raises ``DtmfParseError`` if the payload is malformed (state is left untouched).
        """
        blocks = parse_telephone_event_payload(payload)
        events: list[KeyDown | KeyUp] = list(self.poll(now_ms))
        if ssrc in self._retired_ssrcs:
            logger.debug("telephone-event from retired SSRC %#x dropped", ssrc)
            return events
        if self._ssrc != ssrc:
            events.extend(self._switch_ssrc(ssrc, now_ms))
        if self._is_straggler(seq):
            logger.debug("telephone-event seq %d is too far behind; dropped", seq)
            return events
        # RFC 4733 §2.5.1.5: packed events follow each other, each starting where the
        # previous one's duration ends; the packet timestamp is the first one's start.
        block_ts = timestamp
        for index, block in enumerate(blocks):
            events.extend(
                self._receive_block(block, block_ts, seq, marker and index == 0, now_ms)
            )
            block_ts = (block_ts + block.duration) & 0xFFFFFFFF
        return events

    def receive_red(
        self,
        *,
        ssrc: int,
        seq: int,
        timestamp: int,
        marker: bool,
        payload: bytes,
        telephone_event_pt: int,
        now_ms: float,
    ) -> list[KeyDown | KeyUp]:
        """Process an RFC 2198 packet whose blocks may carry telephone-events."""
        events: list[KeyDown | KeyUp] = []
        for block in unwrap_red(payload, timestamp):
            if block.payload_type != telephone_event_pt or not block.data:
                continue
            events.extend(
                self.receive(
                    ssrc=ssrc,
                    seq=seq,
                    timestamp=block.timestamp,
                    marker=marker and block.timestamp == timestamp,
                    payload=block.data,
                    now_ms=now_ms,
                )
            )
        return events

    def poll(self, now_ms: float) -> list[KeyUp]:
        """End a press whose packets stopped arriving; call at :meth:`next_deadline`."""
        deadline = self.next_deadline()
        if deadline is None or now_ms < deadline:
            return []
        assert self._open is not None
        logger.debug("telephone-event %d ended by timeout", self._open.code)
        return self._close_open(now_ms)

    def next_deadline(self) -> float | None:
        """When :meth:`poll` must next be called (ms), or ``None`` when no press is open."""
        if self._open is None:
            return None
        return self._open.last_packet_ms + self.end_timeout_ms

    # -- internals ------------------------------------------------------------------------------

    def _switch_ssrc(self, ssrc: int, now_ms: float) -> list[KeyDown | KeyUp]:
        events: list[KeyDown | KeyUp] = list(self._close_open(now_ms))
        if self._ssrc is not None:
            logger.info("telephone-event SSRC changed %#x -> %#x; state reset", self._ssrc, ssrc)
            self._retired_ssrcs.append(self._ssrc)
        self._ssrc = ssrc
        self._newest_seq = None
        self._closed.clear()
        return events

    def _is_straggler(self, seq: int) -> bool:
        if self._newest_seq is None or seq_diff(seq, self._newest_seq) > 0:
            self._newest_seq = seq
            return False
        return seq_diff(seq, self._newest_seq) < -self.max_misorder

    def _samples(self, ms: float) -> int:
        return round(ms * self.clock_rate / 1000)

    def _ms(self, samples: int) -> float:
        return samples * 1000 / self.clock_rate

    def _receive_block(
        self, block: TelephoneEventBlock, ts: int, seq: int, marker: bool, now_ms: float
    ) -> list[KeyDown | KeyUp]:
        if block.event > FLASH_EVENT_CODE:
            logger.debug("telephone-event code %d is not a DTMF key; ignored", block.event)
            return []
        press = self._find_press(block, ts, seq, marker, now_ms)
        if press is not None:
            if press.ended:
                press.note_packet(seq, block.end, now_ms)
                return []
            self._extend(press, block, ts, seq, now_ms)
            return list(self._close_open(now_ms)) if block.end else []
        if self._is_older_than_latest(ts, now_ms):
            logger.debug("telephone-event %d at ts %d predates the latest press", block.event, ts)
            return []
        events: list[KeyDown | KeyUp] = list(self._close_open(now_ms))
        self._open = _Press(
            code=block.event,
            start_ts=ts,
            segment_offset=0,
            segment_duration=block.duration,
            duration=block.duration,
            last_packet_ms=now_ms,
            last_seq=seq,
        )
        self._open.note_packet(seq, block.end, now_ms)
        key = self._key(block.event)
        if key is not None:
            onset = now_ms - self._ms(block.duration)
            events.append(KeyDown(key, DtmfSource.RFC4733, now_ms, onset))
        if block.end:
            events.extend(self._close_open(now_ms))
        return events

    def _key(self, code: int) -> str | None:
        if code == FLASH_EVENT_CODE:
            logger.info("telephone-event hook flash received (not a key)")
            return None
        key = KEY_BY_EVENT_CODE[code]
        if key not in self.key_filter:
            logger.info("telephone-event key %r filtered out", key)
            return None
        return key

    def _candidates(self) -> list[_Press]:
        newest_first = list(reversed(self._closed))
        return [self._open, *newest_first] if self._open is not None else newest_first

    def _find_press(
        self, block: TelephoneEventBlock, ts: int, seq: int, marker: bool, now_ms: float
    ) -> _Press | None:
        for press in self._candidates():
            if press.code != block.event:
                continue
            offset = ts_diff(ts, press.start_ts)
            if offset < 0:
                continue
            # A key cannot be pressed again while it is still down, so any start inside the
            # known span is this press: same-timestamp updates, segment boundaries, reordered
            # segments and senders that bump the timestamp on every packet.
            if offset <= press.span_end:
                return press
            if self._continues_segment(press, offset, marker) or self._is_restamped_copy(
                press, block, offset, seq, marker, now_ms
            ):
                return press
        return None

    def _continues_segment(self, press: _Press, offset: int, marker: bool) -> bool:
        # RFC 4733 §2.5.1.3: a long press continues in a new segment (no marker, no E on the
        # previous one) once the 16-bit duration is nearly exhausted; the last updates of the
        # old segment may be lost, so allow up to the end timeout's worth of them.
        if press.ended or marker:
            return False
        into_segment = offset - press.segment_offset
        slack = self._samples(self.end_timeout_ms)
        return (
            press.segment_duration >= _DURATION_MODULUS - slack
            and press.segment_duration <= into_segment <= _DURATION_MODULUS
        )

    def _is_restamped_copy(
        self,
        press: _Press,
        block: TelephoneEventBlock,
        offset: int,
        seq: int,
        marker: bool,
        now_ms: float,
    ) -> bool:
        # Middleboxes re-stamp END copies with a later timestamp, and some senders bump the
        # timestamp on every packet. Such a packet starts just after the press and arrives right
        # behind its last packet; a genuine repeat of the key comes only after a pause of at
        # least ~40 ms (Q.24) and, if END-only, after its own tone as well.
        if marker:
            return False
        if block.end:
            if not self._fits_end_copies(press, seq):
                return False
            guard_ms = self.restamp_guard_ms
        elif press.ended:
            return False
        else:
            guard_ms = _RESTAMPED_UPDATE_GAP_MS
        just_after = offset - press.span_end <= self._samples(guard_ms)
        return just_after and now_ms - press.last_packet_ms <= self.restamp_guard_ms

    def _fits_end_copies(self, press: _Press, seq: int) -> bool:
        # The END copies of one press are consecutive packets. A fast repeat of the key whose
        # updates were lost looks exactly like a re-stamped copy (same code, END, start just
        # after the press, same duration) except for its sequence number: it comes after the
        # whole run of copies, or after the updates that still lacked their END.
        if press.end_seqs is None:
            return 0 < seq_diff(seq, press.last_seq) <= self.end_repeats
        low, high = press.end_seqs
        span = self.end_repeats - 1
        return seq_diff(seq, low) <= span and seq_diff(high, seq) <= span

    def _is_older_than_latest(self, ts: int, now_ms: float) -> bool:
        latest = self._open if self._open is not None else None
        if latest is None and self._closed:
            latest = self._closed[-1]
        if latest is None or now_ms - latest.last_packet_ms > self.stale_window_ms:
            # Long after the latest press its timestamp says nothing (32-bit serial numbers
            # flip sign after 2**31 units), so only compare against recent presses.
            return False
        return ts_diff(ts, latest.start_ts) < 0

    def _extend(
        self, press: _Press, block: TelephoneEventBlock, ts: int, seq: int, now_ms: float
    ) -> None:
        offset = ts_diff(ts, press.start_ts)
        press.note_packet(seq, block.end, now_ms)
        if offset == press.segment_offset:
            # Senders that let the 16-bit duration wrap instead of segmenting: unwrap it
            # relative to the last value seen (serial arithmetic on 16 bits).
            low = press.segment_duration & MAX_SEGMENT_DURATION
            press.segment_duration = max(
                press.segment_duration, press.segment_duration + seq_diff(block.duration, low)
            )
            press.duration = max(press.duration, press.segment_offset + press.segment_duration)
        elif offset > press.segment_offset and self._continues_segment(press, offset, False):
            press.segment_offset = offset
            press.segment_duration = block.duration
            press.duration = max(press.duration, offset + block.duration)
        elif offset > press.segment_offset:
            # Re-stamped packet: its duration field still counts from the real start.
            press.duration = max(press.duration, block.duration)

    def _close_open(self, now_ms: float) -> list[KeyUp]:
        press = self._open
        if press is None:
            return []
        self._open = None
        press.ended = True
        self._closed.append(press)
        key = KEY_BY_EVENT_CODE.get(press.code)
        if key is None or key not in self.key_filter:
            return []
        return [KeyUp(key, DtmfSource.RFC4733, now_ms, self._ms(press.duration))]


# --- sender ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TelephoneEventPacket:
    """One packet of a press for the RTP layer to send.

    Send it ``send_offset_ms`` after the press started, with RTP timestamp
    ``press_start_timestamp + timestamp_offset`` (non-zero only for later segments of a press
    longer than the 16-bit duration) and the given marker bit.
    """

    payload: bytes
    marker: bool
    timestamp_offset: int
    send_offset_ms: float
    end: bool


class TelephoneEventSender:
    """Builds the RFC 4733 packet sequence of one key press; the caller paces and sends it.

    The sequence is: first packet with marker, one update every ``packet_ms`` with growing
    duration, then the END packet three times with the same final duration, all carrying the
    press-start timestamp (new segments for presses longer than 0xFFFF clock units).
    """

    END_REPEATS = 3

    def __init__(
        self, payload_type: int, clock_rate: int = 8000, packet_ms: float = 20.0, volume: int = 10
    ) -> None:
        if not 0 <= payload_type <= 127:
            raise MediaError(f"RTP payload type {payload_type} is outside 0..127")
        if clock_rate <= 0 or packet_ms <= 0:
            raise MediaError(
                f"clock_rate ({clock_rate}) and packet_ms ({packet_ms}) must be positive"
            )
        if not 0 <= volume <= _VOLUME_MASK:
            raise MediaError(f"volume {volume} is outside 0..63 (dB below 0 dBm0)")
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.packet_ms = packet_ms
        self.volume = volume

    def packets_for_key(self, key: str, duration_ms: float) -> list[TelephoneEventPacket]:
        """Packets for pressing ``key`` (0-9, *, #, A-D) for ``duration_ms``."""
        code = EVENT_CODES.get(key.upper())
        if code is None:
            raise DtmfParseError(f"{key!r} is not a DTMF key (expected one of 0-9, *, #, A-D)")
        return self.packets_for_event(code, duration_ms)

    def packets_for_event(self, event: int, duration_ms: float) -> list[TelephoneEventPacket]:
        """Packets for telephone-event ``event`` (16 is hook flash) lasting ``duration_ms``."""
        if duration_ms <= 0:
            raise MediaError(f"press duration must be positive, got {duration_ms} ms")
        total = round(duration_ms * self.clock_rate / 1000)
        step = self.packet_ms * self.clock_rate / 1000
        packets = []
        count = 0
        while round(count * step) < total:
            elapsed = round(count * step)
            packets.append(self._packet(event, elapsed, end=False, send_ms=count * self.packet_ms))
            count += 1
        for repeat in range(self.END_REPEATS):
            send_ms = (total * 1000 / self.clock_rate) + repeat * self.packet_ms
            packets.append(self._packet(event, total, end=True, send_ms=send_ms))
        return packets

    def _packet(
        self, event: int, elapsed: int, *, end: bool, send_ms: float
    ) -> TelephoneEventPacket:
        # A segment holds at most 0xFFFF units; an exact boundary belongs to the earlier segment
        # so its final update reports the full 0xFFFF the receiver stitches on.
        segment = max(0, (elapsed - 1) // MAX_SEGMENT_DURATION)
        offset = segment * MAX_SEGMENT_DURATION
        block = TelephoneEventBlock(event, end, self.volume, elapsed - offset)
        return TelephoneEventPacket(
            payload=build_telephone_event_payload([block]),
            marker=elapsed == 0 and not end,
            timestamp_offset=offset,
            send_offset_ms=send_ms,
            end=end,
        )
