"""spandsp's DTMF receiver (Debian ``libspandsp2``) through ctypes — the reference peer.

Only the receiver is wrapped: ``dtmf_rx_init``, ``dtmf_rx_parms``, ``dtmf_rx``,
``dtmf_rx_set_realtime_callback``, ``dtmf_rx_fillin`` and ``dtmf_rx_free``. The realtime callback
is used instead of the digit buffer because it reports both the start (key code) and the end
(code 0) of every digit, and because the buffer silently drops digits beyond 128.

Report positions are only as exact as the chunks fed: a report raised while processing a chunk
is stamped with the sample index at the end of that chunk, so feed short chunks (e.g. 8 samples)
when timing matters and whole buffers when only the digit string matters.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

_LIBRARY_NAMES = ("libspandsp.so.2", "spandsp")

# void (*tone_report_func_t)(void *user_data, int code, int level, int delay)
_TONE_REPORT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int)


class SpandspUnavailableError(RuntimeError):
    """Debian's ``libspandsp2`` (``libspandsp.so.2``) could not be loaded."""


@cache
def load_spandsp() -> ctypes.CDLL:
    """Load ``libspandsp.so.2`` once and declare the receiver's C signatures."""
    errors = []
    for name in _LIBRARY_NAMES:
        path = name if name.endswith(".2") else ctypes.util.find_library(name)
        if path is None:
            continue
        try:
            lib = ctypes.CDLL(path)
            break
        except OSError as exc:
            errors.append(f"{path}: {exc}")
    else:
        raise SpandspUnavailableError(
            "spandsp's shared library is missing; install the Debian package libspandsp2 "
            f"({'; '.join(errors) or 'not found'})"
        )
    lib.dtmf_rx_init.restype = ctypes.c_void_p
    lib.dtmf_rx_init.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.dtmf_rx_parms.restype = None
    lib.dtmf_rx_parms.argtypes = [ctypes.c_void_p] + [ctypes.c_int] * 4
    lib.dtmf_rx_set_realtime_callback.restype = None
    lib.dtmf_rx_set_realtime_callback.argtypes = [ctypes.c_void_p, _TONE_REPORT, ctypes.c_void_p]
    lib.dtmf_rx.restype = ctypes.c_int
    lib.dtmf_rx.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    lib.dtmf_rx_fillin.restype = ctypes.c_int
    lib.dtmf_rx_fillin.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.dtmf_rx_free.restype = ctypes.c_int
    lib.dtmf_rx_free.argtypes = [ctypes.c_void_p]
    return lib


def spandsp_available() -> bool:
    """Whether the spandsp shared library can be loaded here."""
    try:
        load_spandsp()
    except SpandspUnavailableError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class SpandspReport:
    """One state change reported by spandsp: a digit started (``key``) or ended (``key=None``).

    ``sample`` is the input sample index at the end of the chunk whose processing raised it.
    """

    key: str | None
    sample: int
    level_dbm0: int


class SpandspDtmfReceiver:
    """One spandsp receiver (one channel); feed it int16 audio, collect its reports."""

    def __init__(
        self,
        *,
        filter_dialtone: bool = False,
        twist_db: int | None = None,
        reverse_twist_db: int | None = None,
        threshold_dbm0: int | None = None,
        reporting: bool = True,
    ) -> None:
        self._lib = load_spandsp()
        self._state: int | None = self._lib.dtmf_rx_init(None, None, None)
        if not self._state:
            raise SpandspUnavailableError("dtmf_rx_init returned NULL")
        self._reports: list[SpandspReport] = []
        self._fed = 0
        # The CFUNCTYPE object must outlive the C state that points at it. Without reporting,
        # spandsp keeps digits in its own buffer and no Python runs per digit (throughput runs).
        self._callback = _TONE_REPORT(self._on_report)
        if reporting:
            self._lib.dtmf_rx_set_realtime_callback(self._state, self._callback, None)
        # spandsp's own convention: negative / <= -99 means "leave unchanged".
        self._lib.dtmf_rx_parms(
            self._state,
            int(filter_dialtone),
            -1 if twist_db is None else twist_db,
            -1 if reverse_twist_db is None else reverse_twist_db,
            -99 if threshold_dbm0 is None else threshold_dbm0,
        )

    def _on_report(self, _user_data: int | None, code: int, level: int, _delay: int) -> None:
        key = chr(code) if code else None
        self._reports.append(SpandspReport(key, self._fed, level))

    def feed(self, samples: npt.NDArray[np.int16]) -> list[SpandspReport]:
        """Process ``samples`` (1-D int16) and return the reports they caused (if reporting)."""
        audio = np.ascontiguousarray(samples, dtype=np.int16)
        if audio.ndim != 1:
            raise ValueError(f"spandsp takes 1-D audio, got shape {audio.shape}")
        self._reports = []
        self._fed += len(audio)
        self._lib.dtmf_rx(self._state, audio.ctypes.data, len(audio))
        return self._reports

    def fill_in(self, samples: int) -> None:
        """Tell spandsp that ``samples`` of audio were lost (its concealment hook)."""
        self._fed += samples
        self._lib.dtmf_rx_fillin(self._state, samples)

    def close(self) -> None:
        """Free the C state (idempotent)."""
        if self._state:
            self._lib.dtmf_rx_free(self._state)
            self._state = None

    def __del__(self) -> None:
        self.close()


def spandsp_reports(
    samples: npt.NDArray[np.int16], *, chunk_samples: int | None = None
) -> list[SpandspReport]:
    """All reports of a fresh receiver over ``samples``, fed in chunks of ``chunk_samples``."""
    receiver = SpandspDtmfReceiver()
    try:
        step = len(samples) if chunk_samples is None else chunk_samples
        reports: list[SpandspReport] = []
        for start in range(0, len(samples), max(step, 1)):
            reports.extend(receiver.feed(samples[start : start + step]))
        return reports
    finally:
        receiver.close()


def detect_digits_spandsp(samples: npt.NDArray[np.int16]) -> str:
    """The digit string spandsp hears in 8 kHz int16 ``samples``."""
    return "".join(r.key for r in spandsp_reports(samples) if r.key is not None)


def digit_onsets_spandsp(
    samples: npt.NDArray[np.int16], *, chunk_samples: int = 8
) -> list[tuple[str, int]]:
    """``(key, sample index when spandsp reported its start)`` for every digit in ``samples``."""
    reports = spandsp_reports(samples, chunk_samples=chunk_samples)
    return [(r.key, r.sample) for r in reports if r.key is not None]


class SpandspChannelBank:
    """``channels`` independent spandsp receivers, for the throughput benchmark.

    Calls go straight to the C function with precomputed pointers, and no Python callback runs
    per digit, so the time measured is spandsp's own plus the bare ctypes call overhead.
    """

    def __init__(self, channels: int) -> None:
        self._receivers = [SpandspDtmfReceiver(reporting=False) for _ in range(channels)]
        self._dtmf_rx = load_spandsp().dtmf_rx
        self._states = [r._state for r in self._receivers]

    def process_rows(self, audio: npt.NDArray[np.int16]) -> None:
        """Feed row ``c`` of the ``[channels, n]`` array to receiver ``c``."""
        if audio.ndim != 2 or audio.shape[0] != len(self._states):
            raise ValueError(f"expected [{len(self._states)}, n] audio, got {audio.shape}")
        rows = np.ascontiguousarray(audio, dtype=np.int16)
        base = rows.ctypes.data
        stride = rows.strides[0]
        length = rows.shape[1]
        rx = self._dtmf_rx
        for index, state in enumerate(self._states):
            rx(state, base + index * stride, length)

    def close(self) -> None:
        """Free every receiver."""
        for receiver in self._receivers:
            receiver.close()
