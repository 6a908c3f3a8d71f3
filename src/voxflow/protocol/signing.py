"""Webhook request signing: HMAC-SHA256 over ``"<timestamp>.<raw body>"``.

The engine signs each request it sends; the assistant (the SDK) verifies it. Two headers carry
the signature: ``X-Voxflow-Timestamp`` (unix seconds) and ``X-Voxflow-Signature: v1=<hex>``.
Verification accepts several secrets at once so a secret can be rotated without downtime, and
rejects timestamps outside a window so a captured request cannot be replayed later.
Pure functions: the caller passes the clock in.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from voxflow.errors import SignatureError

TIMESTAMP_HEADER = "X-Voxflow-Timestamp"
SIGNATURE_HEADER = "X-Voxflow-Signature"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_S = 300.0


def _digest(body: bytes, secret: str, timestamp: str) -> str:
    message = timestamp.encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str, timestamp: int) -> dict[str, str]:
    """The two signature headers for ``body`` sent at ``timestamp`` (unix seconds)."""
    if not secret:
        raise SignatureError("signing secret is empty; configure a non-empty secret")
    stamp = str(int(timestamp))
    return {
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: f"{SIGNATURE_VERSION}={_digest(body, secret, stamp)}",
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # HTTP header names are case-insensitive, but plain dicts are not.
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _claimed_signatures(value: str) -> list[str]:
    # Several "v1=..." entries may be present (the sender signing with two secrets during a
    # rotation); entries of unknown versions are skipped so a future scheme can be added.
    claimed = []
    for part in value.split(","):
        version, sep, digest = part.strip().partition("=")
        if sep and version == SIGNATURE_VERSION and digest:
            claimed.append(digest.lower())
    return claimed


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Check the signature headers of a request; raise :class:`SignatureError` if it fails.

    ``secrets`` holds every currently valid secret (normally one, two during rotation); ``now``
    is the verifier's unix time. The error message says which check failed: missing,
    malformed, expired, or mismatch.
    """
    usable = [secret for secret in secrets if secret]
    if not usable:
        raise SignatureError("no signing secret configured to verify against")
    stamp = _header(headers, TIMESTAMP_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    if stamp is None or signature is None:
        absent = TIMESTAMP_HEADER if stamp is None else SIGNATURE_HEADER
        raise SignatureError(f"missing signature: header {absent} is absent")
    stamp = stamp.strip()
    if not stamp.isdigit() or not stamp.isascii():
        raise SignatureError(
            f"malformed signature: {TIMESTAMP_HEADER} {stamp!r} is not unix seconds"
        )
    claimed = _claimed_signatures(signature)
    if not claimed:
        raise SignatureError(
            f"malformed signature: {SIGNATURE_HEADER} has no '{SIGNATURE_VERSION}=<hex>' entry"
        )
    age = now - int(stamp)
    if abs(age) > tolerance_s:
        raise SignatureError(
            f"expired signature: timestamp is {age:.0f} s from now (allowed ±{tolerance_s:.0f} s);"
            " check the clocks of sender and receiver"
        )
    for secret in usable:
        expected = _digest(body, secret, stamp)
        if any(hmac.compare_digest(expected, digest) for digest in claimed):
            return
    raise SignatureError("signature mismatch: the body or the secret differs from the sender's")
