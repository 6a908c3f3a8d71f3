"""Webhook authentication for assistants: re-exported from :mod:`voxflow.protocol.signing`.

The scheme is part of the wire contract, so the engine (which signs) and the SDK (which
verifies) share the one implementation there.
"""

from voxflow.protocol.signing import (
    DEFAULT_TOLERANCE_S,
    SIGNATURE_HEADER,
    SIGNATURE_VERSION,
    TIMESTAMP_HEADER,
    TOKEN_HEADER,
    check_token,
    sign,
    signature,
    verify,
)

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "SIGNATURE_HEADER",
    "SIGNATURE_VERSION",
    "TIMESTAMP_HEADER",
    "TOKEN_HEADER",
    "check_token",
    "sign",
    "signature",
    "verify",
]
