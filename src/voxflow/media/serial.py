"""Serial-number arithmetic (RFC 1982) for RTP sequence numbers and timestamps.

RTP counters wrap (16-bit sequence numbers, 32-bit timestamps), so "which came first" is only
meaningful as a signed distance modulo the counter size.
"""

from __future__ import annotations

_SEQ_MOD = 1 << 16
_TS_MOD = 1 << 32


def _signed_diff(a: int, b: int, modulus: int) -> int:
    diff = (a - b) % modulus
    # Exactly half-way is ambiguous in RFC 1982; treat it as "behind" so results stay in range.
    return diff - modulus if diff >= modulus // 2 else diff


def seq_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` between two 16-bit sequence numbers, in ``[-32768, 32767]``."""
    return _signed_diff(a, b, _SEQ_MOD)


def ts_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` between two 32-bit timestamps, in ``[-2**31, 2**31 - 1]``."""
    return _signed_diff(a, b, _TS_MOD)
