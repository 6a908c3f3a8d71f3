"""Inputs the fuzzers found, each kept as a test of the bug it exposed."""

import pytest

from voxflow.errors import DtmfParseError, SdpError
from voxflow.media.dtmf.sip_info import parse_sip_info_dtmf
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

