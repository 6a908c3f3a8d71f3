"""Webhook authentication: the ``X-API-TOKEN`` shared secret and voxflow's request signature.

The signature is HMAC-SHA256 over ``"<timestamp>.<raw body>"``, sent as
``X-Voxflow-Timestamp: <unix seconds>`` and ``X-Voxflow-Signature: v1=<hex>``. The receiver
accepts any of up to two active secrets (so a secret can be rotated without downtime) and
rejects timestamps more than ``tolerance`` seconds away from its clock (replay protection).

Everything here is pure: the caller passes the clock reading ``now``. The engine's dispatcher
signs with :func:`sign`; the SDK's adapters check with :func:`verify` and :func:`check_token`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from voxflow.errors import SignatureError

TOKEN_HEADER = "X-API-TOKEN"
TIMESTAMP_HEADER = "X-Voxflow-Timestamp"
SIGNATURE_HEADER = "X-Voxflow-Signature"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_S = 300.0


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def signature(body: bytes, secret: str | bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    message = str(int(timestamp)).encode("ascii") + b"." + body
    return hmac.new(_as_bytes(secret), message, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str | bytes, timestamp: int) -> dict[str, str]:
    """The headers that sign ``body`` at ``timestamp`` (unix seconds)."""
    return {
        TIMESTAMP_HEADER: str(int(timestamp)),
        SIGNATURE_HEADER: f"{SIGNATURE_VERSION}={signature(body, secret, timestamp)}",
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _offered_signatures(header: str) -> list[str]:
    # A sender in the middle of a rotation may send one v1 entry per secret, comma-separated.
    offered = []
    for part in header.split(","):
        version, _, value = part.strip().partition("=")
        if version == SIGNATURE_VERSION and value:
            offered.append(value.strip().lower())
    return offered


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str | bytes],
    now: float,
    tolerance: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Raise :class:`SignatureError` (saying why) unless ``body`` carries a valid signature."""
    if not secrets:
        raise ValueError("verify needs at least one secret")
    stamp = _header(headers, TIMESTAMP_HEADER)
    header = _header(headers, SIGNATURE_HEADER)
    if stamp is None or header is None:
        missing = TIMESTAMP_HEADER if stamp is None else SIGNATURE_HEADER
        raise SignatureError(f"missing {missing} header")
    try:
        timestamp = int(stamp.strip())
    except ValueError:
        raise SignatureError(f"{TIMESTAMP_HEADER} is not unix seconds: {stamp[:40]!r}") from None
    age = now - timestamp
    if age > tolerance:
        raise SignatureError(f"signature expired: timestamp is {age:.0f} s old "
                             f"(limit {tolerance:.0f} s)")
    if -age > tolerance:
        raise SignatureError(f"signature timestamp is {-age:.0f} s in the future "
                             f"(limit {tolerance:.0f} s); check the clocks")
    offered = _offered_signatures(header)
    if not offered:
        raise SignatureError(f"{SIGNATURE_HEADER} has no {SIGNATURE_VERSION}=<hex> entry")
    expected = [signature(body, secret, timestamp) for secret in secrets]
    # Compare every pair, without stopping early, so timing says nothing about which one matched.
    matched = False
    for candidate in offered:
        for good in expected:
            matched |= hmac.compare_digest(candidate.encode("ascii", "replace"), good.encode())
    if not matched:
        raise SignatureError("signature mismatch: the body or the secret differs")


def check_token(headers: Mapping[str, str], expected: str) -> None:
    """Raise :class:`SignatureError` unless ``X-API-TOKEN`` equals ``expected``."""
    given = _header(headers, TOKEN_HEADER)
    if given is None:
        raise SignatureError(f"missing {TOKEN_HEADER} header")
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        raise SignatureError(f"{TOKEN_HEADER} does not match")
