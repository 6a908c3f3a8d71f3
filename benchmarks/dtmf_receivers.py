"""The in-band DTMF receivers under comparison, behind one small interface.

voxflow's detector and spandsp's (through ctypes) are both wrapped as :class:`Receiver`, so the
benchmark and the talk-off test drive them identically: whole recordings in, key strings out;
20 ms frames in, key-down times out; many channels at once for throughput.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from spandsp_dtmf import SpandspChannelBank, detect_digits_spandsp, spandsp_reports

from voxflow.media.dtmf.detector import BatchDtmfDetector, DtmfDetector
from voxflow.media.dtmf.events import KeyDown

Int16Array = npt.NDArray[np.int16]
FRAME: Final = 160
FRAME_MS: Final = 20.0
#: Chunk fed per call when only the key string matters: the detector is streaming and works on
#: 5 ms sub-blocks, so chunk size does not change its decisions, only the per-call overhead.
RECORDING_CHUNK: Final = 8000
#: Silence appended to a recording so a press running to its very end still completes.
_TAIL: Final = 1600


@dataclass(frozen=True)
class Receiver:
    """What the benchmark and tests need from a DTMF receiver."""

    name: str
    #: Keys heard in a whole 8 kHz int16 recording.
    digits: Callable[[Int16Array], str]
    #: ``(key, sample index at the end of the 20 ms frame that reported it)`` per press.
    key_downs: Callable[[Int16Array], list[tuple[str, int]]]
    #: Turns ``[channels, samples]`` audio into the layout :attr:`run_channels` takes (untimed).
    prepare: Callable[[Int16Array], Int16Array]
    #: Runs fresh receivers, one per channel, over prepared audio.
    run_channels: Callable[[Int16Array], None]


def _padded(samples: Int16Array, multiple: int) -> Int16Array:
    tail = _TAIL + (-(len(samples) + _TAIL)) % multiple
    return np.concatenate([samples, np.zeros(tail, dtype=np.int16)])


def voxflow_digits(samples: Int16Array) -> str:
    """Keys voxflow's streaming detector reports in a recording (fed 1 s per call)."""
    detector = DtmfDetector()
    keys = []
    chunks = _padded(samples, RECORDING_CHUNK).reshape(-1, RECORDING_CHUNK)
    for index, chunk in enumerate(chunks):
        for event in detector.process(chunk, index * RECORDING_CHUNK * 1000.0 / 8000):
            if isinstance(event, KeyDown):
                keys.append(event.key)
    return "".join(keys)


def _voxflow_key_downs(samples: Int16Array) -> list[tuple[str, int]]:
    detector = DtmfDetector()
    found = []
    for index, frame in enumerate(_padded(samples, FRAME).reshape(-1, FRAME)):
        for event in detector.process(frame, index * FRAME_MS):
            if isinstance(event, KeyDown):
                found.append((event.key, (index + 1) * FRAME))
    return found


def _as_frames(audio: Int16Array) -> Int16Array:
    """``[channels, samples]`` -> contiguous ``[frames, channels, 160]``, as an engine tick."""
    channels = audio.shape[0]
    return np.ascontiguousarray(audio.reshape(channels, -1, FRAME).transpose(1, 0, 2))


def _voxflow_run(frames: Int16Array) -> None:
    detector = BatchDtmfDetector(frames.shape[1])
    for index, frame in enumerate(frames):
        detector.process(frame, index * FRAME_MS, None)


def voxflow_receiver() -> Receiver:
    """voxflow's detector; throughput uses the batched form over ``[channels, 160]`` ticks."""
    return Receiver("voxflow", voxflow_digits, _voxflow_key_downs, _as_frames, _voxflow_run)


def _spandsp_key_downs(samples: Int16Array) -> list[tuple[str, int]]:
    reports = spandsp_reports(_padded(samples, FRAME), chunk_samples=FRAME)
    return [(r.key, r.sample) for r in reports if r.key is not None]


def _spandsp_run(rows: Int16Array) -> None:
    bank = SpandspChannelBank(rows.shape[0])
    bank.process_rows(rows)
    bank.close()


def spandsp_receiver() -> Receiver:
    """spandsp's C receiver; throughput feeds each channel's whole audio in one C call."""
    return Receiver(
        "spandsp",
        lambda samples: detect_digits_spandsp(_padded(samples, 1)),
        _spandsp_key_downs,
        np.ascontiguousarray,
        _spandsp_run,
    )


def spandsp_frame_receiver() -> Receiver:
    """spandsp fed one 20 ms frame per channel per ctypes call (a Python engine's cost)."""

    def run(frames: Int16Array) -> None:
        bank = SpandspChannelBank(frames.shape[1])
        for frame in frames:
            bank.process_rows(frame)
        bank.close()

    base = spandsp_receiver()
    return Receiver("spandsp/ctypes-frames", base.digits, base.key_downs, _as_frames, run)
