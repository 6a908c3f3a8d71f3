"""Whole-agent scenarios driven by byte strings and a fake clock."""

import pytest
from sip_harness import AGENT, OFFER_SDP, PEER, SipHarness, request_text

from voxflow.errors import SipStateError
from voxflow.sip.auth import Challenge, DigestServer, answer_challenge
from voxflow.sip.config import Credentials, InboundAuth, SipConfig, TrunkRegistration
from voxflow.sip.events import (
    CallAnswered,
    CallConfirmed,
    CallEnded,
    IncomingCall,
    InfoReceived,
    MediaUpdated,
    OutgoingCallProgress,
    RegistrationState,
    TransferProgress,
)
from voxflow.sip.message import Request, Response

INVITE = request_text(
    "INVITE",
    body=OFFER_SDP,
    content_type="application/sdp",
    extra="P-Asserted-Identity: <sip:+4930123@trunk>",
)


def answered_call(h: SipHarness) -> str:
    """Bring call-1 to the confirmed state; returns the agent's To tag."""
    h.send(INVITE)
    (incoming,) = h.events()
    assert isinstance(incoming, IncomingCall)
    h.ua.answer("call-1", "192.0.2.1", 30000, h.now)
    ok = h.sent_messages()[-1]
    assert isinstance(ok, Response) and ok.status == 200
    tag = ok.to_address.tag
    assert tag is not None
    h.send(request_text("ACK", branch="z9hG4bK-ack", to_tag=tag))
    assert h.events() == [CallConfirmed("call-1")]
    return tag


def test_invite_ring_answer_ack_info_bye() -> None:
    h = SipHarness()
    h.send(INVITE)
    assert h.statuses() == [100]
    (incoming,) = h.events()
    assert isinstance(incoming, IncomingCall)
    assert (incoming.from_number, incoming.to_number) == ("+4930123", "bot")
    assert incoming.asserted_identity == "<sip:+4930123@trunk>"
    assert incoming.remote_addr == PEER
    h.ua.ring("call-1", h.now)
    media = h.ua.answer("call-1", "192.0.2.1", 30000, h.now)
    assert media is not None and media.codec.name == "PCMU" and media.telephone_event is not None
    ringing, ok = h.sent()
    assert ringing[0].status == 180 and ok[0].status == 200  # type: ignore[union-attr]
    assert ok[1] == PEER  # rport: answer to the source port
    assert b"m=audio 30000 RTP/AVP 0 101" in ok[0].body
    tag = ok[0].to_address.tag
    h.send(request_text("ACK", branch="z9hG4bK-ack", to_tag=tag))
    assert h.events() == [CallConfirmed("call-1")]
    h.advance(10)
    assert h.sent() == []  # the ACK stopped the 2xx retransmissions
    info = request_text(
        "INFO",
        cseq=2,
        branch="z9hG4bK-info",
        to_tag=tag,
        content_type="application/dtmf-relay",
        body="Signal=5\r\nDuration=250\r\n",
    )
    h.send(info)
    h.send(info)  # a retransmission is absorbed: one event, the same 200 again
    assert h.statuses() == [200, 200]
    assert h.events() == [
        InfoReceived("call-1", "application/dtmf-relay", b"Signal=5\r\nDuration=250\r\n", 2)
    ]
    h.send(request_text("BYE", cseq=3, branch="z9hG4bK-bye", to_tag=tag))
    assert h.statuses() == [200]
    assert h.events() == [CallEnded("call-1", "bye", "remote")]
    assert h.ua.call_count == 0
    h.advance(40)
    assert h.ua.transaction_count == 0


def test_unanswered_2xx_is_retransmitted_then_ack_timeout_sends_bye() -> None:
    h = SipHarness()
    h.send(INVITE)
    h.events()
    h.ua.answer("call-1", "192.0.2.1", 30000, h.now)
    h.sent()
    h.advance(31.9)
    assert h.statuses().count(200) >= 6
    h.advance(0.2)
    assert h.events() == [CallEnded("call-1", "ack-timeout", "timeout", 408)]
    assert h.statuses() == ["BYE"]


def test_cancel_before_answer() -> None:
    h = SipHarness()
    h.send(INVITE)
    h.sent(), h.events()
    h.send(request_text("CANCEL"))
    assert sorted(h.statuses()) == [200, 487]
    assert h.events() == [CallEnded("call-1", "cancelled", "remote", 487)]
    h.send(request_text("ACK"))  # ACK for the 487 matches the INVITE transaction by branch
    assert h.sent() == [] and h.ua.stats.dropped == 0
    with pytest.raises(SipStateError, match="no call"):
        h.ua.answer("call-1", "192.0.2.1", 30000, h.now)


def test_cancel_for_unknown_invite_is_481() -> None:
    h = SipHarness()
    h.send(request_text("CANCEL", branch="z9hG4bK-nothing"))
    assert h.statuses() == [481]


def test_reinvite_hold_and_unhold() -> None:
    h = SipHarness()
    tag = answered_call(h)
    h.sent()
    hold = OFFER_SDP.replace("a=sendrecv", "a=sendonly").replace("o=peer 1 1", "o=peer 1 2")
    h.send(
        request_text(
            "INVITE",
            cseq=2,
            branch="z9hG4bK-hold",
            to_tag=tag,
            body=hold,
            content_type="application/sdp",
        )
    )
    (ok,) = h.sent_messages()
    assert isinstance(ok, Response) and ok.status == 200 and b"a=recvonly" in ok.body
    (update,) = h.events()
    assert isinstance(update, MediaUpdated) and update.media.on_hold
    h.send(request_text("ACK", cseq=2, branch="z9hG4bK-ack2", to_tag=tag))
    unhold = OFFER_SDP.replace("0 101", "8 101").replace("8 0 101", "8 101")
    h.send(
        request_text(
            "INVITE",
            cseq=3,
            branch="z9hG4bK-unhold",
            to_tag=tag,
            body=unhold,
            content_type="application/sdp",
        )
    )
    (ok,) = h.sent_messages()
    assert isinstance(ok, Response) and b"a=sendrecv" in ok.body
    (update,) = h.events()
    assert isinstance(update, MediaUpdated)
    assert not update.media.on_hold and update.media.codec.name == "PCMA"
    assert b"voxflow" in ok.body and b" 3 IN IP4" in ok.body  # o= version went up each time


def test_reinvite_without_common_codec_keeps_the_call_with_488() -> None:
    h = SipHarness()
    tag = answered_call(h)
    h.sent()
    bad = OFFER_SDP.replace("8 0 101", "18")
    h.send(
        request_text(
            "INVITE",
            cseq=2,
            branch="z9hG4bK-bad",
            to_tag=tag,
            body=bad,
            content_type="application/sdp",
        )
    )
    (response,) = h.sent_messages()
    assert isinstance(response, Response) and response.status == 488
    assert "G729" in (response.headers.get("Warning") or "")
    assert h.events() == [] and h.ua.call_count == 1


def test_refer_then_notify_sipfrag_progress() -> None:
    h = SipHarness()
    tag = answered_call(h)
    h.sent()
    h.ua.refer("call-1", "sip:+4989123@trunk.example", h.now)
    ((refer, addr),) = h.sent()
    assert isinstance(refer, Request) and refer.method == "REFER" and addr == PEER
    assert refer.headers.get("Refer-To") == "<sip:+4989123@trunk.example>"
    assert refer.from_address.tag == tag and refer.to_address.tag == "peer-tag"
    h.send(bytes(Response.for_request(refer, 202)))
    assert h.events() == [TransferProgress("call-1", 202, "Accepted", False)]
    for cseq, frag, state in (
        (2, "SIP/2.0 100 Trying", "active"),
        (3, "SIP/2.0 200 OK", "terminated"),
    ):
        h.send(
            request_text(
                "NOTIFY",
                cseq=cseq,
                branch=f"z9hG4bK-n{cseq}",
                to_tag=tag,
                content_type="message/sipfrag",
                body=frag,
                extra=f"Event: refer\nSubscription-State: {state}",
            )
        )
    assert h.statuses() == [200, 200]
    assert h.events() == [
        TransferProgress("call-1", 100, "Trying", False),
        TransferProgress("call-1", 200, "OK", True),
    ]


def test_refer_rejected_is_a_final_failure() -> None:
    h = SipHarness()
    answered_call(h)
    h.sent()
    h.ua.refer("call-1", "sip:x@192.0.2.99", h.now)
    (refer,) = h.sent_messages()
    assert isinstance(refer, Request)
    h.send(bytes(Response.for_request(refer, 603)))
    assert h.events() == [TransferProgress("call-1", 603, "Decline", True)]


def test_options_gets_allow_and_accept() -> None:
    h = SipHarness()
    h.send(request_text("OPTIONS"))
    (response,) = h.sent_messages()
    assert isinstance(response, Response) and response.status == 200
    assert "INFO" in response.headers.get_all("Allow")
    assert "application/dtmf-relay" in response.headers.get_all("Accept")


def test_unknown_and_stray_requests() -> None:
    h = SipHarness()
    h.send(request_text("MESSAGE"))
    h.send(request_text("BYE", branch="z9hG4bK-2", to_tag="nope"))
    h.send(request_text("INFO", branch="z9hG4bK-3"))
    assert h.statuses() == [405, 481, 481]


def test_outgoing_invite_with_407_challenge_then_answer_and_bye() -> None:
    config = SipConfig(
        listen_address=AGENT[0],
        listen_port=AGENT[1],
        outbound_credentials=Credentials("trunk", "s3cret"),
    )
    h = SipHarness(config)
    server = DigestServer("trunk", {"trunk": "s3cret"}, b"k")
    call_id = h.ua.invite("sip:+4989123@192.0.2.10:5070", "192.0.2.1", 31000, h.now)
    ((invite, addr),) = h.sent()
    assert isinstance(invite, Request) and addr == PEER and b"telephone-event" in invite.body
    h.advance(0.5)
    assert h.statuses() == ["INVITE"]  # Timer A retransmission
    challenge = Response.for_request(invite, 407, to_tag="t407")
    challenge.headers.add("Proxy-Authenticate", server.challenge(h.now))
    h.send(bytes(challenge))
    ack, retry = h.sent_messages()
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert isinstance(retry, Request) and retry.cseq.number == 2
    assert server.verify(retry.headers.get("Proxy-Authorization"), "INVITE", h.now).value == "ok"
    h.send(bytes(Response.for_request(retry, 180, to_tag="callee")))
    assert h.events() == [OutgoingCallProgress(call_id, 180, "Ringing")]
    answer = OFFER_SDP.replace("8 0 101", "0 101")
    ok = Response.for_request(retry, 200, to_tag="callee", body=answer.encode())
    ok.headers.add("Contact", "<sip:callee@192.0.2.10:5070>")
    ok.headers.add("Content-Type", "application/sdp")
    h.send(bytes(ok))
    (answered,) = h.events()
    assert isinstance(answered, CallAnswered) and answered.media.codec.name == "PCMU"
    (ack2,) = h.sent_messages()
    assert isinstance(ack2, Request) and ack2.method == "ACK" and ack2.cseq.number == 2
    h.send(bytes(ok))  # a 2xx copy is ACKed again
    assert h.statuses() == ["ACK"]
    h.ua.hangup(call_id, h.now)
    (bye,) = h.sent_messages()
    assert isinstance(bye, Request) and bye.method == "BYE" and bye.cseq.number == 3
    h.send(bytes(Response.for_request(bye, 200)))
    assert h.events() == [CallEnded(call_id, "hangup", "local")]
    assert h.ua.call_count == 0


def test_outgoing_invite_cancelled_after_ringing() -> None:
    h = SipHarness()
    call_id = h.ua.invite("sip:x@192.0.2.10:5070", "192.0.2.1", 31000, h.now)
    (invite,) = h.sent_messages()
    assert isinstance(invite, Request)
    h.ua.hangup(call_id, h.now)
    assert h.sent() == []  # no CANCEL before a provisional response
    h.send(bytes(Response.for_request(invite, 180, to_tag="r")))
    (cancel,) = h.sent_messages()
    assert isinstance(cancel, Request) and cancel.method == "CANCEL"
    h.send(bytes(Response.for_request(cancel, 200)))
    h.send(bytes(Response.for_request(invite, 487, to_tag="r")))
    assert h.statuses() == ["ACK"]
    assert h.events() == [CallEnded(call_id, "hangup", "local")]
    assert h.ua.call_count == 0


def test_outgoing_invite_timeout() -> None:
    h = SipHarness()
    call_id = h.ua.invite("sip:x@192.0.2.10:5070", "192.0.2.1", 31000, h.now)
    h.advance(40)
    assert h.events() == [CallEnded(call_id, "timeout", "timeout", 408)]
    assert h.statuses().count("INVITE") == 7


def test_register_with_401_then_refresh_before_expiry() -> None:
    registration = TrunkRegistration(
        "sip.example", ("192.0.2.50", 5060), Credentials("u1", "pw"), expires=600
    )
    h = SipHarness(
        SipConfig(listen_address=AGENT[0], listen_port=AGENT[1], registration=registration)
    )
    server = DigestServer("sip.example", {"u1": "pw"}, b"k", algorithm="SHA-256")
    h.ua.register(h.now)
    ((first, addr),) = h.sent()
    assert isinstance(first, Request) and addr == ("192.0.2.50", 5060)
    assert str(first.uri) == "sip:sip.example" and first.headers.get("Expires") == "600"
    challenge = Response.for_request(first, 401, to_tag="r")
    challenge.headers.add("WWW-Authenticate", server.challenge(h.now))
    h.send(bytes(challenge), ("192.0.2.50", 5060))
    (second,) = h.sent_messages()
    assert isinstance(second, Request) and second.cseq.number == 2
    assert second.call_id == first.call_id
    assert server.verify(second.headers.get("Authorization"), "REGISTER", h.now).value == "ok"
    ok = Response.for_request(second, 200, to_tag="r")
    ok.headers.add("Contact", f"<sip:u1@{AGENT[0]}:{AGENT[1]}>;expires=300")
    h.send(bytes(ok), ("192.0.2.50", 5060))
    assert h.events() == [RegistrationState(True, 200, "OK", 300)]
    h.advance(269)
    assert h.sent() == []
    h.advance(1)
    refresh = h.sent_messages()[0]
    assert isinstance(refresh, Request) and refresh.cseq.number == 3


def test_register_failure_is_reported_and_retried() -> None:
    registration = TrunkRegistration(
        "sip.example", ("192.0.2.50", 5060), Credentials("u1", "pw"), retry_after=30
    )
    h = SipHarness(
        SipConfig(listen_address=AGENT[0], listen_port=AGENT[1], registration=registration)
    )
    h.ua.register(h.now)
    (first,) = h.sent_messages()
    assert isinstance(first, Request)
    h.send(bytes(Response.for_request(first, 403, to_tag="r")), ("192.0.2.50", 5060))
    assert h.events() == [RegistrationState(False, 403, "Forbidden")]
    h.advance(30.1)
    assert h.statuses() == ["REGISTER"]


def test_inbound_digest_auth_for_invite() -> None:
    auth = InboundAuth("voxflow", {"trunk": "pw"}, b"secret")
    h = SipHarness(SipConfig(listen_address=AGENT[0], listen_port=AGENT[1], inbound_auth=auth))
    h.send(INVITE)
    (challenge,) = h.sent_messages()
    assert isinstance(challenge, Response) and challenge.status == 407
    assert h.events() == [] and h.ua.transaction_count == 0  # challenges are stateless
    parsed = Challenge.parse(challenge.headers.get("Proxy-Authenticate") or "")
    credentials = answer_challenge(
        parsed,
        method="INVITE",
        uri="sip:bot@192.0.2.1:5060",
        username="trunk",
        password="pw",
        cnonce="c",
    )
    h.send(
        request_text(
            "INVITE",
            cseq=2,
            branch="z9hG4bK-2",
            body=OFFER_SDP,
            content_type="application/sdp",
            extra=f"Proxy-Authorization: {credentials}",
        )
    )
    assert h.statuses() == [100]
    assert isinstance(h.events()[0], IncomingCall)


def test_allow_list_refuses_other_sources() -> None:
    h = SipHarness(
        SipConfig(
            listen_address=AGENT[0], listen_port=AGENT[1], allowed_sources=("198.51.100.0/24",)
        )
    )
    h.send(INVITE)
    (response,) = h.sent_messages()
    assert isinstance(response, Response) and response.status == 403
    assert h.events() == [] and h.ua.stats.forbidden == 1
    h.send(INVITE, ("198.51.100.7", 5060))
    assert isinstance(h.events()[0], IncomingCall)


def test_offer_without_common_codec_is_answered_488_without_an_event() -> None:
    h = SipHarness()
    h.send(
        request_text(
            "INVITE", body=OFFER_SDP.replace("8 0 101", "18"), content_type="application/sdp"
        )
    )
    (response,) = h.sent_messages()
    assert isinstance(response, Response) and response.status == 488
    assert "G729" in (response.headers.get("Warning") or "")
    assert h.events() == []


def test_unanswered_call_times_out_with_480() -> None:
    h = SipHarness()
    h.send(INVITE)
    h.sent(), h.events()
    h.advance(61)
    assert h.events() == [CallEnded("call-1", "no-answer", "timeout", 480)]
    assert 480 in h.statuses()


def test_hangup_before_ack_waits_for_the_ack() -> None:
    h = SipHarness()
    h.send(INVITE)
    h.events()
    h.ua.answer("call-1", "192.0.2.1", 30000, h.now)
    tag = h.sent_messages()[-1].to_address.tag
    h.ua.hangup("call-1", h.now)
    assert h.sent() == []
    assert h.events() == [CallEnded("call-1", "hangup", "local")]
    h.send(request_text("ACK", branch="z9hG4bK-ack", to_tag=tag))
    assert h.statuses() == ["BYE"]


def test_commands_on_unknown_calls_raise_state_errors() -> None:
    h = SipHarness()
    with pytest.raises(SipStateError):
        h.ua.hangup("nope", h.now)
    h.send(INVITE)
    with pytest.raises(SipStateError, match="is incoming, not confirmed"):
        h.ua.refer("call-1", "sip:x@y", h.now)
