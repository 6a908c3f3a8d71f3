"""Echo guard: an in-band key whose tone pair we just sent ourselves is our own echo.

While a prompt plays, its echo (hybrid, handset acoustics) comes back in the inbound audio. A
prompt that contains a DTMF tone pair (a jingle, a recorded key beep, our own in-band DTMF)
would otherwise come back as a "key press". The guard remembers, for every outbound 20 ms
frame in which a DTMF row *and* column tone above the detector's level floor carry most of the
frame's energy (as they do in a tone pair, and do not in speech), which pair it was and when it
was sent. An in-band press of that pair whose onset lies within ``tail_ms`` after such a frame
is taken for echo.

Why "carry most of the energy" and not merely "strongest row and column": every speech frame
has *some* strongest row and column bin above the floor, so that weaker rule remembered a pair
for nearly every frame of a spoken prompt and swallowed real key presses made while the
assistant spoke — the one moment keys matter most.

Cost of a false suppression: a caller pressing exactly the key whose tones dominated our
prompt in the last ``tail_ms`` is missed; any other key passes. The tail covers the echo path
plus both jitter buffers (the inbound one adds up to 100 ms before the detector sees audio).

Pure: frames and times (ms) are passed in.
"""

from __future__ import annotations

import functools
from collections import deque
from typing import Final

import numpy as np
import numpy.typing as npt

from voxflow.media.dtmf.generator import level_to_amplitude
from voxflow.media.dtmf.keys import COLUMN_FREQUENCIES, ROW_FREQUENCIES, tone_pair

_RATE: Final = 8000
_FREQUENCIES: Final = np.array(ROW_FREQUENCIES + COLUMN_FREQUENCIES)
# Enough remembered tone frames for any sensible tail (64 x 20 ms = 1.28 s).
_MEMORY_FRAMES: Final = 64


@functools.cache
def _basis(samples: int) -> npt.NDArray[np.float64]:
    """[16, samples]: cos rows then sin rows at the eight DTMF frequencies."""
    phase = 2 * np.pi * _FREQUENCIES[:, None] * np.arange(samples)[None, :] / _RATE
    return np.concatenate([np.cos(phase), np.sin(phase)])


class OutboundToneGuard:
    """Remembers which DTMF tone pairs we sent recently; see the module docstring."""

    def __init__(
        self, *, tail_ms: float = 250.0, min_level_dbm0: float = -43.0, min_share: float = 0.5
    ) -> None:
        self.tail_ms = tail_ms
        # A clean pair carries ~100 % of its frame's energy; a pair mixed under speech or music
        # at equal level ~50 %. Speech frames put far less into the two tone bins.
        self._min_share = min_share
        # Default: a little below the detector's floor (-40 dBm0), so anything whose echo
        # could be detected at all is remembered.
        self._min_amplitude = level_to_amplitude(min_level_dbm0)
        self._sent: deque[tuple[float, float, float]] = deque(maxlen=_MEMORY_FRAMES)

    def record(self, samples: npt.NDArray[np.int16], sent_ms: float) -> None:
        """Note one outbound frame (8 kHz int16) sent at ``sent_ms``."""
        if samples.size == 0 or int(np.abs(samples).max()) < self._min_amplitude:
            return  # silence and quiet audio cannot carry a detectable pair
        x = samples.astype(np.float64)
        projection = _basis(x.size) @ x
        amplitude = 2 * np.hypot(projection[:8], projection[8:]) / x.size
        row, column = int(amplitude[:4].argmax()), 4 + int(amplitude[4:].argmax())
        if amplitude[row] < self._min_amplitude or amplitude[column] < self._min_amplitude:
            return
        # A sine of amplitude A has mean power A^2 / 2.
        tone_power = (amplitude[row] ** 2 + amplitude[column] ** 2) / 2
        if tone_power >= self._min_share * float(np.mean(x * x)):
            self._sent.append((sent_ms, float(_FREQUENCIES[row]), float(_FREQUENCIES[column])))

    def is_echo(self, key: str, onset_ms: float, at_ms: float) -> bool:
        """Whether an in-band press of ``key`` (begun ``onset_ms``, seen ``at_ms``) is our echo."""
        try:
            pair = tone_pair(key)
        except ValueError:
            return False
        return any(
            onset_ms - self.tail_ms <= sent_ms <= at_ms and (row, column) == pair
            for sent_ms, row, column in self._sent
        )

    def clear(self) -> None:
        """Forget everything sent (e.g. after a long hold)."""
        self._sent.clear()
