"""Inputs the fuzzers found, each kept as a test of the bug it exposed."""

import contextlib

import pytest
from sip_harness import OFFER_SDP, SipHarness, request_text

from voxflow.errors import DtmfParseError, SdpError
from voxflow.media.dtmf.sip_info import parse_sip_info_dtmf
from voxflow.sip.events import CallConfirmed, IncomingCall
from voxflow.sip.message import Request, Response
from voxflow.sip.sdp import SessionDescription


@pytest.mark.parametrize("body", ["\ufffd", "€\x05\x8a\x03"])
def test_telephone_event_info_text_body_outside_latin1_is_a_parse_error(body: str) -> None:
    # was: UnicodeEncodeError escaped from parse_sip_info_dtmf
    with pytest.raises(DtmfParseError, match="non-byte characters"):
        parse_sip_info_dtmf("audio/telephone-event", body)


def test_telephone_event_info_latin1_text_body_still_parses() -> None:
    report = parse_sip_info_dtmf("audio/telephone-event", "\x05\x8a\x03\x20")
    assert report.key == "5" and not report.flash


def test_sdp_connection_without_an_address_is_refused() -> None:
    # was: accepted as address "", serialized as "c=IN IP4 " which no longer parsed
    with pytest.raises(SdpError, match="no address") as caught:
        SessionDescription.parse(b"v=0\r\nc=IN IP4 /127\r\nm=audio 4000 RTP/AVP 0\r\n")
    assert caught.value.status == 400


def test_invite_with_an_unparsable_contact_is_answered_400_not_offered_as_a_call() -> None:
    # was: IncomingCall was emitted, then answer() raised SipParseError building the dialog
    h = SipHarness()
    h.send(
        request_text(
            "INVITE",
            body=OFFER_SDP,
            content_type="application/sdp",
            extra="Contact: <sip:alice@192.0.2.10:5070:",
        ).replace(b"Contact: <sip:alice@192.0.2.10:5070>\r\n", b"")
    )
    (response,) = h.sent_messages()
    assert isinstance(response, Response) and response.status == 400
    assert "Contact" in (response.headers.get("Warning") or "")
    assert h.events() == [] and h.ua.call_count == 0 and h.ua.transaction_count == 0


@pytest.mark.parametrize("ack_branch", ["z9hG4bK-1", "rfc2543-style"])
def test_ack_for_our_2xx_matching_the_invite_branch_confirms_the_call(ack_branch: str) -> None:
    # was: the INVITE server transaction swallowed the ACK, the call stayed "answered" for ever
    h = SipHarness()
    invite_branch = "z9hG4bK-1" if ack_branch.startswith("z9hG4bK") else ack_branch
    h.send(
        request_text("INVITE", branch=invite_branch, body=OFFER_SDP, content_type="application/sdp")
    )
    (incoming,) = h.events()
    assert isinstance(incoming, IncomingCall)
    h.ua.answer(incoming.call_id, "192.0.2.1", 4000, h.now)
    (_trying, ok) = h.sent_messages()
    assert isinstance(ok, Response) and ok.status == 200
    h.send(request_text("ACK", branch=ack_branch, to_tag=ok.to_address.tag))
    assert h.events() == [CallConfirmed(incoming.call_id)]
    h.advance(64)
    assert h.sent() == [] and h.events() == []  # no 2xx retransmission, no ack-timeout BYE


def outgoing_call(h: SipHarness) -> tuple[str, Request]:
    call_id = h.ua.invite("sip:bob@192.0.2.10:5070", "192.0.2.1", 4000, h.now)
    (invite,) = h.sent_messages()
    assert isinstance(invite, Request) and invite.method == "INVITE"
    return call_id, invite


@pytest.mark.parametrize("hangup_first", [False, True])
def test_hangup_with_only_100_trying_cancels_at_once(hangup_first: bool) -> None:
    # was: the CANCEL waited for a provisional other than 100, so the callee kept ringing
    h = SipHarness()
    call_id, invite = outgoing_call(h)
    if hangup_first:
        h.ua.hangup(call_id, h.now)
    h.send(bytes(Response.for_request(invite, 100)), ("192.0.2.10", 5070))
    if not hangup_first:
        h.ua.hangup(call_id, h.now)
    assert [m.method for m in h.sent_messages() if isinstance(m, Request)] == ["CANCEL"]


def test_cancelled_invite_without_a_final_response_is_given_up_after_64_t1() -> None:
    # was: call (terminating) and INVITE transaction (proceeding, no timer) stayed for ever
    h = SipHarness()
    call_id, invite = outgoing_call(h)
    h.send(bytes(Response.for_request(invite, 180, to_tag="far")), ("192.0.2.10", 5070))
    h.ua.hangup(call_id, h.now)
    h.advance(31)
    assert h.ua.call_count == 1  # still waiting for the 487
    h.advance(2)
    assert h.ua.call_count == 0 and h.ua.transaction_count == 0 and h.ua.get_timer() is None
    events = h.events()
    assert [type(e).__name__ for e in events].count("CallEnded") == 1  # only the hangup's


def test_a_487_after_cancel_still_ends_the_call_at_once() -> None:
    h = SipHarness()
    call_id, invite = outgoing_call(h)
    h.send(bytes(Response.for_request(invite, 180, to_tag="far")), ("192.0.2.10", 5070))
    h.ua.hangup(call_id, h.now)
    h.send(bytes(Response.for_request(invite, 487, to_tag="far")), ("192.0.2.10", 5070))
    assert h.ua.call_count == 0


@pytest.mark.parametrize("signal", ["²", "¹", "٣٣٣"])
def test_info_signal_of_unicode_digits_is_a_parse_error_or_a_key(signal: str) -> None:
    # was: "²".isdigit() is True but int("²") raises ValueError, which escaped the parser
    try:
        report = parse_sip_info_dtmf("application/dtmf", signal)
    except DtmfParseError:
        return
    assert report.key in set("0123456789*#ABCD")


@pytest.mark.parametrize("field", ["m=audio 4000 RTP/AVP ²\r\n", "m=audio ⁴⁰⁰⁰ RTP/AVP 0\r\n",
                                   "m=audio 4000 RTP/AVP 0\r\na=rtpmap:¹ PCMU/8000\r\n"])
def test_sdp_with_unicode_superscript_digits_never_raises_valueerror(field: str) -> None:
    # same trap as above in the SDP parser: isdigit() accepts superscripts int() refuses
    text = "v=0\r\nc=IN IP4 192.0.2.1\r\n" + field
    with contextlib.suppress(SdpError):  # refusing is fine; anything else escaping is the bug
        SessionDescription.parse(text.encode("utf-8"))


@pytest.mark.parametrize("second_to", ["<sip\x1abot@192.0.2.1>", "<sip:From:92.0.2.1>",
                                       "<sip:bob@192.0.2.1>"])
def test_invite_with_a_second_to_header_is_answered_400_not_offered_as_a_call(
    second_to: str,
) -> None:
    # was: the call rang with the first To, and the 480 of its no-answer timer raised
    # SipParseError building the tagged To from the second one
    h = SipHarness()
    h.send(request_text("INVITE", body=OFFER_SDP, content_type="application/sdp",
                        extra=f"To: {second_to}"))
    (response,) = h.sent_messages()
    assert isinstance(response, Response) and response.status == 400
    assert "To appears 2 times" in (response.headers.get("Warning") or "")
    assert h.events() == [] and h.ua.call_count == 0 and h.ua.transaction_count == 0


@pytest.mark.parametrize("provisional", [True, False])
def test_487_with_another_call_id_does_not_end_the_invite_transaction(provisional: bool) -> None:
    # was: the 487 matched our INVITE's branch, so the transaction completed and sent its ACK,
    # but the call was looked up by the 487's Call-ID; nothing ended it, it stayed terminating
    h = SipHarness()
    call_id, invite = outgoing_call(h)
    if provisional:
        h.send(bytes(Response.for_request(invite, 180, to_tag="far")), ("192.0.2.10", 5070))
    h.ua.hangup(call_id, h.now)
    h.sent()
    forged = Response.for_request(invite, 487, to_tag="far")
    forged.headers.set("Call-ID", call_id.replace("@", ":"))
    h.send(bytes(forged), ("192.0.2.10", 5070))
    assert h.sent() == [] and h.ua.stats.malformed == 1  # no ACK: not an answer to our INVITE
    assert h.ua.call_count == 1 and h.ua.transaction_count == (2 if provisional else 1)
    h.advance(64 * 0.5 + 1)  # CANCEL given up / Timer B: the call ends all the same
    assert h.ua.call_count == 0 and h.ua.transaction_count == 0 and h.ua.get_timer() is None


@pytest.mark.parametrize("header", ["Call-ID", "CSeq", "From"])
def test_response_not_echoing_our_request_is_not_delivered(header: str) -> None:
    h = SipHarness()
    _, invite = outgoing_call(h)
    ok = Response.for_request(invite, 200, to_tag="far")
    forged = {
        "Call-ID": "someone-else",
        "CSeq": "2 INVITE",
        "From": str(invite.from_address.with_tag("other")),
    }
    ok.headers.set(header, forged[header])
    h.send(bytes(ok), ("192.0.2.10", 5070))
    assert h.sent() == [] and h.events() == [] and h.ua.stats.malformed == 1


BROKEN_CONTACT = "<sip:alice@ct: <sip:alice@192.0.2.10:5070>"


@pytest.mark.parametrize(
    "contact", [BROKEN_CONTACT, "<sip:alice@192.0.2.10;x=a b>", '<sip:"a"@192.0.2.10>']
)
def test_invite_whose_contact_would_not_serialize_is_answered_400(contact: str) -> None:
    # was: the Contact parsed (user "alice@ct", password " <sip:alice"), the call was answered
    # and hangup() sent "BYE sip:alice@ct: <sip:alice@192.0.2.10:5070 SIP/2.0"
    h = SipHarness()
    h.send(
        request_text("INVITE", body=OFFER_SDP, content_type="application/sdp").replace(
            b"Contact: <sip:alice@192.0.2.10:5070>", f"Contact: {contact}".encode()
        )
    )
    (response,) = h.sent_messages()
    assert isinstance(response, Response) and response.status == 400
    assert "not allowed in a URI" in (response.headers.get("Warning") or "")
    assert h.events() == [] and h.ua.call_count == 0 and h.ua.transaction_count == 0


def test_invite_with_an_unusable_record_route_is_answered_400() -> None:
    h = SipHarness()
    h.send(request_text("INVITE", body=OFFER_SDP, content_type="application/sdp",
                        extra="Record-Route: <sip:proxy.example;lr;x=a b>"))
    assert h.statuses() == [400] and h.ua.call_count == 0 and h.ua.transaction_count == 0



def answered_call(h: SipHarness) -> tuple[IncomingCall, str | None]:
    """An incoming call, answered and ACKed; with our To tag."""
    h.send(request_text("INVITE", body=OFFER_SDP, content_type="application/sdp"))
    (incoming,) = h.events()
    assert isinstance(incoming, IncomingCall)
    h.ua.answer(incoming.call_id, "192.0.2.1", 4000, h.now)
    ok = h.sent_messages()[-1]
    assert isinstance(ok, Response)
    tag = ok.to_address.tag
    h.send(request_text("ACK", branch="z9hG4bK-ack", to_tag=tag))
    h.events()
    return incoming, tag


def test_reinvite_with_an_unusable_contact_is_400_and_leaves_no_transaction() -> None:
    # the Contact of a re-INVITE replaces the remote target: refused before any state changes
    h = SipHarness()
    incoming, tag = answered_call(h)
    h.advance(64)
    reinvite = request_text("INVITE", cseq=2, branch="z9hG4bK-re", to_tag=tag, body=OFFER_SDP,
                            content_type="application/sdp")
    h.send(reinvite.replace(b"Contact: <sip:alice@192.0.2.10:5070>",
                            f"Contact: {BROKEN_CONTACT}".encode()))
    assert h.statuses() == [400] and h.ua.transaction_count == 0
    h.send(reinvite)  # the same CSeq, now usable: not "out of order"
    assert h.statuses() == [200]
    h.ua.hangup(incoming.call_id, h.now)
    (bye,) = h.sent_messages()
    assert isinstance(bye, Request) and str(bye.uri) == "sip:alice@192.0.2.10:5070"


def test_2xx_whose_contact_would_not_serialize_is_a_protocol_error() -> None:
    # the 2xx's Contact becomes the Request-URI of the ACK and BYE: such a 2xx is dropped as
    # malformed before its transaction sees it, so the INVITE keeps retransmitting
    h = SipHarness()
    _, invite = outgoing_call(h)
    answer = OFFER_SDP.replace("8 0 101", "0 101")
    ok = Response.for_request(invite, 200, to_tag="far", body=answer.encode())
    ok.headers.add("Content-Type", "application/sdp")
    broken = Response(ok.headers.copy(), ok.body, 200, "OK")
    broken.headers.add("Contact", BROKEN_CONTACT)
    h.send(bytes(broken), ("192.0.2.10", 5070))
    assert h.sent() == [] and h.events() == [] and h.ua.stats.malformed == 1
    ok.headers.add("Contact", "<sip:bob@192.0.2.10:5070>")
    h.send(bytes(ok), ("192.0.2.10", 5070))
    (ack,) = h.sent_messages()
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert str(ack.uri) == "sip:bob@192.0.2.10:5070"


def test_call_whose_bye_gets_no_usable_final_response_ends_at_timer_f() -> None:
    # RFC 3261 §15.1.1: a BYE transaction that times out ends the dialog all the same
    h = SipHarness()
    incoming, _ = answered_call(h)
    h.ua.hangup(incoming.call_id, h.now)
    (bye,) = [m for m in h.sent_messages() if isinstance(m, Request)]
    answer = Response.for_request(bye, 200)
    answer.headers.set("Call-ID", "someone-else")
    h.send(bytes(answer))
    assert h.ua.stats.malformed == 1 and h.ua.call_count == 1
    h.advance(64 * 0.5 + 1)
    assert h.ua.call_count == 0 and h.ua.transaction_count == 0 and h.ua.get_timer() is None
