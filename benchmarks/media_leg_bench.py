"""Per-tick cost of the media leg: RTP in, one batched in-band DTMF pass, RTP out, for N calls.

Every call receives one PCMU packet of speech-like noise per 20 ms tick, is pulled through the
shared :class:`~voxflow.rtp.inband.InbandDetectorPool`, runs its DTMF timers and sends one
frame of prompt audio. Prints CPU time per call per tick and how many calls one core sustains
in real time. Run: ``PYTHONPATH=tests/support .venv/bin/python benchmarks/media_leg_bench.py``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import random
import time

import numpy as np
from rtp_caller import PEER, TICK, Caller

from voxflow.media.g711 import Codec
from voxflow.rtp.inband import InbandDetectorPool
from voxflow.rtp.leg import LegMedia, MediaLeg

TICKS = 100


def measure(calls: int) -> float:
    """CPU seconds per call per tick."""
    rng = np.random.default_rng(1)
    pool = InbandDetectorPool()
    legs, inbound = [], []
    for index in range(calls):
        leg = MediaLeg(LegMedia(Codec.PCMU, 0, 101, remote=PEER), rng=random.Random(index))
        pool.add(leg)
        legs.append(leg)
        caller = Caller(ssrc=index + 1)
        inbound.append(caller.audio(rng.normal(0, 1500, TICKS * 160).astype(np.int16)))
    prompt = rng.normal(0, 1500, 160).astype(np.int16)
    started = time.process_time()
    for tick in range(TICKS):
        now = tick * TICK
        for leg, ticks in zip(legs, inbound, strict=True):
            for data in ticks[tick]:
                leg.receive_datagram(data, PEER, now)
        pool.process(now + 0.001)
        for leg in legs:
            leg.poll(now + 0.001)
            leg.send_audio(prompt, now)
    return (time.process_time() - started) / (TICKS * calls)


def main() -> None:
    print(f"{'calls':>6} | {'µs per call per tick':>20} | {'real-time calls per core':>24}")
    print(f"{'-' * 6}-+-{'-' * 20}-+-{'-' * 24}")
    for calls in (1, 100, 1000):
        cost = measure(calls)
        print(f"{calls:>6} | {cost * 1e6:>20.1f} | {TICK / cost:>24,.0f}")


if __name__ == "__main__":
    main()
