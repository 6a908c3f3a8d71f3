"""InbandDetectorPool: one batched detector, many legs, each leg hears only its own keys."""

from __future__ import annotations

import random

import pytest
from rtp_caller import PEER, TICK, Caller, Ticks, keys

from voxflow.errors import MediaError
from voxflow.media.g711 import Codec
from voxflow.rtp.inband import InbandDetectorPool
from voxflow.rtp.leg import InboundFrame, LegMedia, MediaLeg


def inband_leg(label: str, codec: Codec = Codec.PCMU) -> MediaLeg:
    media = LegMedia(codec, codec.payload_type, None, remote=PEER)
    return MediaLeg(media, label=label, rng=random.Random(label))


def run(pool: InbandDetectorPool, streams: dict[MediaLeg, Ticks], tail: int = 15) -> None:
    length = max(len(ticks) for ticks in streams.values()) + tail
    for index in range(length):
        now = index * TICK
        for leg, ticks in streams.items():
            for data in ticks[index] if index < len(ticks) else []:
                leg.receive_datagram(data, PEER, now)
        pool.process(now + 0.001)


def test_two_legs_in_one_pool_do_not_hear_each_others_keys() -> None:
    pool = InbandDetectorPool()
    first, second = inband_leg("first"), inband_leg("second", Codec.PCMA)
    assert (pool.add(first), pool.add(second)) == (0, 1)
    run(
        pool,
        {
            first: Caller().tones("12"),
            second: Caller(Codec.PCMA).tones("3*4", on_ms=60, off_ms=60),
        },
    )
    assert keys(first) == "12"
    assert keys(second) == "3*4"


def test_process_returns_each_legs_frame_by_slot() -> None:
    pool = InbandDetectorPool()
    talking, quiet = inband_leg("talking"), inband_leg("quiet")
    slots = pool.add(talking), pool.add(quiet)
    caller = Caller()
    for index, tick in enumerate(caller.tones("5", on_ms=200, off_ms=0)):
        for data in tick:
            talking.receive_datagram(data, PEER, index * TICK)
    frames: dict[int, InboundFrame] = pool.process(0.2)
    assert sorted(frames) == sorted(slots)
    assert not frames[slots[0]].lost and frames[slots[0]].samples.any()
    assert frames[slots[1]].lost and not frames[slots[1]].samples.any()


def test_removed_slot_is_reused_with_fresh_state_and_no_stale_keys() -> None:
    pool = InbandDetectorPool()
    leaving, staying = inband_leg("leaving"), inband_leg("staying")
    slot = pool.add(leaving)
    pool.add(staying)
    # The leaving call is in the middle of a tone when it hangs up.
    run(pool, {leaving: Caller().tones("9", on_ms=200, off_ms=0)[:4]}, tail=0)
    pool.remove(slot)
    assert len(pool) == 1
    newcomer = inband_leg("newcomer")
    assert pool.add(newcomer) == slot
    run(pool, {newcomer: Caller(ssrc=77).tones("7")})
    assert keys(newcomer) == "7"
    assert keys(staying) == ""


def test_pool_rejects_double_registration_and_unknown_slots() -> None:
    pool = InbandDetectorPool()
    leg = inband_leg("once")
    pool.add(leg)
    with pytest.raises(MediaError, match="already"):
        pool.add(leg)
    with pytest.raises(MediaError, match="slot 5"):
        pool.remove(5)
    assert InbandDetectorPool().process(0.0) == {}


def test_batched_decoding_gives_each_leg_exactly_its_own_pull_frame() -> None:
    # The pool decodes all legs' codes in one call per law; every frame must be what the leg
    # itself would have decoded (PCMU and PCMA mixed, a leg with nothing, frames in order).
    pool = InbandDetectorPool()
    streams = {Codec.PCMU: Caller(ssrc=1).tones("5"), Codec.PCMA: Caller(Codec.PCMA).tones("9")}
    pooled = {codec: inband_leg(f"pooled-{codec}", codec) for codec in streams}
    alone = {codec: inband_leg(f"alone-{codec}", codec) for codec in streams}
    silent = inband_leg("silent")
    slots = {codec: pool.add(leg) for codec, leg in pooled.items()}
    silent_slot = pool.add(silent)
    for index in range(max(len(ticks) for ticks in streams.values())):
        now = index * TICK
        for codec, ticks in streams.items():
            for data in ticks[index] if index < len(ticks) else []:
                pooled[codec].receive_datagram(data, PEER, now)
                alone[codec].receive_datagram(data, PEER, now)
        frames = pool.process(now + 0.001)
        for codec, slot in slots.items():
            expected = alone[codec].pull_frame(now + 0.001)
            assert frames[slot].lost == expected.lost
            assert (frames[slot].samples == expected.samples).all()
        assert frames[silent_slot].lost and not frames[silent_slot].samples.any()
    assert pooled[Codec.PCMU].stats.frames == alone[Codec.PCMU].stats.frames == 10
    assert pooled[Codec.PCMA].stats.lost_frames == alone[Codec.PCMA].stats.lost_frames
