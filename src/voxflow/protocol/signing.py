"""Webhook authentication: the ``X-API-TOKEN`` shared secret and voxflow's request signature.

The signature is HMAC-SHA256 over ``"<timestamp>.<raw body>"``, sent as
``X-Voxflow-Timestamp: <unix seconds>`` and ``X-Voxflow-Signature: v1=<hex>``. The receiver
accepts any of several active secrets (so a secret can be rotated without downtime) and rejects
timestamps more than ``tolerance_s`` seconds away from its clock, either way (replay protection).

This is part of the wire contract, so it lives here: the engine's dispatcher signs with
:func:`sign`, the SDK's adapters check with :func:`verify` and :func:`check_token`. Pure
functions: the caller passes the clock reading ``now``.
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
    """The two signature headers for ``body`` sent at ``timestamp`` (unix seconds)."""
    if not secret:
        raise SignatureError("signing secret is empty; configure a non-empty secret")
    return {
        TIMESTAMP_HEADER: str(int(timestamp)),
        SIGNATURE_HEADER: f"{SIGNATURE_VERSION}={signature(body, secret, timestamp)}",
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # HTTP header names are case-insensitive, but plain dicts are not.
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _offered_signatures(header: str) -> list[str]:
    # A sender in the middle of a rotation may send one v1 entry per secret, comma-separated;
    # entries of other versions are skipped so a future scheme can be added.
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
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Raise :class:`SignatureError` saying why, unless ``body`` carries a valid signature.

    ``secrets`` holds every currently valid secret (one, or two during a rotation); ``now`` is
    the verifier's unix time.
    """
    usable = [secret for secret in secrets if secret]
    if not usable:
        raise SignatureError("no signing secret configured: verify needs at least one secret")
    stamp = _header(headers, TIMESTAMP_HEADER)
    header = _header(headers, SIGNATURE_HEADER)
    if stamp is None or header is None:
        missing = TIMESTAMP_HEADER if stamp is None else SIGNATURE_HEADER
        raise SignatureError(f"missing {missing} header")
    stamp = stamp.strip()
    if not (stamp.isascii() and stamp.isdigit()):
        raise SignatureError(
            f"malformed {TIMESTAMP_HEADER}: {stamp[:40]!r} is not unix seconds"
        )
    offered = _offered_signatures(header)
    if not offered:
        raise SignatureError(
            f"malformed {SIGNATURE_HEADER}: no {SIGNATURE_VERSION}=<hex> entry"
        )
    timestamp = int(stamp)
    age = now - timestamp
    if age > tolerance_s:
        raise SignatureError(
            f"expired signature: timestamp is {age:.0f} s old (limit {tolerance_s:.0f} s)"
        )
    if -age > tolerance_s:
        raise SignatureError(
            f"expired signature: timestamp is {-age:.0f} s in the future "
            f"(limit {tolerance_s:.0f} s); check the clocks of sender and receiver"
        )
    expected = [signature(body, secret, timestamp).encode() for secret in usable]
    # Compare every pair without stopping early, so timing says nothing about which matched.
    matched = False
    for candidate in offered:
        for good in expected:
            matched |= hmac.compare_digest(candidate.encode("ascii", "replace"), good)
    if not matched:
        raise SignatureError("signature mismatch: the body or the secret differs from the sender's")


def check_token(headers: Mapping[str, str], expected: str) -> None:
    """Raise :class:`SignatureError` unless ``X-API-TOKEN`` equals ``expected``."""
    given = _header(headers, TOKEN_HEADER)
    if given is None:
        raise SignatureError(f"missing {TOKEN_HEADER} header")
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        raise SignatureError(f"{TOKEN_HEADER} does not match")
