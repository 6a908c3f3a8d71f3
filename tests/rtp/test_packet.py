"""RTP header parse/build (RFC 3550 §5.1)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxflow.errors import RtpParseError
from voxflow.rtp.packet import RtpExtension, RtpPacket, parse_rtp


def test_minimal_packet_round_trip_and_wire_layout() -> None:
    packet = RtpPacket(payload_type=0, sequence=0x1234, timestamp=0xDEADBEEF, ssrc=7, payload=b"ab")
    wire = packet.to_bytes()
    assert wire == b"\x80\x00\x12\x34\xde\xad\xbe\xef\x00\x00\x00\x07ab"
    assert parse_rtp(wire) == packet


def test_marker_csrc_extension_padding_round_trip() -> None:
    packet = RtpPacket(
        payload_type=101,
        sequence=65535,
        timestamp=2**32 - 1,
        ssrc=2**32 - 1,
        payload=b"\x01\x8a\x00\xa0",
        marker=True,
        csrcs=(1, 2, 3),
        extension=RtpExtension(profile=0xBEDE, data=b"\x10\xff\x00\x00"),
        padding=3,
    )
    wire = packet.to_bytes()
    assert wire[0] == 0x80 | 0x20 | 0x10 | 3
    assert wire[1] == 0x80 | 101
    assert wire[-1] == 3
    assert parse_rtp(wire) == packet


def test_extension_is_skipped_so_payload_starts_after_it() -> None:
    header = struct.pack("!BBHII", 0x90, 8, 1, 160, 99)
    extension = struct.pack("!HH", 0x1000, 2) + b"x" * 8
    packet = parse_rtp(header + extension + b"PAYLOAD")
    assert packet.payload == b"PAYLOAD"
    assert packet.extension == RtpExtension(0x1000, b"x" * 8)
    assert packet.payload_type == 8


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "too short"),
        (b"\x80\x00\x00", "too short"),
        (b"\x00\x01\x00\x08" + bytes(16), "version 0"),
        (b"\x81\xc8" + bytes(10), "RTCP"),
        (b"\x83\x00" + bytes(10) + bytes(8), "3 CSRCs"),
        (b"\x90\x00" + bytes(10) + b"\x00", "extension header missing"),
        (b"\x90\x00" + bytes(10) + b"\x00\x00\x00\x05" + bytes(4), "extension of 5 words"),
        (b"\xa0\x00" + bytes(10) + b"ab\x00", "padding count 0"),
        (b"\xa0\x00" + bytes(10) + b"ab\x09", "padding count 9"),
    ],
)
def test_garbage_raises_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(RtpParseError, match=message):
        parse_rtp(data)


def test_stun_binding_request_is_rejected() -> None:
    stun = struct.pack("!HHI", 0x0001, 0, 0x2112A442) + bytes(12)
    with pytest.raises(RtpParseError, match="version 0"):
        parse_rtp(stun)


def test_build_rejects_out_of_range_fields() -> None:
    with pytest.raises(RtpParseError, match="payload type 128"):
        RtpPacket(payload_type=128, sequence=0, timestamp=0, ssrc=0).to_bytes()
    with pytest.raises(RtpParseError, match="sequence 65536"):
        RtpPacket(payload_type=0, sequence=65536, timestamp=0, ssrc=0).to_bytes()


@given(st.binary(max_size=80))
def test_arbitrary_bytes_parse_or_raise_rtp_parse_error(data: bytes) -> None:
    try:
        packet = parse_rtp(data)
    except RtpParseError:
        return
    assert len(packet.payload) <= len(data) - 12


packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127).filter(lambda pt: not 64 <= pt <= 95),
    sequence=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 2**32 - 1),
    ssrc=st.integers(0, 2**32 - 1),
    payload=st.binary(max_size=64),
    marker=st.booleans(),
    csrcs=st.lists(st.integers(0, 2**32 - 1), max_size=15).map(tuple),
    extension=st.none()
    | st.builds(
        RtpExtension,
        profile=st.integers(0, 0xFFFF),
        data=st.integers(0, 4).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n)),
    ),
    padding=st.integers(0, 255),
)


@given(packets)
def test_build_then_parse_is_identity(packet: RtpPacket) -> None:
    assert parse_rtp(packet.to_bytes()) == packet
