"""The session object of an inbound call: E.164 numbers, P-Asserted-Identity preferred."""

from __future__ import annotations

import pytest

from voxflow.server.identity import asserted_user, build_session, e164


@pytest.mark.parametrize(("user", "plus", "expected"), [
    ("4930123456", True, "+4930123456"),
    ("+4930123456", True, "+4930123456"),
    ("004930123456", True, "+4930123456"),
    ("+49 (30) 123-456", True, "+4930123456"),
    ("+4930123456", False, "4930123456"),
    ("alice", True, "alice"),
    (None, True, ""),
])
def test_e164(user: str | None, plus: bool, expected: str) -> None:
    assert e164(user, plus=plus) == expected


def test_asserted_identity_wins_over_from() -> None:
    session = build_session(
        caller="anonymous", callee="0049211555",
        asserted_identity='"Alice" <sip:+4930123456@trunk.example;user=phone>',
        account_id="account-123", new_id=lambda: "550e8400-e29b-41d4-a716-446655440000",
    )
    assert session.model_dump(mode="json") == {
        "id": "550e8400-e29b-41d4-a716-446655440000", "account_id": "account-123",
        "phone_number": "+49211555", "direction": "inbound",
        "from_phone_number": "+4930123456", "to_phone_number": "+49211555",
    }


def test_unparseable_asserted_identity_falls_back_to_from() -> None:
    assert asserted_user("<not a uri") is None
    session = build_session(caller="4930", callee="1", asserted_identity="<not a uri",
                            account_id="")
    assert session.from_phone_number == "+4930"
    assert len(session.id) == 36
