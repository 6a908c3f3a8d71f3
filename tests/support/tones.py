"""A test tone and a meter for it, for checking that audio crossed a call."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

TONE_HZ = 1000.0


def tone(seconds: float, hz: float = TONE_HZ) -> npt.NDArray[np.int16]:
    """A sine at 8 kHz, about -12 dBFS."""
    t = np.arange(int(seconds * 8000)) / 8000
    return (np.sin(2 * np.pi * hz * t) * 8000).astype(np.int16)


def tone_seconds(path: Path, hz: float = TONE_HZ) -> float:
    """How long the recording carries a strong ``hz`` component (20 ms frames)."""
    with wave.open(str(path)) as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    frames = samples[: samples.size // 160 * 160].reshape(-1, 160).astype(np.float64)
    probe = np.exp(-2j * np.pi * hz * np.arange(160) / 8000)
    level = np.abs(frames @ probe) / 80  # the amplitude of the hz component per frame
    return float((level > 2000).sum() * 0.02)
