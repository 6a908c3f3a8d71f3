"""Garbage, truncation, oversize and floods leave the agent serving."""

import random

from hypothesis import given
from hypothesis import strategies as st
from sip_harness import AGENT, OFFER_SDP, PEER, SipHarness, request_text

from voxflow.sip.config import SipConfig
from voxflow.sip.events import CallEnded, IncomingCall
from voxflow.sip.message import MAX_MESSAGE_SIZE, Response

INVITE = request_text("INVITE", body=OFFER_SDP, content_type="application/sdp")


def still_serving(h: SipHarness) -> None:
    h.sent()
    h.send(request_text("OPTIONS", branch=f"z9hG4bK-alive-{h.now}", call_id=f"alive-{h.now}"))
    assert h.statuses() == [200]


def test_random_bytes_are_dropped_silently() -> None:
    h = SipHarness()
    rng = random.Random(7)
    for size in (0, 1, 10, 100, 1500, 9000):
        h.send(bytes(rng.randrange(256) for _ in range(size)))
    assert h.sent() == []
    assert h.ua.stats.malformed == 6 and h.ua.stats.internal_errors == 0
    still_serving(h)


def test_truncated_invites_get_400_when_addressable() -> None:
    h = SipHarness()
    for cut in range(len(INVITE) - 1, 0, -7):
        h.send(INVITE[:cut])
    responses = h.sent_messages()
    assert responses and all(isinstance(r, Response) and r.status == 400 for r in responses)
    assert h.ua.stats.internal_errors == 0 and h.ua.call_count == 0
    still_serving(h)


def test_400_names_the_problem_in_a_warning() -> None:
    h = SipHarness()
    h.send(INVITE.replace(b"Content-Length: ", b"Content-Length: 9"))
    ((response, addr),) = h.sent()
    assert isinstance(response, Response) and response.status == 400 and addr == PEER
    assert "Content-Length" in (response.headers.get("Warning") or "")


def test_oversized_message_gets_513() -> None:
    h = SipHarness()
    h.send(request_text("INFO", body="x" * (MAX_MESSAGE_SIZE + 1)))
    (response,) = h.sent_messages()
    assert isinstance(response, Response) and response.status == 513
    still_serving(h)


def test_bad_sdp_is_answered_not_raised() -> None:
    h = SipHarness()
    h.send(request_text("INVITE", body="v=0\r\nm=audio x\r\n", content_type="application/sdp"))
    (response,) = h.sent_messages()
    assert isinstance(response, Response) and response.status == 400
    assert h.events() == []


def test_invite_flood_of_500_is_bounded_and_drains() -> None:
    config = SipConfig(
        listen_address=AGENT[0], listen_port=AGENT[1], max_calls=100, answer_timeout=30.0
    )
    h = SipHarness(config)
    for n in range(500):
        h.send(
            request_text(
                "INVITE",
                call_id=f"flood-{n}",
                branch=f"z9hG4bK-f{n}",
                body=OFFER_SDP,
                content_type="application/sdp",
            )
        )
        h.now += 0.001
    statuses = h.statuses()
    assert statuses.count(100) == 100 and statuses.count(503) == 400
    assert sum(isinstance(e, IncomingCall) for e in h.events()) == 100
    assert h.ua.call_count == 100 and h.ua.transaction_count == 100
    still_serving(h)
    h.advance(30 + 33)
    ended = h.events()
    assert len(ended) == 100 and all(isinstance(e, CallEnded) and e.status == 480 for e in ended)
    assert h.ua.call_count == 0 and h.ua.transaction_count == 0
    h.sent()
    h.send(INVITE)
    assert h.statuses() == [100]


@given(st.integers(min_value=0, max_value=600), st.binary(min_size=1, max_size=16))
def test_corrupted_invites_never_escape(position: int, junk: bytes) -> None:
    h = SipHarness()
    h.send(INVITE[:position] + junk + INVITE[position + len(junk) :])
    assert h.ua.stats.internal_errors == 0
    for data, _ in h.ua.datagrams_to_send(h.now):
        assert data.startswith((b"SIP/2.0 100 ", b"SIP/2.0 4", b"SIP/2.0 5"))
