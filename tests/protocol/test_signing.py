import hashlib
import hmac

import pytest

from voxflow.errors import SignatureError
from voxflow.protocol.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify

BODY = b'{"type":"session_start","session":{"id":"abc"}}'
NOW = 1_700_000_000


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    headers = sign(BODY, "s3cret", NOW)
    expected = hmac.new(b"s3cret", f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert headers == {TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: f"v1={expected}"}


def test_verify_accepts_fresh_signature_with_any_header_case() -> None:
    headers = {key.lower(): value for key, value in sign(BODY, "s3cret", NOW).items()}
    verify(headers, BODY, ["s3cret"], now=NOW + 10)


def test_verify_accepts_old_secret_during_rotation() -> None:
    verify(sign(BODY, "old", NOW), BODY, ["new", "old"], now=NOW)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing"),
        ({TIMESTAMP_HEADER: str(NOW)}, "missing"),
        ({TIMESTAMP_HEADER: "yesterday", SIGNATURE_HEADER: "v1=00"}, "malformed"),
        ({TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: "sha256=00"}, "malformed"),
        ({TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: "v1=00"}, "mismatch"),
    ],
)
def test_verify_names_the_reason(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify(headers, BODY, ["s3cret"], now=NOW)


def test_verify_rejects_replay_outside_window() -> None:
    headers = sign(BODY, "s3cret", NOW)
    with pytest.raises(SignatureError, match="expired"):
        verify(headers, BODY, ["s3cret"], now=NOW + 301)
    with pytest.raises(SignatureError, match="expired"):
        verify(headers, BODY, ["s3cret"], now=NOW - 301)


def test_verify_rejects_tampered_body_and_wrong_secret() -> None:
    headers = sign(BODY, "s3cret", NOW)
    with pytest.raises(SignatureError, match="mismatch"):
        verify(headers, BODY + b" ", ["s3cret"], now=NOW)
    with pytest.raises(SignatureError, match="mismatch"):
        verify(headers, BODY, ["other"], now=NOW)


def test_empty_secrets_are_configuration_errors() -> None:
    with pytest.raises(SignatureError, match="empty"):
        sign(BODY, "", NOW)
    with pytest.raises(SignatureError, match="no signing secret"):
        verify(sign(BODY, "s", NOW), BODY, [""], now=NOW)
