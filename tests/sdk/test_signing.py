"""Request signing and the shared-secret token, as pure functions."""

from __future__ import annotations

import pytest

from voxflow.errors import SignatureError
from voxflow.sdk.signing import check_token, sign, signature, verify

BODY = b'{"type":"session_end","session":{"id":"abc"}}'
STAMP = 1_700_000_000
# Computed independently: printf '1700000000.<body>' | openssl dgst -sha256 -hmac whsec_test
KNOWN = "b30c2f53a56451838910d21e4528dafc1ac99ac65e1d79e6eb23889e7dae9744"
KNOWN_NEXT = "e34ac6dfe22bee87f067ab79d3b669f890a8e2f9cf1f1447999458444f41bb1a"


def test_known_vector() -> None:
    assert signature(BODY, "whsec_test", STAMP) == KNOWN
    assert sign(BODY, b"whsec_test", STAMP) == {
        "X-Voxflow-Timestamp": "1700000000",
        "X-Voxflow-Signature": f"v1={KNOWN}",
    }


def test_verifies_within_the_window_either_direction() -> None:
    headers = sign(BODY, "whsec_test", STAMP)
    verify(headers, BODY, ["whsec_test"], now=STAMP)
    verify(headers, BODY, ["whsec_test"], now=STAMP + 300)
    verify(headers, BODY, ["whsec_test"], now=STAMP - 300)


def test_rotation_accepts_either_secret_and_multi_signature_headers() -> None:
    secrets = ["whsec_next", "whsec_test"]
    verify(sign(BODY, "whsec_test", STAMP), BODY, secrets, now=STAMP)
    verify(sign(BODY, "whsec_next", STAMP), BODY, secrets, now=STAMP)
    both = {"x-voxflow-timestamp": str(STAMP),
            "x-voxflow-signature": f"v1={'0' * 64}, v1={KNOWN_NEXT}"}
    verify(both, BODY, ["whsec_next"], now=STAMP)


@pytest.mark.parametrize(("headers", "body", "now", "reason"), [
    ({}, BODY, STAMP, "missing X-Voxflow-Timestamp"),
    ({"X-Voxflow-Timestamp": str(STAMP)}, BODY, STAMP, "missing X-Voxflow-Signature"),
    (sign(BODY, "whsec_test", STAMP), BODY, STAMP + 301, "expired"),
    (sign(BODY, "whsec_test", STAMP), BODY, STAMP - 301, "in the future"),
    (sign(BODY, "whsec_test", STAMP), BODY.replace(b"abc", b"abd"), STAMP, "mismatch"),
    (sign(BODY, "whsec_old", STAMP), BODY, STAMP, "mismatch"),
    ({"X-Voxflow-Timestamp": "yesterday", "X-Voxflow-Signature": f"v1={KNOWN}"}, BODY, STAMP,
     "not unix seconds"),
    ({"X-Voxflow-Timestamp": str(STAMP), "X-Voxflow-Signature": KNOWN}, BODY, STAMP,
     "no v1=<hex> entry"),
    ({"X-Voxflow-Timestamp": str(STAMP), "X-Voxflow-Signature": "v1=zzé"}, BODY, STAMP,
     "mismatch"),
])
def test_rejections_say_why(
    headers: dict[str, str], body: bytes, now: float, reason: str
) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify(headers, body, ["whsec_test"], now=now)


def test_replayed_timestamp_cannot_be_moved() -> None:
    headers = sign(BODY, "whsec_test", STAMP)
    headers["X-Voxflow-Timestamp"] = str(STAMP + 1000)  # make an old capture look fresh
    with pytest.raises(SignatureError, match="mismatch"):
        verify(headers, BODY, ["whsec_test"], now=STAMP + 1000)


def test_verify_needs_a_secret() -> None:
    with pytest.raises(SignatureError, match="at least one secret"):
        verify(sign(BODY, "x", STAMP), BODY, [], now=STAMP)


def test_token_check() -> None:
    check_token({"x-api-token": "s3cret"}, "s3cret")
    with pytest.raises(SignatureError, match="missing X-API-TOKEN"):
        check_token({}, "s3cret")
    with pytest.raises(SignatureError, match="does not match"):
        check_token({"X-API-TOKEN": "s3cre"}, "s3cret")
    with pytest.raises(SignatureError, match="does not match"):
        check_token({"X-API-TOKEN": "sëcret"}, "s3cret")
