"""Jitter buffer for one inbound audio stream (sans-IO: arrival times are passed in).

Packets go in with :meth:`JitterBuffer.push`; 20 ms frames come out of :meth:`JitterBuffer.pop`
on a local playout clock that ticks once per frame from the first packet on, so the caller gets
exactly one frame per frame interval of wall-clock time. A frame nobody delivered in time comes
out *lost* (``payload is None``): the DTMF detector must know which audio was concealed.

The buffer is codec-agnostic: it splits and merges payload bytes using ``frame_bytes`` per
``frame_samples`` RTP clock units, so 10 ms and 30 ms packets become 20 ms frames.

Timing model: a packet's frame is due at ``arrival + depth``. The mapping from RTP timestamps to
playout slots is kept until a *new* packet (higher sequence number) does not fit it, i.e. it
would be late, or it would wait longer than ``max_wait`` (a timestamp jump; a burst within that
is simply held), or, at a talkspurt start flagged by the marker bit, longer than the current
depth plus one frame (silence is the cheap moment to shed extra delay). Such a packet re-anchors
the mapping ("resync"); an SSRC change always does. Old packets that do not fit are counted late
and dropped.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from voxflow.errors import ConfigError
from voxflow.media.serial import seq_diff, ts_diff
from voxflow.rtp.packet import RtpPacket

_TS_MOD = 1 << 32
_DUPLICATE_MEMORY = 512
# RFC 3550 §A.8: the jitter estimate is a running mean of |D| with gain 1/16.
_JITTER_GAIN = 1 / 16
# Larger transit swings (seconds) are treated as timestamp discontinuities, not jitter.
_DISCONTINUITY = 1.0
# Depth chosen at a resync: enough to ride out about three times the mean jitter.
_JITTER_DEPTH_FACTOR = 3.0


@dataclass(frozen=True, slots=True)
class JitterConfig:
    """Stream geometry and buffer depth; defaults fit G.711 at 8 kHz in 20 ms frames."""

    clock_rate: int = 8000
    frame_samples: int = 160
    frame_bytes: int = 160
    min_depth: float = 0.04
    max_depth: float = 0.1
    max_wait: float = 0.2

    def __post_init__(self) -> None:
        for name in ("clock_rate", "frame_samples", "frame_bytes"):
            if getattr(self, name) <= 0:
                raise ConfigError(
                    f"jitter buffer {name} must be positive, got {getattr(self, name)}"
                )
        if not 0 <= self.min_depth <= self.max_depth <= self.max_wait:
            raise ConfigError(
                f"jitter buffer depths must satisfy 0 <= min_depth <= max_depth <= max_wait, "
                f"got {self.min_depth}, {self.max_depth} and {self.max_wait}"
            )

    @property
    def frame_duration(self) -> float:
        """Seconds per frame."""
        return self.frame_samples / self.clock_rate


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of playout; ``payload`` is None when the audio was lost (to be concealed)."""

    index: int
    timestamp: int
    payload: bytes | None

    @property
    def lost(self) -> bool:
        """True when no (or only part of the) audio for this frame arrived in time."""
        return self.payload is None


@dataclass(frozen=True, slots=True)
class JitterStats:
    """Counters since creation; ``lost`` counts packets by sequence gaps (RFC 3550 §A.3)."""

    received: int = 0
    lost: int = 0
    late: int = 0
    duplicate: int = 0
    reordered: int = 0
    concealed: int = 0
    resyncs: int = 0
    jitter: float = 0.0


@dataclass(slots=True)
class _Counters:
    received: int = 0
    late: int = 0
    duplicate: int = 0
    reordered: int = 0
    concealed: int = 0
    resyncs: int = 0


class _Slot:
    """One frame's bytes as they arrive. The usual case, one packet filling the whole frame,
    keeps that payload as it is: no buffers to allocate, fill, scan and copy per packet."""

    __slots__ = ("_data", "_mask", "_size", "_whole")

    def __init__(self, size: int) -> None:
        self._size = size
        self._whole: bytes | None = None
        self._data: bytearray | None = None
        self._mask: bytearray | None = None

    def write(self, offset: int, chunk: bytes) -> None:
        if self._data is None or self._mask is None:
            if offset == 0 and len(chunk) == self._size and self._whole is None:
                self._whole = bytes(chunk)
                return
            self._data, self._mask = bytearray(self._size), bytearray(self._size)
            if self._whole is not None:  # pieces after a whole frame overwrite parts of it
                self._data[:] = self._whole
                self._mask[:] = b"\x01" * self._size
                self._whole = None
        self._data[offset : offset + len(chunk)] = chunk
        self._mask[offset : offset + len(chunk)] = b"\x01" * len(chunk)

    def complete(self) -> bytes | None:
        if self._whole is not None:
            return self._whole
        if self._data is None or self._mask is None or 0 in self._mask:
            return None
        return bytes(self._data)


class _SourceTracker:
    """Sequence bookkeeping for one SSRC: extended sequence numbers, duplicates, jitter."""

    def __init__(self, packet: RtpPacket, now: float, jitter: float) -> None:
        self.ssrc = packet.ssrc
        self.highest_seq = packet.sequence
        self.base_ext = self.highest_ext = packet.sequence
        self.received = 1
        self.recent: deque[int] = deque([packet.sequence], maxlen=_DUPLICATE_MEMORY)
        self.recent_set = {packet.sequence}
        self.last_arrival = now
        self.last_timestamp = packet.timestamp
        self.jitter = jitter

    def accept(self, sequence: int) -> int | None:
        """Distance ahead of the highest sequence so far, or None for a duplicate."""
        distance = seq_diff(sequence, self.highest_seq)
        extended = self.highest_ext + distance
        if extended in self.recent_set:
            return None
        if len(self.recent) == self.recent.maxlen:
            self.recent_set.discard(self.recent[0])
        self.recent.append(extended)
        self.recent_set.add(extended)
        self.received += 1
        if distance > 0:
            self.highest_seq = sequence
            self.highest_ext = extended
        return distance

    def update_jitter(self, timestamp: int, now: float, clock_rate: int) -> None:
        # Difference of transit times, with the timestamp part wrap-safe.
        swing = (now - self.last_arrival) * clock_rate - ts_diff(timestamp, self.last_timestamp)
        # A timestamp discontinuity (sender restart, jump) is not network jitter.
        if abs(swing) < _DISCONTINUITY * clock_rate:
            self.jitter += (abs(swing) - self.jitter) * _JITTER_GAIN
        self.last_arrival = now
        self.last_timestamp = timestamp

    @property
    def lost(self) -> int:
        return max(0, self.highest_ext - self.base_ext + 1 - self.received)


class JitterBuffer:
    """Reorders one inbound stream into frames on a playout clock; see the module docstring."""

    def __init__(self, config: JitterConfig | None = None) -> None:
        self._config = config if config is not None else JitterConfig()
        self._counts = _Counters()
        self._lost_in_previous_sources = 0
        self._source: _SourceTracker | None = None
        self._start_time: float | None = None
        self._next_index = 0
        self._map_index = 0
        self._map_ts = 0
        self._depth = self._config.min_depth
        self._slots: dict[int, _Slot] = {}
        # Read for every deadline (several per packet and per tick): the property divides.
        self._frame_duration = self._config.frame_duration

    @property
    def config(self) -> JitterConfig:
        """The geometry this buffer was created with."""
        return self._config

    @property
    def depth(self) -> float:
        """Current target delay between a packet's arrival and its playout, in seconds."""
        return self._depth

    @property
    def stats(self) -> JitterStats:
        """A snapshot of the counters, with the current jitter estimate in seconds."""
        source = self._source
        lost = self._lost_in_previous_sources + (source.lost if source else 0)
        jitter = source.jitter / self._config.clock_rate if source else 0.0
        counts = self._counts
        return JitterStats(
            received=counts.received,
            lost=lost,
            late=counts.late,
            duplicate=counts.duplicate,
            reordered=counts.reordered,
            concealed=counts.concealed,
            resyncs=counts.resyncs,
            jitter=jitter,
        )

    def next_deadline(self) -> float | None:
        """When the next frame is due, or None before the first packet."""
        if self._start_time is None:
            return None
        return self._deadline(self._next_index)

    def push(self, packet: RtpPacket, now: float) -> None:
        """Accept one audio packet that arrived at ``now`` (seconds, monotonic)."""
        source = self._source
        if source is None or source.ssrc != packet.ssrc:
            jitter = 0.0
            if source is not None:
                self._lost_in_previous_sources += source.lost
                jitter = source.jitter  # same network path: keep the estimate
            self._source = _SourceTracker(packet, now, jitter)
            self._counts.received += 1
            self._place(packet, now, is_new=True, new_source=True)
            return
        distance = source.accept(packet.sequence)
        if distance is None:
            self._counts.duplicate += 1
            return
        self._counts.received += 1
        self._counts.reordered += distance < 0
        source.update_jitter(packet.timestamp, now, self._config.clock_rate)
        self._place(packet, now, is_new=distance > 0, new_source=False)

    def pop(self, now: float) -> list[Frame]:
        """Every frame due by ``now``, oldest first (empty before the first packet)."""
        first = self._next_index
        return [
            Frame(first + offset, self._timestamp_of(first + offset), payload)
            for offset, payload in enumerate(self.pop_payloads(now))
        ]

    def pop_payloads(self, now: float) -> list[bytes | None]:
        """The payload of every frame due by ``now`` (None when lost), oldest first: what
        :meth:`pop` returns without a :class:`Frame` per frame, for the media tick."""
        payloads: list[bytes | None] = []
        start = self._start_time
        if start is None:
            return payloads
        duration = self._frame_duration
        while start + self._next_index * duration <= now:  # self._deadline, inlined
            slot = self._slots.pop(self._next_index, None)
            payload = slot.complete() if slot is not None else None
            if payload is None:
                self._counts.concealed += 1
            payloads.append(payload)
            self._next_index += 1
        return payloads

    def _place(self, packet: RtpPacket, now: float, *, is_new: bool, new_source: bool) -> None:
        config = self._config
        if self._start_time is None:
            self._start_time = now + self._depth
            self._map_ts = packet.timestamp
        elif new_source:
            self._resync(packet, now)
        else:
            first = self._slot_of(packet.timestamp)
            wait = self._deadline(first) - now
            if first < self._next_index:
                if not is_new:
                    self._counts.late += 1
                    return
                self._resync(packet, now)
            elif is_new and (
                wait > config.max_wait
                or (packet.marker and wait > self._depth + config.frame_duration)
            ):
                self._resync(packet, now)
        self._store(packet)

    def _resync(self, packet: RtpPacket, now: float) -> None:
        config = self._config
        assert self._start_time is not None
        jitter = self._source.jitter / config.clock_rate if self._source else 0.0
        self._depth = min(config.max_depth, config.min_depth + _JITTER_DEPTH_FACTOR * jitter)
        target_slot = math.ceil(
            (now + self._depth - self._start_time) / config.frame_duration - 1e-9
        )
        self._map_index = max(self._next_index, target_slot)
        self._map_ts = packet.timestamp
        for index in [i for i in self._slots if i >= self._map_index]:
            del self._slots[index]
        self._counts.resyncs += 1

    def _store(self, packet: RtpPacket) -> None:
        config = self._config
        offset = ts_diff(packet.timestamp, self._map_ts)
        position = offset * config.frame_bytes // config.frame_samples
        payload = packet.payload
        written = 0
        while written < len(payload):
            slot_delta, in_slot = divmod(position + written, config.frame_bytes)
            size = min(config.frame_bytes - in_slot, len(payload) - written)
            index = self._map_index + slot_delta
            if index >= self._next_index:
                slot = self._slots.get(index)
                if slot is None:
                    slot = self._slots[index] = _Slot(config.frame_bytes)
                slot.write(in_slot, payload[written : written + size])
            written += size

    def _slot_of(self, timestamp: int) -> int:
        return self._map_index + ts_diff(timestamp, self._map_ts) // self._config.frame_samples

    def _timestamp_of(self, index: int) -> int:
        return (self._map_ts + (index - self._map_index) * self._config.frame_samples) % _TS_MOD

    def _deadline(self, index: int) -> float:
        assert self._start_time is not None
        return self._start_time + index * self._frame_duration
