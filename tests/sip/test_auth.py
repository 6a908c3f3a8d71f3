from typing import Any

import pytest

from voxflow.errors import SipParseError
from voxflow.sip.auth import (
    Challenge,
    DigestServer,
    Verdict,
    answer_challenge,
    compute_response,
    parse_auth_params,
)

RFC7616: dict[str, Any] = {
    "username": "Mufasa",
    "realm": "http-auth@example.org",
    "password": "Circle of Life",
    "method": "GET",
    "uri": "/dir/index.html",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "qop": "auth",
    "nc": "00000001",
    "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
}


def test_rfc2617_section_3_5_example() -> None:
    response = compute_response(
        algorithm="MD5",
        username="Mufasa",
        realm="testrealm@host.com",
        password="Circle Of Life",
        method="GET",
        uri="/dir/index.html",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        qop="auth",
        nc="00000001",
        cnonce="0a4f113b",
    )
    assert response == "6629fae49393a05397450978507c4ef1"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_section_3_9_1_examples(algorithm: str, expected: str) -> None:
    assert compute_response(algorithm=algorithm, **RFC7616) == expected


def test_client_answers_a_challenge_header() -> None:
    header = (
        'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    challenge = Challenge.parse(header)
    assert challenge.algorithm == "SHA-256" and challenge.qop == ("auth", "auth-int")
    value = answer_challenge(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle of Life",
        cnonce=RFC7616["cnonce"],
    )
    params = parse_auth_params(value)
    assert params["response"] == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    assert params["nc"] == "00000001" and params["opaque"].startswith("FQhe")


def test_challenge_without_qop_uses_rfc2069_form() -> None:
    challenge = Challenge.parse('Digest realm="r", nonce="n"')
    params = parse_auth_params(
        answer_challenge(
            challenge, method="REGISTER", uri="sip:r", username="u", password="p", cnonce="c"
        )
    )
    assert "qop" not in params and params["algorithm"] == "MD5"
    assert params["response"] == compute_response(
        algorithm="MD5",
        username="u",
        realm="r",
        password="p",
        method="REGISTER",
        uri="sip:r",
        nonce="n",
    )


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ('Basic realm="x"', "not Digest"),
        ('Digest realm="x"', "lacks realm or nonce"),
        ('Digest realm="x", nonce="y", algorithm=SHA-512-256-foo', "not supported"),
    ],
)
def test_bad_challenges_are_named(header: str, problem: str) -> None:
    with pytest.raises(SipParseError, match=problem):
        Challenge.parse(header)


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_server_challenge_round_trip(algorithm: str) -> None:
    server = DigestServer("voxflow", {"trunk": "s3cret"}, b"key", algorithm=algorithm)
    challenge = Challenge.parse(server.challenge(now=100.0))
    good = answer_challenge(
        challenge,
        method="INVITE",
        uri="sip:bot@x",
        username="trunk",
        password="s3cret",
        cnonce="abc",
    )
    wrong = answer_challenge(
        challenge,
        method="INVITE",
        uri="sip:bot@x",
        username="trunk",
        password="guess",
        cnonce="abc",
    )
    assert server.verify(good, "INVITE", now=110.0) is Verdict.OK
    assert server.verify(wrong, "INVITE", now=110.0) is Verdict.INVALID
    assert server.verify(good, "BYE", now=110.0) is Verdict.INVALID
    assert server.verify(good, "INVITE", now=100.0 + 301) is Verdict.STALE
    assert server.verify(None, "INVITE", now=110.0) is Verdict.MISSING
    assert "stale=true" in server.challenge(now=500.0, stale=True)


def test_server_refuses_nonces_it_did_not_sign() -> None:
    ours = DigestServer("voxflow", {"trunk": "s3cret"}, b"key")
    theirs = DigestServer("voxflow", {"trunk": "s3cret"}, b"other key")
    forged = answer_challenge(
        Challenge.parse(theirs.challenge(now=1.0)),
        method="INVITE",
        uri="sip:bot@x",
        username="trunk",
        password="s3cret",
        cnonce="c",
    )
    assert ours.verify(forged, "INVITE", now=2.0) is Verdict.INVALID
    assert ours.verify("Digest garbage", "INVITE", now=2.0) is Verdict.INVALID
