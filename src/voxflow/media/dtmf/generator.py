"""DTMF tone synthesis: outgoing in-band digits, and test/benchmark signals.

Levels are per tone in dBm0, where 0 dBm0 is a sine 3.14 dB below 16-bit full scale (G.711's
digital milliwatt convention, as used by spandsp). Twist is the row (low-group) level minus the
column (high-group) level; it is split evenly around ``level_dbm0`` so the mean stays put.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from voxflow.errors import MediaError
from voxflow.media.dtmf.keys import tone_pair

#: dB by which a full-scale sine exceeds 0 dBm0.
FULL_SCALE_SINE_DBM0 = 3.14
_FULL_SCALE = 32767.0


def level_to_amplitude(level_dbm0: float) -> float:
    """Peak amplitude (int16 scale) of a sine at ``level_dbm0``."""
    return _FULL_SCALE * float(10.0 ** ((level_dbm0 - FULL_SCALE_SINE_DBM0) / 20.0))


def _check_rate(sample_rate: int) -> None:
    if sample_rate <= 0:
        raise MediaError(f"sample_rate must be positive, got {sample_rate}")


def _samples_for(duration_ms: float, sample_rate: int, what: str) -> int:
    if duration_ms < 0:
        raise MediaError(f"{what} must not be negative, got {duration_ms} ms")
    return round(duration_ms * sample_rate / 1000.0)


def _to_int16(signal: npt.NDArray[np.float64]) -> npt.NDArray[np.int16]:
    return np.clip(np.rint(signal), -32768, 32767).astype(np.int16)


def _tone_float(
    key: str,
    n: int,
    *,
    level_dbm0: float,
    twist_db: float,
    freq_offset_pct: float | tuple[float, float],
    sample_rate: int,
    phase: tuple[float, float],
    ramp_ms: float,
) -> npt.NDArray[np.float64]:
    try:
        row, column = tone_pair(key)
    except ValueError as exc:
        raise MediaError(str(exc)) from None
    row_pct, column_pct = (
        freq_offset_pct if isinstance(freq_offset_pct, tuple) else (freq_offset_pct,) * 2
    )
    t = np.arange(n) / sample_rate
    row_amp = level_to_amplitude(level_dbm0 + twist_db / 2)
    column_amp = level_to_amplitude(level_dbm0 - twist_db / 2)
    signal = row_amp * np.sin(2 * np.pi * row * (1 + row_pct / 100) * t + phase[0])
    signal += column_amp * np.sin(2 * np.pi * column * (1 + column_pct / 100) * t + phase[1])
    ramp = min(_samples_for(ramp_ms, sample_rate, "ramp_ms"), n // 2)
    if ramp:
        # Raised-cosine edges keep the spectrum of short bursts from splattering.
        edge = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)
        signal[:ramp] *= edge
        signal[n - ramp :] *= edge[::-1]
    return signal


def generate_tone(
    key: str,
    duration_ms: float,
    *,
    level_dbm0: float = -10.0,
    twist_db: float = 0.0,
    freq_offset_pct: float | tuple[float, float] = 0.0,
    sample_rate: int = 8000,
    phase: tuple[float, float] = (0.0, 0.0),
    ramp_ms: float = 0.0,
) -> npt.NDArray[np.int16]:
    """Render one key's tone pair as int16 samples.

    ``twist_db`` > 0 makes the row (low) tone stronger; ``freq_offset_pct`` shifts both tones,
    or (row, column) separately; ``phase`` is the start phase of each tone in radians;
    ``ramp_ms`` adds raised-cosine edges.
    """
    _check_rate(sample_rate)
    n = _samples_for(duration_ms, sample_rate, "duration_ms")
    return _to_int16(
        _tone_float(
            key,
            n,
            level_dbm0=level_dbm0,
            twist_db=twist_db,
            freq_offset_pct=freq_offset_pct,
            sample_rate=sample_rate,
            phase=phase,
            ramp_ms=ramp_ms,
        )
    )


def generate_sequence(
    keys: Iterable[str],
    *,
    on_ms: float = 100.0,
    off_ms: float = 100.0,
    level_dbm0: float = -10.0,
    twist_db: float = 0.0,
    sample_rate: int = 8000,
    lead_ms: float = 0.0,
    seed: int | None = None,
    ramp_ms: float = 0.0,
) -> npt.NDArray[np.int16]:
    """Render keys one after another: ``lead_ms`` of silence, then per key ``on_ms`` of tone
    followed by ``off_ms`` of silence.

    With ``seed`` every tone starts at random phases (reproducibly); otherwise at phase 0.
    """
    _check_rate(sample_rate)
    rng = np.random.default_rng(seed) if seed is not None else None
    on = _samples_for(on_ms, sample_rate, "on_ms")
    off = np.zeros(_samples_for(off_ms, sample_rate, "off_ms"))
    parts = [np.zeros(_samples_for(lead_ms, sample_rate, "lead_ms"))]
    for key in keys:
        phase = (0.0, 0.0) if rng is None else tuple(rng.uniform(0, 2 * np.pi, 2))
        tone = _tone_float(
            key,
            on,
            level_dbm0=level_dbm0,
            twist_db=twist_db,
            freq_offset_pct=0.0,
            sample_rate=sample_rate,
            phase=(float(phase[0]), float(phase[1])),
            ramp_ms=ramp_ms,
        )
        parts += [tone, off]
    return _to_int16(np.concatenate(parts))
