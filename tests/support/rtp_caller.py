"""A scripted far end for media-leg tests: builds real RTP datagrams tick by tick (20 ms)."""

from __future__ import annotations

from itertools import zip_longest

import numpy as np
import numpy.typing as npt

from voxflow.media.dtmf import TelephoneEventSender, generate_sequence
from voxflow.media.g711 import Codec
from voxflow.rtp.events import Address
from voxflow.rtp.inband import InbandDetectorPool
from voxflow.rtp.leg import FRAME_SAMPLES, InboundFrame, MediaLeg
from voxflow.rtp.packet import RtpPacket

PEER: Address = ("127.0.0.1", 40000)
TICK = 0.02
# Frames are pulled a little after the tick so jitter-buffer deadlines are clearly reached.
PULL_DELAY = 0.001

Ticks = list[list[bytes]]


class Caller:
    """The phone at the other end: one SSRC, sequence numbers and an audio clock."""

    def __init__(
        self, codec: Codec = Codec.PCMU, *, payload_type: int | None = None, ssrc: int = 0x5EED
    ) -> None:
        self.codec = codec
        self.payload_type = codec.payload_type if payload_type is None else payload_type
        self.ssrc = ssrc
        self.seq = 1000
        self.ts = 50_000

    def packet(self, payload_type: int, payload: bytes, ts: int, marker: bool = False) -> bytes:
        data = RtpPacket(payload_type, self.seq, ts, self.ssrc, payload, marker).to_bytes()
        self.seq = (self.seq + 1) & 0xFFFF
        return data

    def audio(self, samples: npt.NDArray[np.int16]) -> Ticks:
        """One audio packet per 20 ms of ``samples`` (zero-padded to whole frames)."""
        padded = np.concatenate([samples, np.zeros(-samples.size % FRAME_SAMPLES, np.int16)])
        ticks = []
        for frame in padded.reshape(-1, FRAME_SAMPLES):
            payload = self.codec.encode_samples(frame).tobytes()
            ticks.append([self.packet(self.payload_type, payload, self.ts)])
            self.ts = (self.ts + FRAME_SAMPLES) & 0xFFFFFFFF
        return ticks

    def silence(self, frames: int) -> Ticks:
        return self.audio(np.zeros(frames * FRAME_SAMPLES, dtype=np.int16))

    def tones(self, keys: str, on_ms: float = 100.0, off_ms: float = 100.0) -> Ticks:
        return self.audio(generate_sequence(keys, on_ms=on_ms, off_ms=off_ms, level_dbm0=-10.0))

    def key_train(self, key: str, event_pt: int, duration_ms: float = 100.0) -> Ticks:
        """RFC 4733 packets of one press starting at the current audio timestamp, per tick
        (the audio clock is not advanced: pair with audio or silence ticks)."""
        start = self.ts
        ticks: Ticks = []
        for item in TelephoneEventSender(event_pt).packets_for_key(key, duration_ms):
            tick = int(item.send_offset_ms // 20)
            while len(ticks) <= tick:
                ticks.append([])
            ticks[tick].append(
                self.packet(event_pt, item.payload, start + item.timestamp_offset, item.marker)
            )
        return ticks


def merge(*streams: Ticks) -> Ticks:
    """Per-tick concatenation of several datagram streams."""
    return [
        [data for part in parts for data in part] for parts in zip_longest(*streams, fillvalue=[])
    ]


def drive(
    leg: MediaLeg,
    ticks: Ticks,
    *,
    pool: InbandDetectorPool | None = None,
    start: float = 0.0,
    source: Address = PEER,
    tail_ticks: int = 20,
) -> list[InboundFrame]:
    """Deliver ``ticks`` (plus ``tail_ticks`` of nothing) to ``leg``, pulling one frame per tick
    (through ``pool`` when given) and running the leg's timers; returns the frames pulled."""
    frames: list[InboundFrame] = []
    for index, datagrams in enumerate([*ticks, *([[]] * tail_ticks)]):
        now = start + index * TICK
        for data in datagrams:
            leg.receive_datagram(data, source, now)
        pulled_at = now + PULL_DELAY
        if pool is None:
            frames.append(leg.pull_frame(pulled_at))
        else:
            frames.extend(pool.process(pulled_at).values())
        leg.poll(pulled_at)
    return frames


def keys(leg: MediaLeg) -> str:
    return "".join(press.key for press in leg.presses())
