"""The in-band detector against the ITU-T Q.24 (AT&T) limits and the failure modes of dtmf.md §6.

Most cases run many signals at once through one ``BatchDtmfDetector`` (one row each), which
also exercises the batched path; a few compare it with the one-call ``DtmfDetector``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from voxflow.errors import MediaError
from voxflow.media.dtmf import (
    ALL_KEYS,
    BatchDtmfDetector,
    DtmfDetector,
    DtmfEvent,
    DtmfSource,
    KeyDown,
    KeyUp,
    detect_digits,
    generate_sequence,
    generate_tone,
    level_to_amplitude,
    tone_pair,
)
from voxflow.media.g711 import Codec

Signal = npt.NDArray[np.int16]
KEYS = sorted(ALL_KEYS)
ROW_KEYS = "147*"  # one key per row
COLUMN_KEYS = "123A"  # one key per column
RNG = np.random.default_rng(20240601)


def silence(ms: float, rate: int = 8000) -> Signal:
    return np.zeros(round(ms * rate / 1000), dtype=np.int16)


def tone(key: str, ms: float, **kwargs: object) -> Signal:
    """A tone at random start phases (alignment and phase both matter to block detectors)."""
    phase = (float(RNG.uniform(0, 2 * np.pi)), float(RNG.uniform(0, 2 * np.pi)))
    return generate_tone(key, ms, phase=phase, **kwargs)  # type: ignore[arg-type]


def through(codec: Codec, signal: Signal) -> Signal:
    return codec.decode_codes(codec.encode_samples(signal))


def pad(signal: Signal, offset: int) -> Signal:
    """Delay by ``offset`` samples (moves the tone across sub-block and frame boundaries)."""
    return np.concatenate([np.zeros(offset, dtype=np.int16), signal])


def run(
    signals: Sequence[Signal],
    *,
    lost_frames: Sequence[Sequence[int]] | None = None,
    rate: int = 8000,
) -> list[list[DtmfEvent]]:
    """Events per signal, all signals through one batch, 20 ms frames, 200 ms of tail."""
    frame = 160 * rate // 8000
    length = max(s.size for s in signals) + 10 * frame
    length += -length % frame
    audio = np.zeros((len(signals), length), dtype=np.int16)
    for row, signal in enumerate(signals):
        audio[row, : signal.size] = signal
    lost = np.zeros((len(signals), length // frame), dtype=bool)
    for row, frames in enumerate(lost_frames or []):
        lost[row, list(frames)] = True
    detector = BatchDtmfDetector(len(signals), sample_rate=rate)
    events: list[list[DtmfEvent]] = [[] for _ in signals]
    for index in range(length // frame):
        chunk = audio[:, index * frame : (index + 1) * frame]
        for row, event in detector.process(chunk, index * 20.0, lost[:, index]):
            events[row].append(event)
    return events


def pressed(events: list[DtmfEvent]) -> str:
    return "".join(e.key for e in events if isinstance(e, KeyDown))


def assert_well_formed(events: list[DtmfEvent]) -> None:
    """Presses alternate KeyDown/KeyUp of the same key, all in-band, time ordered."""
    assert all(e.source is DtmfSource.INBAND for e in events)
    assert [type(e) for e in events] == [KeyDown, KeyUp] * (len(events) // 2)
    assert [e.at_ms for e in events] == sorted(e.at_ms for e in events)
    for down, up in zip(events[::2], events[1::2], strict=True):
        assert down.key == up.key


# -- decode matrix ----------------------------------------------------------------------------


@pytest.mark.parametrize("codec", list(Codec))
def test_every_key_at_every_alignment_through_g711(codec: Codec) -> None:
    offsets = range(0, 160, 9)  # across the 5 ms sub-block and the 20 ms frame
    cases = [(key, offset) for key in KEYS for offset in offsets]
    signals = [
        through(codec, pad(tone(key, 50, level_dbm0=-4.0 - 6 * (i % 2)), offset))
        for i, (key, offset) in enumerate(cases)
    ]
    for (key, _), events in zip(cases, run(signals), strict=True):
        assert pressed(events) == key
        assert_well_formed(events)
        assert events[1].duration_ms == pytest.approx(50, abs=6)  # type: ignore[union-attr]


# -- frequency tolerance ----------------------------------------------------------------------


def offset_signals(percent: float) -> tuple[list[str], list[Signal]]:
    """Every row tone and every column tone shifted by ``percent`` (the other tone exact)."""
    keys, signals = [], []
    for key in ROW_KEYS:
        keys.append(key)
        signals.append(through(Codec.PCMU, tone(key, 60, freq_offset_pct=(percent, 0.0))))
    for key in COLUMN_KEYS:
        keys.append(key)
        signals.append(through(Codec.PCMA, tone(key, 60, freq_offset_pct=(0.0, percent))))
    return keys, signals


@pytest.mark.parametrize("percent", [-1.5, -1.0, 1.0, 1.5])
def test_each_tone_within_1_5_percent_is_accepted(percent: float) -> None:
    keys, signals = offset_signals(percent)
    assert [pressed(e) for e in run(signals)] == keys


@pytest.mark.parametrize("percent", [-5.0, -4.0, -3.5, 3.5, 4.0, 5.0])
def test_each_tone_off_by_3_5_percent_or_more_is_rejected(percent: float) -> None:
    # 697 Hz included: the plain 102-sample Goertzel design accepts it down to -4.5 %.
    keys, signals = offset_signals(percent)
    assert [pressed(e) for e in run(signals)] == [""] * len(keys)


def test_both_tones_off_together() -> None:
    accept = [tone(k, 60, freq_offset_pct=1.5 * s) for k in "5D" for s in (-1, 1)]
    reject = [tone(k, 60, freq_offset_pct=3.5 * s) for k in "5D" for s in (-1, 1)]
    assert [pressed(e) for e in run(accept + reject)] == ["5", "5", "D", "D"] + [""] * 4


# -- timing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("ms", "expected"), [(40, "9"), (45, "9"), (23, ""), (20, ""), (15, "")])
def test_duration_40_ms_accepted_23_ms_rejected_at_any_alignment(ms: int, expected: str) -> None:
    signals = [through(Codec.PCMU, pad(tone("9", ms), offset)) for offset in range(0, 160, 4)]
    assert {pressed(e) for e in run(signals)} == {expected}


@pytest.mark.parametrize("gap_ms", [1, 5, 10])
def test_interruptions_up_to_10_ms_do_not_split_a_press(gap_ms: int) -> None:
    signals = [
        pad(np.concatenate([tone("3", 90), silence(gap_ms), tone("3", 100)]), offset)
        for offset in range(0, 160, 11)
    ]
    dipped = [np.concatenate([tone("3", 90), tone("3", gap_ms, level_dbm0=-30), tone("3", 100)])]
    for events in run(signals + dipped):
        assert pressed(events) == "3"
        assert events[1].duration_ms == pytest.approx(190 + gap_ms, abs=8)  # type: ignore[union-attr]


def test_a_40_ms_pause_separates_two_presses_of_the_same_key() -> None:
    signals = [
        pad(np.concatenate([tone("5", 40), silence(40), tone("5", 40)]), offset)
        for offset in range(0, 160, 7)
    ]
    assert {pressed(e) for e in run(signals)} == {"55"}


@pytest.mark.parametrize(("on_ms", "off_ms"), [(50, 50), (50, 43)])
def test_ten_presses_per_second_decode_exactly(on_ms: int, off_ms: int) -> None:
    strings = ["".join(RNG.choice(KEYS, 60)) for _ in range(12)]
    signals = [
        through(codec, generate_sequence(s, on_ms=on_ms, off_ms=off_ms, seed=i, lead_ms=i * 1.7))
        for i, (s, codec) in enumerate(zip(strings, list(Codec) * 6, strict=True))
    ]
    assert [pressed(e) for e in run(signals)] == strings


def test_back_to_back_keys_without_a_gap() -> None:
    [events] = run([np.concatenate([tone("1", 80), tone("9", 80)])])
    assert pressed(events) == "19"
    assert_well_formed(events)


# -- levels, twist, noise ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "expected"),
    [(0, True), (-10, True), (-25, True), (-45, False), (-55, False), (-60, False)],
)
def test_levels(level: float, expected: bool) -> None:
    signals = [through(Codec.PCMU, tone(key, 60, level_dbm0=level)) for key in KEYS]
    assert [pressed(e) for e in run(signals)] == (KEYS if expected else [""] * len(KEYS))


@pytest.mark.parametrize(("twist", "expected"), [(8, True), (-4, True), (12, False), (-10, False)])
def test_twist_with_the_weaker_tone_at_minus_25_dbm0(twist: float, expected: bool) -> None:
    level = -25 + abs(twist) / 2  # the weaker tone sits at -25 dBm0
    signals = [
        through(Codec.PCMA, pad(tone(key, 60, level_dbm0=level, twist_db=twist), offset))
        for key in KEYS
        for offset in (0, 13, 27)
    ]
    expected_keys = [key if expected else "" for key in KEYS for _ in range(3)]
    assert [pressed(e) for e in run(signals)] == expected_keys


def test_reliable_in_white_noise_at_15_db_snr() -> None:
    strings = ["".join(RNG.choice(KEYS, 40)) for _ in range(10)]
    signals = []
    for i, keys in enumerate(strings):
        clean = generate_sequence(keys, on_ms=50, off_ms=50, seed=i).astype(np.float64)
        tone_power = np.mean(clean[clean != 0] ** 2)
        noisy = clean + RNG.normal(0, np.sqrt(tone_power / 10**1.5), clean.size)
        signals.append(through(Codec.PCMU, np.clip(noisy, -32768, 32767).astype(np.int16)))
    assert [pressed(e) for e in run(signals)] == strings


# -- talk-off (failure mode 5) ----------------------------------------------------------------


def sines(freqs: Sequence[float], level: float, ms: float = 1000) -> Signal:
    t = np.arange(round(ms * 8)) / 8000
    signal = sum(
        level_to_amplitude(level) * np.sin(2 * np.pi * f * t + RNG.uniform(0, 6)) for f in freqs
    )
    clipped: Signal = np.clip(np.asarray(signal), -32768, 32767).astype(np.int16)
    return clipped


def vowel(pitch_hz: float) -> Signal:
    """A harmonic-rich sustained vowel with vibrato and formants near the DTMF bands."""
    t = np.arange(16000) / 8000
    phase = np.cumsum(2 * np.pi * pitch_hz * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))) / 8000
    signal = sum(
        (
            np.exp(-(((h * pitch_hz - 800) / 300) ** 2))
            + 0.7 * np.exp(-(((h * pitch_hz - 1300) / 250) ** 2))
        )
        * np.sin(h * phase)
        for h in range(1, 30)
    )
    samples = np.asarray(signal, dtype=np.float64)
    scaled: Signal = (samples / np.abs(samples).max() * 12000).astype(np.int16)
    return scaled


NOT_DTMF: dict[str, list[float]] = {
    "dial tone 350+440": [350, 440],
    "ringback 440+480": [440, 480],
    "busy 480+620": [480, 620],
    "test tone 1004": [1004],
    "fax CNG 1100": [1100],
    "answer tone 2100": [2100],
    "two rows": [697, 770],
    "two columns": [1209, 1336],
    "row alone": [852],
    "column alone": [1477],
    "three tones": [697, 1209, 1336],
    "row plus two columns": [770, 1336, 1477],
    "pair 4 % high": [697 * 1.04, 1209 * 1.04],
    "pair 4 % low": [941 * 0.96, 1633 * 0.96],
}


def test_call_progress_tones_chords_and_near_misses_are_not_digits() -> None:
    signals = [
        through(Codec.PCMU, sines(freqs, level))
        for freqs in NOT_DTMF.values()
        for level in (0, -10, -20)
    ]
    signals += [through(Codec.PCMA, vowel(pitch)) for pitch in (100, 140, 233, 350)]
    assert [pressed(e) for e in run(signals)] == [""] * len(signals)


def test_dtmf_under_a_weaker_dial_tone_is_still_detected() -> None:
    signal = tone("6", 80, level_dbm0=-15) + sines([350, 440], -27, ms=80)
    [events] = run([through(Codec.PCMU, signal)])
    assert pressed(events) == "6"


# -- presses, lost frames, latency (failure modes 6 and 8) ------------------------------------


def test_one_long_press_is_one_digit_with_its_duration() -> None:
    [events] = run([pad(tone("#", 2000), 77)])
    assert pressed(events) == "#"
    assert events[1].duration_ms == pytest.approx(2000, abs=6)  # type: ignore[union-attr]


def test_keydown_comes_within_40_ms_of_onset_not_at_release() -> None:
    offsets = list(range(0, 160, 13))
    results = run([pad(tone("0", 1000), 800 + offset) for offset in offsets])
    for offset, events in zip(offsets, results, strict=True):
        down = events[0]
        assert isinstance(down, KeyDown)
        onset = (800 + offset) / 8
        assert 25 <= down.at_ms - onset <= 40
        assert down.onset_ms == pytest.approx(onset, abs=5)
        assert events[1].at_ms > onset + 1000


def test_a_lost_frame_inside_a_press_does_not_split_it() -> None:
    # Frames 5-6 (100-140 ms) are zeroed and flagged lost; frame 20 only flagged.
    signal = np.concatenate([tone("7", 100), silence(40), tone("7", 300)])
    signals = [pad(signal, offset) for offset in (0, 40, 80)]
    lost = [[5, 6, 20]] * 3
    for events in run(signals, lost_frames=lost):
        assert pressed(events) == "7"
        assert events[1].duration_ms == pytest.approx(440, abs=25)  # type: ignore[union-attr]


def test_one_zero_filled_frame_without_the_flag_does_not_split_either() -> None:
    signal = np.concatenate([tone("8", 100), silence(20), tone("8", 100)])
    assert {pressed(e) for e in run([pad(signal, o) for o in range(0, 160, 10)])} == {"8"}


def test_lost_frames_alone_create_no_press() -> None:
    # A lost-flagged burst (whatever concealment put there) neither starts nor ends a press.
    signals = [tone("4", 200), sines([697, 1209], -10, ms=200)]
    assert [pressed(e) for e in run(signals, lost_frames=[range(10), range(10)])] == ["", ""]


def test_lost_frames_freeze_the_press_instead_of_ending_it() -> None:
    # 300 ms flagged lost after 100 ms of tone: the press neither ends nor restarts.
    signal = np.concatenate([tone("2", 100), silence(300), tone("2", 100)])
    [events] = run([signal], lost_frames=[range(5, 20)])
    assert pressed(events) == "2"


# -- batch mechanics --------------------------------------------------------------------------


def test_batched_results_equal_streaming_results() -> None:
    signals = [
        generate_sequence("1A#", on_ms=60, off_ms=60, seed=1),
        pad(tone("5", 45), 33),
        through(Codec.PCMA, np.concatenate([tone("6", 200), silence(10), tone("6", 80)])),
        sines([350, 440], -10, ms=400),
        silence(300),
    ]
    batched = run(signals)
    for signal, expected in zip(signals, batched, strict=True):
        detector = DtmfDetector()
        audio = np.concatenate([signal, silence(200 + 20 * 10)])
        audio = audio[: audio.size - audio.size % 160]
        streamed = [
            event
            for index, frame in enumerate(audio.reshape(-1, 160))
            for event in detector.process(frame, index * 20.0)
        ]
        assert streamed == expected
    assert [pressed(e) for e in batched] == ["1A#", "5", "6", "", ""]


def test_channels_come_and_go() -> None:
    detector = BatchDtmfDetector(2)
    key_tone = np.concatenate([tone("B", 100), silence(100)]).reshape(-1, 160)
    assert detector.add_channel() == 2 and detector.channels == 3
    detector.remove_channel(1)
    assert detector.in_use.tolist() == [True, False, True]
    got: list[tuple[int, DtmfEvent]] = []
    for index, frame in enumerate(key_tone):
        got += detector.process(np.stack([frame, frame, frame]), index * 20.0)
    # The freed slot is ignored even though its row carries the tone.
    assert sorted((slot, type(e).__name__) for slot, e in got) == [
        (0, "KeyDown"),
        (0, "KeyUp"),
        (2, "KeyDown"),
        (2, "KeyUp"),
    ]
    # A reused slot starts fresh: the first half of a press before reuse is forgotten.
    press = np.concatenate([tone("C", 40), silence(100)]).reshape(-1, 160)
    detector.process(np.stack([press[0]] * 3), 1000.0)
    detector.remove_channel(0)
    assert detector.add_channel() == 0
    late: list[tuple[int, DtmfEvent]] = []
    for index, frame in enumerate(press[1:]):
        late += detector.process(np.stack([frame] * 3), 1020 + index * 20.0)
    # Slot 2 heard all 40 ms (a press); the fresh slot 0 only the last 20 ms.
    assert [(slot, e.key) for slot, e in late if isinstance(e, KeyDown)] == [(2, "C")]


def test_growing_past_the_doubled_storage_keeps_a_press_in_progress() -> None:
    detector = BatchDtmfDetector(1)
    held = np.concatenate([tone("7", 200), silence(200)]).reshape(-1, 160)
    later = np.concatenate([silence(160), tone("2", 100), silence(140)]).reshape(-1, 160)
    events: list[tuple[int, DtmfEvent]] = []
    for index in range(held.shape[0]):
        if 3 <= index <= 7:  # mid-press: 1 -> 6 slots, storage doubles 1 -> 2 -> 4 -> 8
            detector.add_channel()
        rows = [held[index]] + [later[index]] * (detector.channels - 1)
        events += detector.process(np.stack(rows), index * 20.0)

    assert detector.channels == 6
    by_slot = {
        slot: [(type(e).__name__, e.key) for s, e in events if s == slot] for slot in range(6)
    }
    # Slot 0's press survives every resize as one press with its full duration.
    assert by_slot[0] == [("KeyDown", "7"), ("KeyUp", "7")]
    up = next(e for s, e in events if s == 0 and isinstance(e, KeyUp))
    assert up.duration_ms is not None and 170 <= up.duration_ms <= 215
    # Every added slot hears its own press, which starts after the last resize.
    assert all(by_slot[slot] == [("KeyDown", "2"), ("KeyUp", "2")] for slot in range(1, 6))


def test_freed_slots_are_reused_lowest_first() -> None:
    detector = BatchDtmfDetector(5)
    for slot in (3, 1, 4):
        detector.remove_channel(slot)

    assert [detector.add_channel() for _ in range(4)] == [1, 3, 4, 5]
    assert detector.in_use.all() and detector.channels == 6


def test_per_channel_clocks() -> None:
    detector = BatchDtmfDetector(2)
    frames = np.concatenate([tone("1", 100), silence(100)]).reshape(-1, 160)
    events: list[tuple[int, DtmfEvent]] = []
    for index, frame in enumerate(frames):
        events += detector.process(np.stack([frame, frame]), np.array([0.0, 5000.0]) + 20 * index)
    downs = {slot: e.at_ms for slot, e in events if isinstance(e, KeyDown)}
    assert downs[1] - downs[0] == 5000


def test_sixteen_khz_input() -> None:
    keys = "0123456789*#ABCD"
    wide = generate_sequence(keys, on_ms=50, off_ms=50, sample_rate=16000, seed=5)
    assert detect_digits(wide, sample_rate=16000) == keys
    [events] = run([wide], rate=16000)
    assert pressed(events) == keys


def test_frames_of_other_lengths() -> None:
    detector = DtmfDetector()
    audio = np.concatenate([tone("D", 100), silence(100)])
    events = [e for i, f in enumerate(audio.reshape(-1, 80)) for e in detector.process(f, i * 10.0)]
    assert pressed(events) == "D"


def test_detect_digits_offline() -> None:
    audio = np.concatenate([silence(333), generate_sequence("2024#", seed=9), tone("7", 60)])
    assert detect_digits(audio) == "2024#7"
    assert detect_digits(silence(10)) == ""


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: BatchDtmfDetector(2).process(np.zeros((2, 160)), 0.0), "must be int16"),
        (lambda: BatchDtmfDetector(2).process(np.zeros((3, 160), np.int16), 0.0), r"\[2, samp"),
        (lambda: BatchDtmfDetector(1).process(np.zeros((1, 150), np.int16), 0.0), "multiple"),
        (
            lambda: BatchDtmfDetector(1).process(np.zeros((1, 160), np.int16), 0.0, [1, 0]),
            "lost flags",
        ),
        (lambda: BatchDtmfDetector(1, sample_rate=44100), "8000 or 16000"),
        (lambda: BatchDtmfDetector(1).remove_channel(1), "no live channel in slot 1"),
        (lambda: DtmfDetector().process(np.zeros((2, 160), np.int16), 0.0), "one-dimensional"),
        (lambda: detect_digits(np.zeros(160)), "1-D int16"),
    ],
)
def test_bad_input_is_refused_clearly(call: object, message: str) -> None:
    with pytest.raises(MediaError, match=message):
        call()  # type: ignore[operator]


def test_tone_pairs_used_by_the_detector_match_the_keypad() -> None:
    # Guard: a key's tone at exact frequencies decodes to that key (tone_pair order is row, col).
    row, column = tone_pair("8")
    assert detect_digits(sines([row, column], -10, ms=100)) == "8"


def test_a_busy_batch_equals_one_detector_per_channel_whatever_the_clock_type() -> None:
    # Most rows pressing at once, direct key changes (a KeyUp and a KeyDown at one position),
    # lost frames: every slot gets what its own detector gives, and the clock may be a float,
    # a numpy scalar, a 0-d array or one time per slot.
    signals = [
        pad(
            np.concatenate(
                [tone(KEYS[i % 16], 70), tone(KEYS[(i + 5) % 16], 90), silence(60), tone("5", 50)]
            ),
            37 * i,
        )
        for i in range(40)
    ]
    length = 1600 * 8
    audio = np.zeros((len(signals), length), dtype=np.int16)
    for row, signal in enumerate(signals):
        audio[row, : signal.size] = signal
    frames = audio.reshape(len(signals), -1, 160)
    lost = np.zeros(frames.shape[:2], dtype=bool)
    lost[::7, 9] = True

    expected = []
    for row in range(len(signals)):
        single = DtmfDetector()
        expected.append(
            [
                event
                for index in range(frames.shape[1])
                for event in single.process(frames[row, index], index * 20.0, lost[row, index])
            ]
        )
    clocks = (float, np.float32, np.array, lambda t: np.full(len(signals), t))
    for clock in clocks:
        detector = BatchDtmfDetector(len(signals))
        got: list[list[DtmfEvent]] = [[] for _ in signals]
        for index in range(frames.shape[1]):
            now = clock(index * 20.0)
            for slot, event in detector.process(frames[:, index], now, lost[:, index]):
                got[slot].append(event)
        assert got == expected
    assert all(len(pressed(events)) == 3 for events in expected)
    assert all(events[1].at_ms == events[2].at_ms for events in expected)  # up, then down
