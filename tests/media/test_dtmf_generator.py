from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from voxflow.errors import MediaError
from voxflow.media.dtmf import ALL_KEYS, tone_pair
from voxflow.media.dtmf.generator import generate_sequence, generate_tone, level_to_amplitude


def tone_levels(signal: npt.NDArray[np.int16], sample_rate: int, freqs: list[float]) -> list[float]:
    """Level in dBm0 of each frequency, by least squares on a sine/cosine pair."""
    t = np.arange(signal.size) / sample_rate
    levels = []
    for f in freqs:
        basis = np.stack([np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t)], axis=1)
        coef, *_ = np.linalg.lstsq(basis, signal.astype(np.float64), rcond=None)
        amplitude = float(np.hypot(*coef))
        levels.append(20 * np.log10(amplitude / level_to_amplitude(0.0)))
    return levels


def test_zero_dbm0_is_3_14_db_below_full_scale() -> None:
    assert 20 * np.log10(32767 / level_to_amplitude(0.0)) == pytest.approx(3.14)


@pytest.mark.parametrize("key", sorted(ALL_KEYS))
def test_each_key_has_its_two_tones_at_the_requested_level(key: str) -> None:
    tone = generate_tone(key, 500, level_dbm0=-7.0)
    assert tone.dtype == np.int16 and tone.size == 4000
    row_level, column_level = tone_levels(tone, 8000, list(tone_pair(key)))
    assert row_level == pytest.approx(-7.0, abs=0.05)
    assert column_level == pytest.approx(-7.0, abs=0.05)


def test_positive_twist_makes_the_row_tone_stronger() -> None:
    tone = generate_tone("5", 500, level_dbm0=-10.0, twist_db=6.0)
    row_level, column_level = tone_levels(tone, 8000, list(tone_pair("5")))
    assert row_level - column_level == pytest.approx(6.0, abs=0.05)
    assert (row_level + column_level) / 2 == pytest.approx(-10.0, abs=0.05)


def test_frequency_offsets_apply_to_both_or_each_tone() -> None:
    row, column = tone_pair("1")
    both = generate_tone("1", 500, freq_offset_pct=2.0)
    assert min(tone_levels(both, 8000, [row * 1.02, column * 1.02])) > -10.1
    split = generate_tone("1", 500, freq_offset_pct=(-3.0, 1.0))
    assert min(tone_levels(split, 8000, [row * 0.97, column * 1.01])) > -10.1
    assert max(tone_levels(split, 8000, [row, column * 1.02])) < -25


def test_sixteen_khz_and_phase() -> None:
    tone = generate_tone("9", 20, sample_rate=16000, phase=(np.pi / 2, np.pi / 2))
    assert tone.size == 320
    # Both sines start at their peak.
    assert tone[0] == round(2 * level_to_amplitude(-10.0))


def test_ramp_softens_the_edges() -> None:
    tone = generate_tone("0", 50, ramp_ms=2, phase=(1.0, 2.0))
    assert abs(int(tone[0])) < 300 and abs(int(tone[-1])) < 300
    assert np.max(np.abs(tone[16:-16])) > 5000


def test_loud_tones_clip_instead_of_wrapping() -> None:
    tone = generate_tone("D", 100, level_dbm0=3.0)
    assert tone.max() == 32767 and tone.min() == -32768


def test_sequence_layout() -> None:
    seq = generate_sequence("12", on_ms=50, off_ms=30, lead_ms=10)
    assert seq.size == 80 + 2 * (400 + 240)
    assert not seq[:80].any()
    assert seq[80:480].all() or np.count_nonzero(seq[80:480]) > 390
    assert not seq[480:720].any()
    assert np.array_equal(seq[80:480], generate_tone("1", 50))


def test_seeded_sequences_are_reproducible_and_phases_vary() -> None:
    a = generate_sequence("55", on_ms=40, off_ms=0, seed=3)
    b = generate_sequence("55", on_ms=40, off_ms=0, seed=3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a[:320], a[320:])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: generate_tone("E", 10), "not a DTMF key"),
        (lambda: generate_tone("1", -5), "duration_ms must not be negative"),
        (lambda: generate_tone("1", 10, sample_rate=0), "sample_rate must be positive"),
        (lambda: generate_sequence("1x"), "'x' is not a DTMF key"),
    ],
)
def test_bad_arguments_are_refused(call: object, message: str) -> None:
    with pytest.raises(MediaError, match=message):
        call()  # type: ignore[operator]
