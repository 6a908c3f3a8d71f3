"""Jitter buffer: reorder, loss, duplicates, late packets, wrap, SSRC change, ptime."""

from __future__ import annotations

import pytest

from voxflow.errors import ConfigError
from voxflow.rtp.jitter import Frame, JitterBuffer, JitterConfig
from voxflow.rtp.packet import RtpPacket

FRAME = 0.02
DEPTH = 0.04


def audio(seq: int, ts: int, fill: int, *, size: int = 160, ssrc: int = 1) -> RtpPacket:
    return RtpPacket(
        payload_type=0,
        sequence=seq % 65536,
        timestamp=ts % 2**32,
        ssrc=ssrc,
        payload=bytes([fill % 256]) * size,
    )


def fills(frames: list[Frame]) -> list[int | None]:
    """First byte of each frame, None for lost frames: a compact picture of the playout."""
    return [None if frame.payload is None else frame.payload[0] for frame in frames]


def run(buffer: JitterBuffer, arrivals: list[tuple[float, RtpPacket]], until: float) -> list[Frame]:
    """Feed packets at their arrival times and pop frames on a 20 ms tick up to ``until``."""
    frames: list[Frame] = []
    pending = sorted(arrivals, key=lambda item: item[0])
    tick = 0.0
    while tick <= until + 1e-9:
        while pending and pending[0][0] <= tick + 1e-9:
            arrival, packet = pending.pop(0)
            buffer.push(packet, arrival)
        frames.extend(buffer.pop(tick + 1e-6))  # float slack on the exact deadline
        tick = round(tick + 0.005, 6)
    return frames


def steady(count: int, *, first_seq: int = 0, first_ts: int = 0) -> list[tuple[float, RtpPacket]]:
    return [(i * FRAME, audio(first_seq + i, first_ts + 160 * i, i)) for i in range(count)]


def test_in_order_stream_comes_out_delayed_by_depth_without_loss() -> None:
    buffer = JitterBuffer()
    assert buffer.pop(1.0) == []
    buffer.push(audio(0, 0, 0), 0.0)
    assert buffer.next_deadline() == pytest.approx(DEPTH)
    frames = run(JitterBuffer(), steady(10), until=9 * FRAME + DEPTH)
    assert fills(frames) == list(range(10))
    assert [frame.timestamp for frame in frames] == [160 * i for i in range(10)]
    assert [frame.index for frame in frames] == list(range(10))


def test_reorder_within_depth_is_repaired() -> None:
    arrivals = steady(6)
    arrivals[2] = (3 * FRAME + 0.001, arrivals[2][1])  # packet 2 arrives after packet 3
    buffer = JitterBuffer()
    frames = run(buffer, arrivals, until=5 * FRAME + DEPTH)
    assert fills(frames) == [0, 1, 2, 3, 4, 5]
    stats = buffer.stats
    assert (stats.reordered, stats.late, stats.lost, stats.concealed) == (1, 0, 0, 0)


def test_missing_packet_becomes_one_lost_frame() -> None:
    arrivals = [item for item in steady(6) if item[1].sequence != 3]
    buffer = JitterBuffer()
    frames = run(buffer, arrivals, until=5 * FRAME + DEPTH)
    assert fills(frames) == [0, 1, 2, None, 4, 5]
    assert frames[3].lost and frames[3].timestamp == 480
    assert (buffer.stats.lost, buffer.stats.concealed) == (1, 1)


def test_duplicates_are_dropped_and_counted() -> None:
    arrivals = steady(4)
    arrivals.append((2 * FRAME + 0.002, audio(1, 160, 99)))
    arrivals.append((10 * FRAME, audio(2, 320, 98)))  # long after it was played
    buffer = JitterBuffer()
    frames = run(buffer, arrivals, until=10 * FRAME)
    assert fills(frames)[:4] == [0, 1, 2, 3]
    assert buffer.stats.duplicate == 2
    assert buffer.stats.received == 4


def test_late_packet_is_dropped_and_its_frame_reported_lost() -> None:
    arrivals = steady(8)
    arrivals[2] = (2 * FRAME + DEPTH + 0.03, arrivals[2][1])  # arrives after its playout time
    buffer = JitterBuffer()
    frames = run(buffer, arrivals, until=7 * FRAME + DEPTH)
    assert fills(frames) == [0, 1, None, 3, 4, 5, 6, 7]
    stats = buffer.stats
    assert (stats.late, stats.reordered, stats.lost, stats.concealed) == (1, 1, 0, 1)


def test_sequence_wrap_at_65535_is_seamless() -> None:
    buffer = JitterBuffer()
    frames = run(buffer, steady(6, first_seq=65533), until=5 * FRAME + DEPTH)
    assert fills(frames) == list(range(6))
    assert buffer.stats.lost == 0 and buffer.stats.reordered == 0


def test_timestamp_wrap_at_2_32_is_seamless() -> None:
    buffer = JitterBuffer()
    frames = run(buffer, steady(6, first_ts=2**32 - 320), until=5 * FRAME + DEPTH)
    assert fills(frames) == list(range(6))
    assert [frame.timestamp for frame in frames] == [2**32 - 320, 2**32 - 160, 0, 160, 320, 480]
    assert buffer.stats.resyncs == 0


def test_ssrc_change_resyncs_to_the_new_stream() -> None:
    arrivals = steady(3)
    arrivals += [
        (3 * FRAME + i * FRAME, audio(9000 + i, 777_000 + 160 * i, 50 + i, ssrc=2))
        for i in range(3)
    ]
    buffer = JitterBuffer()
    frames = run(buffer, arrivals, until=5 * FRAME + DEPTH)
    assert fills(frames) == [0, 1, 2, 50, 51, 52]
    assert frames[3].timestamp == 777_000
    assert buffer.stats.resyncs == 1
    assert buffer.stats.lost == 0


def test_timestamp_jump_forward_resyncs_instead_of_waiting() -> None:
    arrivals = steady(3)
    arrivals += [
        (3 * FRAME + i * FRAME, audio(3 + i, 160 * 3 + 80_000 + 160 * i, 10 + i)) for i in range(3)
    ]
    buffer = JitterBuffer()
    frames = run(buffer, arrivals, until=5 * FRAME + DEPTH)
    assert fills(frames) == [0, 1, 2, 10, 11, 12]
    assert buffer.stats.resyncs == 1


def test_timestamp_jump_backward_on_new_sequence_resyncs() -> None:
    arrivals = steady(3, first_ts=500_000)
    arrivals += [(3 * FRAME + i * FRAME, audio(3 + i, 1000 + 160 * i, 10 + i)) for i in range(3)]
    buffer = JitterBuffer()
    frames = run(buffer, arrivals, until=5 * FRAME + DEPTH)
    assert fills(frames) == [0, 1, 2, 10, 11, 12]
    assert buffer.stats.late == 0


def test_talkspurt_marker_after_silence_restarts_at_base_delay() -> None:
    buffer = JitterBuffer()
    arrivals = steady(2)
    # Silence (no packets) for 200 ms, then a new talkspurt whose timestamps kept running.
    start = 12
    arrivals += [
        (
            (start + i) * FRAME + 0.011,
            RtpPacket(0, 2 + i, 160 * (start + i), 1, bytes([20 + i]) * 160, marker=i == 0),
        )
        for i in range(3)
    ]
    frames = run(buffer, arrivals, until=(start + 2) * FRAME + 0.011 + DEPTH + FRAME)
    played = [f for f in frames if not f.lost]
    assert fills(played) == [0, 1, 20, 21, 22]
    assert all(frame.lost for frame in frames[2:start])


@pytest.mark.parametrize("ptime_ms", [10, 30])
def test_other_packet_times_are_split_or_merged_into_20ms_frames(ptime_ms: int) -> None:
    samples = 8 * ptime_ms
    total = 240 * 8  # 240 ms of audio: a whole number of 10, 20 and 30 ms packets
    stream = bytes(i * 7 % 256 for i in range(total))
    arrivals = [
        (offset / 8000, RtpPacket(0, n, offset, 1, stream[offset : offset + samples]))
        for n, offset in enumerate(range(0, total, samples))
    ]
    buffer = JitterBuffer(JitterConfig(min_depth=0.06))
    frames = run(buffer, arrivals, until=0.4)
    played = [frame for frame in frames[:12]]
    assert all(not frame.lost for frame in played)
    assert b"".join(frame.payload or b"" for frame in played) == stream


def test_a_lost_half_frame_makes_the_whole_frame_lost() -> None:
    arrivals = [(i * 0.01, audio(i, 80 * i, i, size=80)) for i in range(6) if i != 3]
    buffer = JitterBuffer()
    frames = run(buffer, arrivals, until=2 * FRAME + DEPTH)
    assert fills(frames) == [0, None, 4]


def test_jitter_estimate_follows_rfc3550() -> None:
    buffer = JitterBuffer()
    buffer.push(audio(0, 0, 0), 0.0)
    buffer.push(audio(1, 160, 1), 0.030)  # 10 ms late: |D| = 80 samples
    assert buffer.stats.jitter == pytest.approx(80 / 16 / 8000)
    steady_buffer = JitterBuffer()
    for arrival, packet in steady(20):
        steady_buffer.push(packet, arrival)
    assert steady_buffer.stats.jitter == pytest.approx(0.0, abs=1e-9)


def test_depth_grows_with_jitter_but_stays_bounded() -> None:
    config = JitterConfig(min_depth=0.04, max_depth=0.1)
    buffer = JitterBuffer(config)
    for i in range(40):
        buffer.push(audio(i, 160 * i, i), i * FRAME + (0.03 if i % 2 else 0.0))
    buffer.push(audio(40, 160 * 40, 0, ssrc=9), 40 * FRAME)  # SSRC change → resync picks depth
    assert config.min_depth < buffer.depth <= config.max_depth


def test_invalid_config_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="frame_bytes"):
        JitterConfig(frame_bytes=0)
    with pytest.raises(ConfigError, match="min_depth"):
        JitterConfig(min_depth=0.2, max_depth=0.1)


def test_pieces_arriving_after_a_whole_frame_overwrite_only_their_part() -> None:
    # A frame filled by one packet is kept as that payload; a later 10 ms packet for its second
    # half (new sequence number, same timestamps) must still land in that half only.
    arrivals = [
        (0.0, audio(0, 0, 1)),
        (0.001, audio(1, 80, 7, size=80)),
        (FRAME, audio(2, 160, 2)),
    ]
    frames = run(JitterBuffer(), arrivals, until=FRAME + DEPTH)
    assert fills(frames) == [1, 2]
    assert frames[0].payload == b"\x01" * 80 + b"\x07" * 80
    assert frames[1].payload == b"\x02" * 160
