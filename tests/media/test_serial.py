"""Serial-number arithmetic across the wrap of 16-bit and 32-bit counters."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from voxflow.media.serial import seq_diff, ts_diff


def test_seq_diff_simple_and_wrapping() -> None:
    assert seq_diff(10, 7) == 3
    assert seq_diff(7, 10) == -3
    assert seq_diff(0, 65535) == 1
    assert seq_diff(65535, 0) == -1
    assert seq_diff(5, 65530) == 11


def test_seq_diff_half_range_is_negative() -> None:
    assert seq_diff(32768, 0) == -32768
    assert seq_diff(32767, 0) == 32767


def test_ts_diff_wrapping() -> None:
    assert ts_diff(160, 0) == 160
    assert ts_diff(0, 2**32 - 160) == 160
    assert ts_diff(2**32 - 160, 0) == -160
    assert ts_diff(2**31, 0) == -(2**31)


@given(st.integers(0, 65535), st.integers(-32768, 32767))
def test_seq_diff_inverts_addition(base: int, delta: int) -> None:
    assert seq_diff((base + delta) % 65536, base) == delta


@given(st.integers(0, 2**32 - 1), st.integers(-(2**31), 2**31 - 1))
def test_ts_diff_inverts_addition(base: int, delta: int) -> None:
    assert ts_diff((base + delta) % 2**32, base) == delta
