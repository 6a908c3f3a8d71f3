import pytest
from hypothesis import given
from hypothesis import strategies as st
from sip_harness import crlf, request_text

from voxflow.errors import SipParseError
from voxflow.sip.headers import Address, Headers, Via
from voxflow.sip.message import MAX_MESSAGE_SIZE, Request, Response, parse_message
from voxflow.sip.uri import SipUri

COMPACT_INVITE = crlf("""
INVITE sip:bot@192.0.2.1 SIP/2.0
v: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK-c
f: <sip:alice@192.0.2.10>;tag=1
t: sip:bot@192.0.2.1
i: compact@192.0.2.10
CSeq: 7 INVITE
m: <sip:alice@192.0.2.10:5070>
k: replaces, timer
c: application/sdp
l: 3

v=0
""")


def test_compact_forms_expand_to_canonical_names() -> None:
    message = parse_message(COMPACT_INVITE)
    assert isinstance(message, Request)
    assert message.call_id == "compact@192.0.2.10"
    assert message.headers.get("Content-Type") == "application/sdp"
    assert message.headers.get_all("Supported") == ["replaces", "timer"]
    assert message.from_address.tag == "1"
    assert message.body == b"v=0"


def test_header_names_are_case_insensitive() -> None:
    message = parse_message(request_text("OPTIONS", extra="X-CUSTOM-thing: yes"))
    assert message.headers.get("x-custom-THING") == "yes"
    assert message.headers.get("call-id") == message.headers.get("I") == "call-1"
    assert "cseq" in message.headers


def test_folded_header_lines_are_joined() -> None:
    message = parse_message(request_text("OPTIONS", extra="Subject: first\n  second\n\tthird"))
    assert message.headers.get("Subject") == "first second third"


def test_multi_value_and_repeated_headers_are_both_lists() -> None:
    extra = (
        "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-a, SIP/2.0/UDP 10.0.0.2:5080;branch=z9hG4bK-b\n"
        "Route: <sip:p1;lr>\nRoute: <sip:p2;lr>, <sip:p3;lr>"
    )
    message = parse_message(request_text("OPTIONS", extra=extra))
    assert [via.host for via in message.vias] == ["192.0.2.10", "10.0.0.1", "10.0.0.2"]
    assert message.headers.get_all("Route") == ["<sip:p1;lr>", "<sip:p2;lr>", "<sip:p3;lr>"]


def test_commas_inside_quotes_do_not_split_list_headers() -> None:
    message = parse_message(request_text("OPTIONS", extra='Contact: "Doe, J" <sip:j@x>'))
    assert message.headers.get_all("Contact")[-1] == '"Doe, J" <sip:j@x>'
    assert Address.parse('"Doe, J" <sip:j@x>').display_name == "Doe, J"


def test_lf_only_line_ends_and_leading_keepalive_crlf_are_accepted() -> None:
    data = b"\r\n\r\n" + request_text("OPTIONS").replace(b"\r\n", b"\n")
    assert parse_message(data).call_id == "call-1"


def test_response_status_line() -> None:
    response = parse_message(
        crlf("""
SIP/2.0 180 Ringing
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-r
From: <sip:a@x>;tag=1
To: <sip:b@y>;tag=2
Call-ID: r
CSeq: 1 INVITE
""")
        + b"\r\n\r\n"
    )
    assert isinstance(response, Response)
    assert (response.status, response.reason) == (180, "Ringing")


def test_content_length_longer_than_body_is_truncation() -> None:
    data = request_text("INFO", body="Signal=1").replace(
        b"Content-Length: 8", b"Content-Length: 50"
    )
    with pytest.raises(SipParseError, match="Content-Length is 50 but only 8 bytes") as info:
        parse_message(data)
    assert info.value.status == 400


def test_content_length_shorter_than_body_cuts_the_body() -> None:
    data = request_text("INFO", body="Signal=1").replace(b"Content-Length: 8", b"Content-Length: 6")
    assert parse_message(data).body == b"Signal"


def test_missing_content_length_on_udp_takes_the_rest_of_the_datagram() -> None:
    data = request_text("INFO", body="Signal=1").replace(b"Content-Length: 8\r\n", b"")
    assert parse_message(data).body == b"Signal=1"


@pytest.mark.parametrize("value", ["-1", "abc", "1e3"])
def test_bad_content_length_is_named(value: str) -> None:
    data = request_text("OPTIONS").replace(
        b"Content-Length: 0", f"Content-Length: {value}".encode()
    )
    with pytest.raises(SipParseError, match="bad Content-Length"):
        parse_message(data)


@pytest.mark.parametrize("header", ["Via", "From", "To", "Call-ID", "CSeq"])
def test_missing_mandatory_header_is_named(header: str) -> None:
    lines = request_text("OPTIONS").split(b"\r\n")
    data = b"\r\n".join(line for line in lines if not line.startswith(header.encode() + b":"))
    with pytest.raises(SipParseError, match=f"missing mandatory header {header}"):
        parse_message(data)


@pytest.mark.parametrize(
    ("data", "problem", "status"),
    [
        (b"INVITE sip:x@y\r\n\r\n", "bad start line", 400),
        (b"INVITE sip:x@y SIP/3.0\r\nVia: x\r\n\r\n", "unsupported SIP version", 505),
        (b"SIP/2.0 99 Odd\r\n\r\n", "bad status code", 400),
        (b"INV@TE sip:x@y SIP/2.0\r\n\r\n", "bad method", 400),
        (b"INVITE http://x SIP/2.0\r\n\r\n", "bad Request-URI", 416),
        (b"OPTIONS sip:x@y SIP/2.0\r\nVia SIP/2.0/UDP h\r\n\r\n", "not a header field", 400),
        (b"OPTIONS sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP h", "truncated message", 400),
    ],
)
def test_malformed_input_names_the_problem(data: bytes, problem: str, status: int) -> None:
    with pytest.raises(SipParseError, match=problem) as info:
        parse_message(data)
    assert info.value.status == status


def test_cseq_method_must_match_the_request() -> None:
    data = request_text("OPTIONS").replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE")
    with pytest.raises(SipParseError, match="CSeq method INVITE does not match"):
        parse_message(data)


def test_oversized_message_is_refused_with_513() -> None:
    data = request_text("INFO", body="x" * MAX_MESSAGE_SIZE)
    with pytest.raises(SipParseError, match="exceeds the 65536-byte limit") as info:
        parse_message(data)
    assert info.value.status == 513


def test_uri_parts() -> None:
    uri = SipUri.parse("sip:+49301234:pw@[2001:db8::1]:5080;transport=udp;lr?subject=x")
    assert (uri.user, uri.password, uri.host, uri.port) == (
        "+49301234",
        "pw",
        "[2001:db8::1]",
        5080,
    )
    assert uri.params == {"transport": "udp", "lr": None}
    assert uri.headers == "subject=x"
    assert uri.host_for_socket == "2001:db8::1"
    assert SipUri.parse(str(uri)) == uri
    assert SipUri.parse("tel:+4930123;phone-context=x").user == "+4930123"


def test_addr_spec_parameters_belong_to_the_header() -> None:
    address = Address.parse("sip:bob@example.com;tag=abc")
    assert address.tag == "abc" and address.uri.params == {}


def test_via_received_and_rport_are_stamped_per_rfc3581() -> None:
    via = Via.parse("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-x;rport")
    via.stamp_source(("203.0.113.7", 40123))
    assert via.params["received"] == "203.0.113.7" and via.params["rport"] == "40123"
    assert via.response_address() == ("203.0.113.7", 40123)
    plain = Via.parse("SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK-x")
    plain.stamp_source(("203.0.113.7", 40123))
    assert plain.response_address() == ("203.0.113.7", 5060)


def test_serialize_then_parse_round_trip() -> None:
    original = parse_message(COMPACT_INVITE)
    again = parse_message(bytes(original))
    assert isinstance(again, Request)
    assert again.headers.as_dict() == original.headers.as_dict()
    assert (again.method, str(again.uri), again.body) == ("INVITE", "sip:bot@192.0.2.1", b"v=0")


def test_headers_set_replaces_all_values() -> None:
    headers = Headers([("Route", "<sip:a>"), ("X-Foo", "1"), ("route", "<sip:b>")])
    headers.set("ROUTE", "<sip:c>")
    assert list(headers) == [("Route", "<sip:c>"), ("X-Foo", "1")]


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_sip_parse_error(data: bytes) -> None:
    try:
        parse_message(data)
    except SipParseError as error:
        assert str(error)


@given(st.integers(min_value=0, max_value=400), st.binary(max_size=8))
def test_mutated_valid_messages_raise_only_sip_parse_error(position: int, junk: bytes) -> None:
    data = request_text("INVITE", body="v=0\r\n", content_type="application/sdp")
    try:
        message = parse_message(data[:position] + junk + data[position:])
    except SipParseError:
        return
    assert message.call_id


@given(
    st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=',;"<>'),
        min_size=1,
        max_size=20,
    ),
    st.binary(max_size=200),
)
def test_generated_requests_round_trip(tag: str, body: bytes) -> None:
    data = request_text("MESSAGE", from_tag=tag.replace("\\", ""), body="")
    message = parse_message(data)
    assert isinstance(message, Request)
    message.body = body
    again = parse_message(bytes(message))
    assert again.body == body
    assert again.from_address.tag == message.from_address.tag
