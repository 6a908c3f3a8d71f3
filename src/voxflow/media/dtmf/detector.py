"""In-band DTMF detection for many calls at once (ITU-T Q.24, AT&T column).

Design (pure, deterministic; time is passed in):

* Audio is cut into 5 ms sub-blocks (40 samples at 8 kHz). One matrix product turns every
  sub-block of every channel into complex DFT values at the eight DTMF frequencies.
* A tone window is three consecutive sub-blocks (15 ms), combined coherently from the sub-block
  values, evaluated every 5 ms. 120 samples put the neighbouring rows/columns near a spectral
  null (≥ 20 dB rejection) while losing < 2 dB at ±1.5 % off-frequency.
* Per window, as in the spandsp/Asterisk reference design: strongest row and column above a
  level floor, twist within limits, the other tones of each group well below the strongest,
  and the pair carrying most of the window's (DC-free) energy. On top of that:
  - frequency: the phase advance between the window's two 80-sample halves measures each
    tone's offset, so ±3.5 % is rejected at every tone (a Goertzel bin alone is too wide);
    the measured powers are corrected for that offset before the level/twist tests;
  - steadiness: every 5 ms sub-block must carry the tone, which rejects partly covered
    windows (exact duration limits) and the gliding formants of speech (talk-off).
* A press starts after ``hits_to_start`` consecutive agreeing windows (≈ 35 ms of tone) and ends
  after ``misses_to_end`` consecutive non-agreeing windows (a 10 ms gap is bridged, a 40 ms pause
  separates). Windows that touch audio flagged lost neither hit nor miss.
* A cheap gate runs on all channels; the finer tests only on the few windows passing it, and the
  state machine only on channels with something going on, so quiet calls cost almost nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from voxflow.errors import MediaError
from voxflow.media.dtmf.events import DtmfSource, KeyDown, KeyUp
from voxflow.media.dtmf.generator import level_to_amplitude
from voxflow.media.dtmf.keys import COLUMN_FREQUENCIES, KEYPAD, ROW_FREQUENCIES

DtmfEvent = KeyDown | KeyUp

RATE: Final = 8000
SUB_BLOCK: Final = 40
_SUB_MS: Final = SUB_BLOCK * 1000.0 / RATE
_WINDOW: Final = 3 * SUB_BLOCK
_WINDOW_MS: Final = _WINDOW * 1000.0 / RATE
_FREQS: Final = np.array(ROW_FREQUENCIES + COLUMN_FREQUENCIES)
_KEYS: Final = tuple(key for row in KEYPAD for key in row)  # index = row * 4 + column
_MISS: Final = -1
_FROZEN: Final = -2
_GATE_LOSS: Final = 0.5  # the gate allows for 3 dB of off-frequency loss (±1.5 % costs ≤ 2)


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """Decision limits; the defaults implement Q.24 (AT&T column) with margins."""

    min_level_dbm0: float = -40.0
    normal_twist_db: float = 10.0
    reverse_twist_db: float = 6.5
    relative_peak_db: float = 8.0
    min_energy_share: float = 0.8
    max_freq_offset_pct: float = 2.5
    min_steadiness: float = 0.3
    hits_to_start: int = 5
    misses_to_end: int = 7


@functools.cache
def _frame_basis(sub_blocks: int) -> npt.NDArray[np.float32]:
    """[sub_blocks, 17, 40]: rows cos, then -sin per DTMF frequency (phase from frame start),
    then ones.

    Referencing every sub-block to the frame start makes a window a plain sum of sub-blocks.
    """
    n = np.arange(sub_blocks)[:, None, None] * SUB_BLOCK + np.arange(SUB_BLOCK)[None, None, :]
    w = 2 * np.pi * _FREQS[None, :, None] / RATE
    # A last row of ones gives each sub-block's sample sum (for DC removal) in the same product.
    ones = np.ones((sub_blocks, 1, SUB_BLOCK))
    return np.concatenate([np.cos(w * n), -np.sin(w * n), ones], axis=1).astype(np.float32)


def _halfband_filter(taps: int = 47) -> npt.NDArray[np.float32]:
    """Kaiser-windowed low-pass at 3.6 kHz for 16 kHz → 8 kHz decimation."""
    n = np.arange(taps) - (taps - 1) / 2
    h: npt.NDArray[np.float64] = 0.45 * np.sinc(0.45 * n) * np.kaiser(taps, 8.0)
    normalised: npt.NDArray[np.float32] = (h / h.sum()).astype(np.float32)
    return normalised


_DECIMATOR: Final = _halfband_filter()

# Flags of the press automaton's transitions.
_RESTART: Final = 1  # a new candidate run begins here (onset estimate)
_PRESS_HIT: Final = 2  # the current press is confirmed here (last tone time)
_END: Final = 4  # the press held so far ends here
_START: Final = 8  # a press starts here


@dataclass(frozen=True, slots=True)
class _Automaton:
    """Press state machine as tables: state = (candidate key, run, press key, miss run)."""

    next_state: npt.NDArray[np.int16]  # [states * inputs]
    flags: npt.NDArray[np.uint8]  # [states * inputs]
    press_key: npt.NDArray[np.int8]  # [states]: key index held, or -1
    idle: int  # no candidate, no press
    inputs: int


@functools.cache
def _automaton(hits_to_start: int, misses_to_end: int) -> _Automaton:
    """Build the transition tables for every (state, window code) pair at once.

    Codes: ``_FROZEN`` (window touches lost audio: no change), ``_MISS``, or a key index. A run of
    ``hits_to_start`` equal hits starts a press (ending a different one); ``misses_to_end``
    windows that do not confirm the press end it.
    """
    keys, runs, moves = 17, hits_to_start + 1, misses_to_end
    inputs = 18
    shape = (keys, runs, keys, moves, inputs)
    ck, cr, pk, mr, code = (a.ravel() for a in np.indices(shape))
    ck, pk, code = ck - 1, pk - 1, code - 2
    flags = np.zeros(ck.size, dtype=np.uint8)
    hit = code >= 0
    counted = code != _FROZEN
    same = hit & (code == ck)
    flags[hit & ~same] |= _RESTART
    new_cr = np.where(same, np.minimum(cr + 1, hits_to_start), np.where(hit, 1, 0))
    new_cr = np.where(counted, new_cr, cr)
    new_ck = np.where(hit, code, np.where(counted, _MISS, ck))
    in_press = pk >= 0
    confirms = in_press & hit & (code == pk)
    flags[confirms] |= _PRESS_HIT
    new_mr = np.where(confirms, 0, np.where(in_press & counted, mr + 1, mr))
    reached = (new_cr == hits_to_start) & (np.where(same, cr, 0) == hits_to_start - 1)
    starts = hit & reached & (new_ck != pk)
    ends = in_press & ((new_mr >= misses_to_end) | starts)
    flags[ends] |= _END
    flags[starts] |= _START | _PRESS_HIT
    new_pk = np.where(starts, new_ck, np.where(ends, _MISS, pk))
    new_mr = np.where(starts | ends, 0, new_mr)
    state = np.ravel_multi_index((new_ck + 1, new_cr, new_pk + 1, new_mr), shape[:4])
    press_key = np.indices(shape[:4])[2].ravel() - 1
    return _Automaton(
        next_state=state.astype(np.int16),
        flags=flags,
        press_key=press_key.astype(np.int8),
        idle=int(np.ravel_multi_index((0, 0, 0, 0), shape[:4])),
        inputs=inputs,
    )


def _latest(
    flags: npt.NDArray[np.uint8],
    flag: int,
    values: npt.NDArray[np.float64],
    carried: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Per row and position: ``values`` at the latest position ≤ it with ``flag`` set, or
    ``carried`` (the value from earlier frames) when there is none."""
    positions = np.where(flags & flag, np.arange(flags.shape[1]), -1)
    latest = np.maximum.accumulate(positions, axis=1)
    picked = np.take_along_axis(values, np.maximum(latest, 0), axis=1)
    return np.where(latest >= 0, picked, carried[:, None])


_PER_CHANNEL: Final[tuple[tuple[str, tuple[int, ...], type], ...]] = (
    ("_spectra_hist", (2, 16), np.float32),
    ("_s1_hist", (2,), np.float32),
    ("_s2_hist", (2,), np.float32),
    ("_lost_hist", (2,), np.bool_),
    ("_decim_hist", (_DECIMATOR.size - 1,), np.float32),
    ("_state", (), np.int16),
    ("_cand_onset", (), np.float64),
    ("_press_onset", (), np.float64),
    ("_last_hit", (), np.float64),
    ("_in_use", (), np.bool_),
)


class BatchDtmfDetector:
    """In-band DTMF detector for ``channels`` calls, fed one ``[channels, samples]`` array per tick.

    Rows are slots: :meth:`add_channel` hands out a free slot (growing the batch when none is
    free), :meth:`remove_channel` frees one; rows of free slots are ignored. Frames are 8 kHz
    (or 16 kHz, decimated internally) int16, a multiple of 5 ms long (20 ms = 160 samples is the
    usual). ``now_ms`` is the time of the first sample of the frame.
    """

    # Per-channel state; the channel is the last axis (see _PER_CHANNEL).
    _spectra_hist: npt.NDArray[np.float32]  # last two sub-blocks' spectra, next frame's phase
    _s1_hist: npt.NDArray[np.float32]  # their sample sums
    _s2_hist: npt.NDArray[np.float32]  # their energies
    _lost_hist: npt.NDArray[np.bool_]
    _decim_hist: npt.NDArray[np.float32]  # 16 kHz input tail for the decimation filter
    _state: npt.NDArray[np.int16]  # press automaton state
    _cand_onset: npt.NDArray[np.float64]
    _press_onset: npt.NDArray[np.float64]
    _last_hit: npt.NDArray[np.float64]
    _in_use: npt.NDArray[np.bool_]

    def __init__(
        self,
        channels: int = 0,
        *,
        sample_rate: int = RATE,
        settings: DetectorSettings | None = None,
    ) -> None:
        if sample_rate not in (8000, 16000):
            raise MediaError(f"DTMF detection needs 8000 or 16000 Hz audio, got {sample_rate}")
        if channels < 0:
            raise MediaError(f"channel count must not be negative, got {channels}")
        self.sample_rate = sample_rate
        self.settings = s = settings or DetectorSettings()
        if s.hits_to_start < 1 or s.misses_to_end < 1:
            raise MediaError("hits_to_start and misses_to_end must be at least 1")
        self._automaton = _automaton(s.hits_to_start, s.misses_to_end)
        window_gain = (level_to_amplitude(s.min_level_dbm0) * _WINDOW / 2) ** 2
        self._min_power = window_gain
        self._gate_power = np.float32(window_gain * _GATE_LOSS)
        self._normal_twist = 10 ** (s.normal_twist_db / 10)
        self._reverse_twist = 10 ** (s.reverse_twist_db / 10)
        self._relative_peak = 10 ** (-s.relative_peak_db / 10)
        self._gate_peak = np.float32(self._relative_peak * 1.01)  # float32 rounding slack
        # Tone energy of a window is 2|X|²/N; the share test compares it with the window energy.
        self._share = s.min_energy_share * _WINDOW / 2
        self._gate_share = np.float32(self._share * _GATE_LOSS)
        self._max_phase = 2 * np.pi * s.max_freq_offset_pct / 100 * _FREQS * SUB_BLOCK / RATE
        self._resize(0)
        for _ in range(channels):
            self.add_channel()

    # -- channel slots -------------------------------------------------------------------------

    @property
    def channels(self) -> int:
        """Number of slots (rows every frame array must have)."""
        return int(self._in_use.size)

    @property
    def in_use(self) -> npt.NDArray[np.bool_]:
        """Which slots belong to a live channel (read-only view)."""
        view = self._in_use.view()
        view.flags.writeable = False
        return view

    def add_channel(self) -> int:
        """Claim a free slot (or grow by one) with fresh state; return its row index."""
        free = np.flatnonzero(~self._in_use)
        slot = int(free[0]) if free.size else self.channels
        if slot == self.channels:
            self._resize(slot + 1)
        self._reset(slot)
        self._in_use[slot] = True
        return slot

    def remove_channel(self, slot: int) -> None:
        """Free ``slot``; a press in progress is dropped without a ``KeyUp``."""
        self._check_slot(slot)
        self._reset(slot)
        self._in_use[slot] = False

    def reset_channel(self, slot: int) -> None:
        """Forget the history of ``slot`` (e.g. after a codec change or a long hold)."""
        self._check_slot(slot)
        self._reset(slot)

    def _check_slot(self, slot: int) -> None:
        if not 0 <= slot < self.channels or not self._in_use[slot]:
            raise MediaError(f"DTMF detector has no live channel in slot {slot}")

    def _resize(self, channels: int) -> None:
        """Resize every per-channel array (channel = last axis) to ``channels``, keeping rows."""
        for name, lead, dtype in _PER_CHANNEL:
            old = getattr(self, name, None)
            new: npt.NDArray[np.generic] = np.zeros((*lead, channels), dtype=dtype)
            if old is not None:
                kept = min(channels, old.shape[-1])
                new[..., :kept] = old[..., :kept]
            setattr(self, name, new)

    def _reset(self, slot: int) -> None:
        self._spectra_hist[..., slot] = 0
        self._s1_hist[..., slot] = 0
        self._s2_hist[..., slot] = 0
        self._lost_hist[..., slot] = True  # no history yet: the first windows neither hit nor miss
        self._decim_hist[..., slot] = 0
        self._state[slot] = self._automaton.idle

    # -- processing ----------------------------------------------------------------------------

    def process(
        self,
        frames: npt.ArrayLike,
        now_ms: float | npt.ArrayLike,
        lost: npt.ArrayLike | None = None,
    ) -> list[tuple[int, DtmfEvent]]:
        """Feed one frame per slot; return ``(slot, event)`` pairs in time order.

        ``lost[c]`` marks slot ``c``'s frame as lost/concealed: windows touching it neither
        start nor end a press. ``now_ms`` is a scalar or one time per slot.
        """
        x = self._as_frames(frames)
        lost_flags = self._as_lost(lost)
        if self.sample_rate == 16000:
            x = self._decimate(x)
        codes = self._classify(x, lost_flags)
        times = np.broadcast_to(np.asarray(now_ms, dtype=np.float64), (self.channels,))
        return self._advance(codes, times)

    def _as_frames(self, frames: npt.ArrayLike) -> npt.NDArray[np.float32]:
        array = np.asarray(frames)
        if array.dtype != np.int16:
            raise MediaError(f"DTMF frames must be int16, got dtype {array.dtype}")
        if array.ndim != 2 or array.shape[0] != self.channels:
            raise MediaError(
                f"DTMF frames must have shape [{self.channels}, samples], got {array.shape}"
            )
        step = SUB_BLOCK * self.sample_rate // RATE
        if array.shape[1] == 0 or array.shape[1] % step:
            raise MediaError(
                f"DTMF frames must be a positive multiple of 5 ms ({step} samples at "
                f"{self.sample_rate} Hz), got {array.shape[1]} samples"
            )
        return array.astype(np.float32)

    def _as_lost(self, lost: npt.ArrayLike | None) -> npt.NDArray[np.bool_]:
        if lost is None:
            return ~self._in_use
        flags = np.asarray(lost, dtype=bool)
        if flags.shape != (self.channels,):
            raise MediaError(f"lost flags must have shape [{self.channels}], got {flags.shape}")
        return flags | ~self._in_use

    def _decimate(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        padded = np.concatenate([self._decim_hist.T, x], axis=1)
        self._decim_hist = np.ascontiguousarray(padded[:, -(_DECIMATOR.size - 1) :].T)
        windows = np.lib.stride_tricks.sliding_window_view(padded, _DECIMATOR.size, axis=1)
        return np.ascontiguousarray(windows[:, 1::2] @ _DECIMATOR[::-1])

    def _classify(
        self, x: npt.NDArray[np.float32], lost: npt.NDArray[np.bool_]
    ) -> npt.NDArray[np.int8]:
        """Per window position: key index, ``_MISS`` or ``_FROZEN``; shape [channels, n_sub]."""
        c = x.shape[0]
        p = x.shape[1] // SUB_BLOCK
        blocks = x.reshape(c, p, SUB_BLOCK)
        # [sub-block, (re, im) x 8 frequencies, channel]: each slice below is contiguous.
        fresh = np.matmul(_frame_basis(p), blocks.transpose(1, 2, 0))
        spectra = np.concatenate([self._spectra_hist, fresh[:, :16]], axis=0)
        s1 = np.concatenate([self._s1_hist, fresh[:, 16]], axis=0)
        s2 = np.concatenate([self._s2_hist, np.einsum("cpn,cpn->pc", blocks, blocks)], axis=0)
        lost_subs = np.concatenate([self._lost_hist, np.broadcast_to(lost, (p, c))], axis=0)
        self._keep_history(spectra, s1, s2, lost_subs, p)

        window = spectra[:p] + spectra[1 : p + 1] + spectra[2:]
        window *= window
        power = window[:, :8] + window[:, 8:]  # [p, 8, c]
        sum1 = s1[:p] + s1[1 : p + 1] + s1[2:]
        energy = s2[:p] + s2[1 : p + 1] + s2[2:] - sum1 * sum1 / _WINDOW
        frozen = lost_subs[:p] | lost_subs[1 : p + 1] | lost_subs[2:]

        best_row = power[:, :4].max(axis=1)
        best_col = power[:, 4:].max(axis=1)
        gate = (best_row >= self._gate_power) & (best_col >= self._gate_power)
        gate &= best_row + best_col >= self._gate_share * energy
        # The relative-peak test needs no frequency correction, so it is exact here already and
        # keeps speech windows out of the costlier tests.
        gate &= power[:, :4].sum(axis=1) - best_row <= best_row * self._gate_peak
        gate &= power[:, 4:].sum(axis=1) - best_col <= best_col * self._gate_peak
        gate &= ~frozen
        codes = np.where(frozen, np.int8(_FROZEN), np.int8(_MISS))
        pi, ci = np.nonzero(gate)
        if pi.size:
            codes[pi, ci] = self._confirm(spectra, pi, ci, energy[pi, ci])
        return np.ascontiguousarray(codes.T)

    def _keep_history(
        self,
        spectra: npt.NDArray[np.float32],
        s1: npt.NDArray[np.float32],
        s2: npt.NDArray[np.float32],
        lost_subs: npt.NDArray[np.bool_],
        sub_blocks: int,
    ) -> None:
        """Carry the last two sub-blocks over, re-referenced to the next frame's start."""
        turn = 2 * np.pi * _FREQS * SUB_BLOCK * sub_blocks / RATE
        cos, sin = np.cos(turn)[:, None], np.sin(turn)[:, None]
        re, im = spectra[-2:, :8], spectra[-2:, 8:]
        hist = np.empty_like(spectra[-2:])
        hist[:, :8] = re * cos - im * sin
        hist[:, 8:] = re * sin + im * cos
        self._spectra_hist = hist
        self._s1_hist, self._s2_hist = s1[-2:].copy(), s2[-2:].copy()
        self._lost_hist = lost_subs[-2:].copy()

    def _confirm(
        self,
        spectra: npt.NDArray[np.float32],
        pi: npt.NDArray[np.intp],
        ci: npt.NDArray[np.intp],
        energy: npt.NDArray[np.float32],
    ) -> npt.NDArray[np.int8]:
        """Full tests on the windows that passed the gate; return key index or ``_MISS``."""
        s = self
        picked = spectra[pi[:, None] + np.arange(3), :, ci[:, None]].astype(np.float64)
        pieces = picked[:, :, :8] + 1j * picked[:, :, 8:]  # [K, 3 sub-blocks, 8]
        early = pieces[:, 0] + pieces[:, 1]
        late = pieces[:, 1] + pieces[:, 2]
        window = early + pieces[:, 2]
        power = window.real**2 + window.imag**2
        k = np.arange(power.shape[0])[:, None]
        tone = np.stack([power[:, :4].argmax(axis=1), power[:, 4:].argmax(axis=1) + 4], axis=1)
        # Phase advance over one sub-block beyond the nominal frequency's (common reference).
        phase = np.angle(late[k, tone] * np.conj(early[k, tone]))
        on_frequency = np.all(np.abs(phase) <= s._max_phase[tone], axis=1)
        # Undo the rectangular window's loss at the measured offset (Dirichlet kernel).
        cycles = phase / (2 * np.pi) * (_WINDOW / SUB_BLOCK)
        loss = np.abs(np.sinc(cycles) / np.sinc(cycles / _WINDOW))
        tone_power = power[k, tone] / np.maximum(loss, 0.25) ** 2
        p_row, p_col = tone_power[:, 0], tone_power[:, 1]
        best = power[k, tone]
        hit = on_frequency
        hit &= (p_row >= s._min_power) & (p_col >= s._min_power)
        hit &= (p_col <= p_row * s._reverse_twist) & (p_row <= p_col * s._normal_twist)
        hit &= power[:, :4].sum(axis=1) - best[:, 0] <= best[:, 0] * s._relative_peak
        hit &= power[:, 4:].sum(axis=1) - best[:, 1] <= best[:, 1] * s._relative_peak
        hit &= p_row + p_col >= s._share * energy
        # Every 5 ms piece of the window must carry both tones.
        magnitude = np.abs(pieces[k[:, :, None], np.arange(3)[None, :, None], tone[:, None, :]])
        steady = magnitude.min(axis=1) >= s.settings.min_steadiness * magnitude.mean(axis=1)
        hit &= np.all(steady, axis=1)
        return np.where(hit, tone[:, 0] * 4 + tone[:, 1] - 4, _MISS).astype(np.int8)

    def _advance(
        self, codes: npt.NDArray[np.int8], now_ms: npt.NDArray[np.float64]
    ) -> list[tuple[int, DtmfEvent]]:
        """Run the press automaton over the window codes of the channels with anything going on."""
        auto = self._automaton
        busy = np.flatnonzero((self._state != auto.idle) | (codes >= 0).any(axis=1))
        if not busy.size:
            return []
        codes = codes[busy]
        n_pos = codes.shape[1]
        state = self._state[busy].astype(np.intp)
        flags = np.empty(codes.shape, dtype=np.uint8)
        held = np.empty((busy.size, n_pos + 1), dtype=np.int8)  # press key before each position
        held[:, 0] = auto.press_key[state]
        for position in range(n_pos):
            transition = state * auto.inputs + (codes[:, position] + 2)
            flags[:, position] = auto.flags[transition]
            state = auto.next_state[transition].astype(np.intp)
            held[:, position + 1] = auto.press_key[state]
        self._state[busy] = state

        at = now_ms[busy][:, None] + (np.arange(n_pos) + 1) * _SUB_MS
        carried_hit, carried_onset = self._last_hit[busy], self._press_onset[busy]
        cand_onset = _latest(flags, _RESTART, at - _WINDOW_MS, self._cand_onset[busy])
        last_hit = _latest(flags, _PRESS_HIT, at, carried_hit)
        press_onset = _latest(flags, _START, cand_onset, carried_onset)
        self._cand_onset[busy] = cand_onset[:, -1]
        self._last_hit[busy] = last_hit[:, -1]
        self._press_onset[busy] = press_onset[:, -1]

        rows, positions = np.nonzero(flags & (_START | _END))
        if not rows.size:
            return []
        # A press ending at a position was last confirmed, and began, before that position.
        hit_before = np.concatenate([carried_hit[:, None], last_hit[:, :-1]], axis=1)
        onset_before = np.concatenate([carried_onset[:, None], press_onset[:, :-1]], axis=1)
        events: list[tuple[int, DtmfEvent]] = []
        for row, pos in zip(rows.tolist(), positions.tolist(), strict=True):
            slot, flag, when = int(busy[row]), int(flags[row, pos]), float(at[row, pos])
            if flag & _END:
                duration = float(hit_before[row, pos] - onset_before[row, pos])
                key = _KEYS[held[row, pos]]
                events.append((slot, KeyUp(key, DtmfSource.INBAND, when, duration)))
            if flag & _START:
                key, onset = _KEYS[held[row, pos + 1]], float(cand_onset[row, pos])
                events.append((slot, KeyDown(key, DtmfSource.INBAND, when, onset)))
        events.sort(key=lambda item: item[1].at_ms)  # stable: KeyUp stays before its KeyDown
        return events


class DtmfDetector:
    """In-band DTMF detector for one call: the batched detector with a single channel."""

    def __init__(
        self, *, sample_rate: int = RATE, settings: DetectorSettings | None = None
    ) -> None:
        self._batch = BatchDtmfDetector(1, sample_rate=sample_rate, settings=settings)

    @property
    def sample_rate(self) -> int:
        """Sample rate of the frames this detector expects."""
        return self._batch.sample_rate

    def process(self, frame: npt.ArrayLike, now_ms: float, lost: bool = False) -> list[DtmfEvent]:
        """Feed one frame (int16, a multiple of 5 ms; ``now_ms`` = its first sample's time)."""
        samples = np.asarray(frame)
        if samples.ndim != 1:
            raise MediaError(f"a DTMF frame must be one-dimensional, got shape {samples.shape}")
        events = self._batch.process(samples[None, :], now_ms, np.array([lost]))
        return [event for _, event in events]

    def reset(self) -> None:
        """Forget all history."""
        self._batch.reset_channel(0)


def detect_digits(samples: npt.ArrayLike, sample_rate: int = RATE) -> str:
    """Return the keys pressed in a whole recording (offline convenience)."""
    audio = np.asarray(samples)
    if audio.dtype != np.int16 or audio.ndim != 1:
        raise MediaError(f"detect_digits needs a 1-D int16 array, got {audio.ndim}-D {audio.dtype}")
    if sample_rate not in (8000, 16000):
        raise MediaError(f"DTMF detection needs 8000 or 16000 Hz audio, got {sample_rate}")
    frame = 160 * sample_rate // RATE
    # Trailing silence lets a press that runs to the end of the recording finish.
    padded = np.concatenate(
        [audio, np.zeros(-audio.size % frame + 5 * frame, dtype=np.int16)]
    ).reshape(-1, frame)
    detector = DtmfDetector(sample_rate=sample_rate)
    keys = []
    for index, chunk in enumerate(padded):
        for event in detector.process(chunk, index * 20.0):
            if isinstance(event, KeyDown):
                keys.append(event.key)
    return "".join(keys)
