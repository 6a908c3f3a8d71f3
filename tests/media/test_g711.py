"""G.711 against the standard's own tables, written out here independently of the module."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from voxflow.errors import MediaError
from voxflow.media.g711 import Codec, alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)

# G.711 Table 2a (µ-law, 14-bit scale): per segment, the first decoder output and the step.
ULAW_SEGMENTS = [
    (0, 2),
    (33, 4),
    (99, 8),
    (231, 16),
    (495, 32),
    (1023, 64),
    (2079, 128),
    (4191, 256),
]
# G.711 Table 1a (A-law, 13-bit scale).
ALAW_SEGMENTS = [(1, 2), (33, 2), (66, 4), (132, 8), (264, 16), (528, 32), (1056, 64), (2112, 128)]


def standard_magnitudes(segments: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """(decoded value, lower decision, upper decision) per interval, smallest first."""
    intervals = []
    for first, step in segments:
        for q in range(16):
            out = first + q * step
            intervals.append((out, max(out - step // 2, 0), out + step // 2))
    return intervals


def standard_decode_table(codec: Codec) -> dict[int, int]:
    """Code → 16-bit decoded value, from the tables and the code-bit rules of G.711."""
    if codec is Codec.PCMU:
        intervals, scale, positive_sign = standard_magnitudes(ULAW_SEGMENTS), 4, 0x00
        invert = 0xFF
    else:
        intervals, scale, positive_sign = standard_magnitudes(ALAW_SEGMENTS), 8, 0x80
        invert = 0x55
    table = {}
    for index, (out, _, _) in enumerate(intervals):
        table[(index | positive_sign) ^ invert] = out * scale
        table[(index | (positive_sign ^ 0x80)) ^ invert] = -out * scale
    return table


def interval_bounds(codec: Codec, codes: npt.NDArray[np.uint8]) -> tuple[np.ndarray, np.ndarray]:
    """Closed decision interval, in 16-bit units, of each code per the standard's tables."""
    segments, scale = (ULAW_SEGMENTS, 4) if codec is Codec.PCMU else (ALAW_SEGMENTS, 8)
    intervals = standard_magnitudes(segments)
    lo = np.empty(256)
    hi = np.empty(256)
    decode = standard_decode_table(codec)
    for code, value in decode.items():
        out = abs(value) // scale
        index = next(i for i, (o, _, _) in enumerate(intervals) if o == out)
        _, low, high = intervals[index]
        if index == len(intervals) - 1:
            high = 10**9  # the top interval takes everything beyond (overload)
        if codec is Codec.PCMA and index == 0:
            low = 0  # no zero code: the innermost A-law intervals meet at 0
        sign_negative = value < 0 or (codec is Codec.PCMU and code == 0x7F)
        if sign_negative:
            lo[code], hi[code] = -high * scale, -low * scale
        else:
            lo[code], hi[code] = low * scale, high * scale
    return lo[codes], hi[codes]


@pytest.mark.parametrize("codec", list(Codec))
def test_all_256_decode_values_match_the_standard_table(codec: Codec) -> None:
    expected = standard_decode_table(codec)
    decoded = codec.decode_codes(ALL_CODES)
    assert {int(c): int(v) for c, v in zip(ALL_CODES, decoded, strict=True)} == expected


@pytest.mark.parametrize("codec", list(Codec))
def test_every_int16_lands_in_its_decision_interval(codec: Codec) -> None:
    codes = codec.encode_samples(ALL_INT16)
    lo, hi = interval_bounds(codec, codes)
    x = ALL_INT16.astype(np.float64)
    assert np.all((lo <= x) & (x <= hi))


@pytest.mark.parametrize("codec", list(Codec))
def test_decoded_value_is_within_half_a_step_of_every_unclipped_input(codec: Codec) -> None:
    segments, scale = (ULAW_SEGMENTS, 4) if codec is Codec.PCMU else (ALAW_SEGMENTS, 8)
    decoded = codec.decode_codes(codec.encode_samples(ALL_INT16)).astype(np.int64)
    x = ALL_INT16.astype(np.int64)
    step_of = {
        out * scale: step * scale
        for out, _, _ in standard_magnitudes(segments)
        for first, step in segments
        if first <= out < first + 16 * step
    }
    half_step = np.array([step_of[abs(int(v))] // 2 for v in decoded])
    top_decision = (segments[-1][0] + 15 * segments[-1][1] + segments[-1][1] // 2) * scale
    unclipped = np.abs(x) < top_decision
    assert np.all(np.abs(x - decoded)[unclipped] <= half_step[unclipped])


def test_ulaw_round_trip_of_every_code_with_its_two_zeros() -> None:
    assert ulaw_decode(np.array([0x7F, 0xFF], dtype=np.uint8)).tolist() == [0, 0]
    round_trip = ulaw_encode(ulaw_decode(ALL_CODES))
    expected = ALL_CODES.copy()
    expected[0x7F] = 0xFF  # −0 decodes to 0, which encodes as +0
    assert np.array_equal(round_trip, expected)


def test_alaw_round_trip_of_every_code() -> None:
    assert np.array_equal(alaw_encode(alaw_decode(ALL_CODES)), ALL_CODES)


def test_well_known_codes() -> None:
    assert ulaw_encode(np.array([0, 32767, -32768], dtype=np.int16)).tolist() == [0xFF, 0x80, 0x00]
    assert alaw_encode(np.array([0, -1, 32767], dtype=np.int16)).tolist() == [0xD5, 0x55, 0xAA]
    # Silence in PCMA is 0xD5 (+8); in PCMU 0xFF.
    assert alaw_decode(b"\xd5").tolist() == [8]


def test_small_negative_inputs_go_to_zero_unlike_audioop() -> None:
    # −1…−3 are −0.25…−0.75 on the 14-bit scale, inside µ-law's zero interval [−1, 1].
    small = np.array([-1, -2, -3, 1, 2, 3], dtype=np.int16)
    assert ulaw_decode(ulaw_encode(small)).tolist() == [0] * 6


def test_any_shape_is_kept() -> None:
    rng = np.random.default_rng(1)
    batch = rng.integers(-32768, 32768, size=(3, 2, 160), dtype=np.int16)
    for codec in Codec:
        codes = codec.encode_samples(batch)
        assert codes.shape == batch.shape and codes.dtype == np.uint8
        assert np.array_equal(codec.encode_samples(batch[1, 0]), codes[1, 0])
        assert codec.decode_codes(codes).shape == batch.shape
    strided = batch[:, :, ::2]
    assert np.array_equal(ulaw_encode(strided), ulaw_encode(strided.copy()))


def test_bytes_decode_like_arrays() -> None:
    payload = bytes(range(256))
    assert np.array_equal(ulaw_decode(payload), ulaw_decode(ALL_CODES))
    assert np.array_equal(alaw_decode(bytearray(payload)), alaw_decode(ALL_CODES))


def test_codec_names_and_payload_types() -> None:
    assert Codec.from_name("pcmu") is Codec.PCMU and Codec.PCMU.payload_type == 0
    assert Codec.from_name("PCMA").payload_type == 8
    with pytest.raises(MediaError, match=r"unknown G\.711 codec 'G722'"):
        Codec.from_name("G722")


def test_wrong_dtypes_are_refused_with_a_clear_message() -> None:
    with pytest.raises(MediaError, match="ulaw_encode expects int16 samples, got dtype float64"):
        ulaw_encode(np.zeros(4))
    with pytest.raises(MediaError, match="alaw_decode expects uint8 codes"):
        alaw_decode(np.zeros(4, dtype=np.int16))
