"""One batched in-band DTMF detector serving the media legs of every live call.

Per 20 ms tick, :meth:`InbandDetectorPool.process` pulls one frame from each registered leg,
runs :class:`~voxflow.media.dtmf.BatchDtmfDetector` once over the ``[slots, 160]`` array and
hands each leg its own KeyDown/KeyUp (:meth:`~voxflow.rtp.leg.MediaLeg.feed_inband`). Pulling is
consuming, so the engine takes the frames for everything else (VAD, speech recognition,
recording) from the returned mapping rather than calling ``pull_frame`` itself.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from voxflow.errors import MediaError
from voxflow.media.dtmf import BatchDtmfDetector, DetectorSettings, KeyDown, KeyUp
from voxflow.media.g711 import Codec
from voxflow.rtp.leg import FRAME_SAMPLES, InboundFrame, MediaLeg


class InbandDetectorPool:
    """Slots of one :class:`BatchDtmfDetector`, one per media leg; see the module docstring."""

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        self._detector = BatchDtmfDetector(0, settings=settings)
        self._legs: dict[int, MediaLeg] = {}

    def __len__(self) -> int:
        return len(self._legs)

    def add(self, leg: MediaLeg) -> int:
        """Register ``leg``; returns its slot (a freed slot is reused with fresh state)."""
        if any(existing is leg for existing in self._legs.values()):
            raise MediaError(f"media leg {leg.label!r} is already in the in-band detector pool")
        slot = self._detector.add_channel()
        self._legs[slot] = leg
        return slot

    def remove(self, slot: int) -> None:
        """Unregister the leg in ``slot``; a press it was in the middle of is dropped."""
        if slot not in self._legs:
            raise MediaError(f"in-band detector pool has no leg in slot {slot}")
        self._detector.remove_channel(slot)
        del self._legs[slot]

    def process(self, now: float) -> dict[int, InboundFrame]:
        """Pull each leg's frame for this tick, detect keys in all of them at once, feed the
        results back to their legs, and return the frames by slot."""
        if not self._legs:
            return {}
        channels = self._detector.channels
        frames = np.zeros((channels, FRAME_SAMPLES), dtype=np.int16)
        lost = np.ones(channels, dtype=bool)
        # One decode per law for all legs instead of one per leg: the per-call numpy overhead
        # was most of the decoding cost. Lost frames stay zero (silence).
        by_codec: defaultdict[Codec, tuple[list[int], list[bytes]]] = defaultdict(
            lambda: ([], [])
        )
        for slot, leg in self._legs.items():
            payload = leg.pull_payload(now)
            if payload is None or len(payload) != FRAME_SAMPLES:
                continue  # lost (the jitter buffer only makes whole 20 ms G.711 frames)
            slots, payloads = by_codec[leg.media.codec]
            slots.append(slot)
            payloads.append(payload)
        for codec, (slots, payloads) in by_codec.items():
            codes = np.frombuffer(b"".join(payloads), dtype=np.uint8)
            frames[slots] = codec.decode_codes(codes).reshape(len(slots), FRAME_SAMPLES)
            lost[slots] = False
        by_slot: defaultdict[int, list[KeyDown | KeyUp]] = defaultdict(list)
        for slot, event in self._detector.process(frames, now * 1000, lost):
            by_slot[slot].append(event)
        for slot, events in by_slot.items():
            self._legs[slot].feed_inband(events, now)
        return {slot: InboundFrame(frames[slot], bool(lost[slot])) for slot in self._legs}
