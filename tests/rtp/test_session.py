"""RtpSession: outbound numbering, telephone-event timestamps, demultiplexing and latching."""

from __future__ import annotations

import random

import pytest

from voxflow.errors import RtpError, RtpParseError
from voxflow.media.serial import seq_diff, ts_diff
from voxflow.rtp.events import (
    AudioReceived,
    PacketRejected,
    RejectReason,
    RemoteLatched,
    TelephoneEventReceived,
)
from voxflow.rtp.packet import RtpPacket, parse_rtp
from voxflow.rtp.session import RtpSession

PEER = ("127.0.0.1", 40000)
STRANGER = ("127.0.0.1", 40002)


def make_session(seed: int = 1) -> RtpSession:
    return RtpSession(audio_payload_type=0, event_payload_type=101, rng=random.Random(seed))


def inbound(pt: int, seq: int, ts: int = 0, payload: bytes = b"\xff" * 160) -> bytes:
    return RtpPacket(pt, seq, ts, 0xABCD, payload).to_bytes()


def test_initial_values_are_random_per_session() -> None:
    first, second = make_session(1), make_session(2)
    a, b = parse_rtp(first.build_audio(b"x", 160)), parse_rtp(second.build_audio(b"x", 160))
    assert (a.ssrc, a.sequence, a.timestamp) != (b.ssrc, b.sequence, b.timestamp)
    assert a.ssrc == first.ssrc


def test_audio_numbering_and_talkspurt_marker() -> None:
    session = make_session()
    packets = [parse_rtp(session.build_audio(bytes([i]) * 160, 160)) for i in range(3)]
    assert [p.marker for p in packets] == [True, False, False]
    assert [seq_diff(p.sequence, packets[0].sequence) for p in packets] == [0, 1, 2]
    assert [ts_diff(p.timestamp, packets[0].timestamp) for p in packets] == [0, 160, 320]
    session.advance(160 * 5)  # 100 ms of silence suppression
    resumed = parse_rtp(session.build_audio(b"\x00" * 160, 160))
    assert resumed.marker
    assert ts_diff(resumed.timestamp, packets[0].timestamp) == 160 * 8
    assert seq_diff(resumed.sequence, packets[0].sequence) == 3


def test_event_packets_keep_their_timestamp_while_audio_clock_runs() -> None:
    session = make_session()
    session.build_audio(b"\x00" * 160, 160)
    start = session.next_timestamp
    sent = []
    for step in range(3):
        sent.append(
            parse_rtp(
                session.build_event_packet(b"\x01\x0a\x00\xa0", timestamp=start, marker=step == 0)
            )
        )
        session.advance(160)
    sent += [
        parse_rtp(p)
        for p in session.build_event_packets([b"\x01\x8a\x01\xe0"] * 3, timestamp=start)
    ]
    assert {p.timestamp for p in sent} == {start}
    assert {p.payload_type for p in sent} == {101}
    assert [p.marker for p in sent] == [True, False, False, False, False, False]
    assert [seq_diff(p.sequence, sent[0].sequence) for p in sent] == list(range(6))
    after = parse_rtp(session.build_audio(b"\x00" * 160, 160))
    assert ts_diff(after.timestamp, start) == 3 * 160
    assert after.payload_type == 0


def test_event_without_negotiated_payload_type_is_refused() -> None:
    session = RtpSession(audio_payload_type=8)
    with pytest.raises(RtpError, match="telephone event"):
        session.build_event_packet(b"\x00" * 4, timestamp=0)


def test_first_valid_packet_latches_and_others_are_then_ignored() -> None:
    session = make_session()
    session.renegotiate(audio_payload_type=0, event_payload_type=101, remote=("10.0.0.9", 5004))
    assert session.remote == ("10.0.0.9", 5004) and not session.latched
    garbage = session.receive_datagram(b"\x00\x01\x00\x00junk-stun-ish", STRANGER, 0.0)
    assert isinstance(garbage[0], PacketRejected) and garbage[0].reason is RejectReason.NOT_RTP
    unknown = session.receive_datagram(inbound(96, 1), STRANGER, 0.0)
    assert [type(e) for e in unknown] == [PacketRejected]
    assert not session.latched  # neither garbage nor an unknown payload type latches
    events = session.receive_datagram(inbound(0, 1), PEER, 0.0)
    assert events[0] == RemoteLatched(PEER)
    assert isinstance(events[1], AudioReceived)
    assert session.remote == PEER
    stray = session.receive_datagram(inbound(0, 2, 160), STRANGER, 0.02)
    assert isinstance(stray[0], PacketRejected) and stray[0].reason is RejectReason.WRONG_SOURCE
    assert session.receive_datagram(inbound(0, 2, 160), PEER, 0.02) == [
        AudioReceived(parse_rtp(inbound(0, 2, 160)))
    ]
    stats = session.stats
    assert (stats.received, stats.rejected_wrong_source) == (2, 1)
    assert (stats.rejected_not_rtp, stats.rejected_unknown_payload_type) == (1, 1)
    assert stats.jitter.received == 2


def test_demultiplexes_telephone_events_from_audio() -> None:
    session = make_session()
    session.receive_datagram(inbound(0, 1), PEER, 0.0)
    events = session.receive_datagram(inbound(101, 2, 0, b"\x05\x0a\x00\xa0"), PEER, 0.01)
    assert len(events) == 1 and isinstance(events[0], TelephoneEventReceived)
    assert events[0].packet.payload == b"\x05\x0a\x00\xa0" and events[0].arrival == 0.01
    assert session.stats.telephone_events == 1
    assert session.stats.jitter.received == 1


def test_inbound_audio_comes_out_as_frames() -> None:
    session = make_session()
    for i in range(3):
        session.receive_datagram(inbound(0, i, 160 * i, bytes([i]) * 160), PEER, 0.02 * i)
    deadline = session.next_frame_deadline()
    assert deadline is not None
    frames = session.pop_frames(deadline + 0.041)
    assert [f.payload for f in frames] == [bytes([i]) * 160 for i in range(3)]


def test_renegotiation_latches_again() -> None:
    session = make_session()
    session.receive_datagram(inbound(0, 1), PEER, 0.0)
    session.renegotiate(audio_payload_type=8, event_payload_type=None, remote=STRANGER)
    assert session.receive_datagram(inbound(8, 2, 160), STRANGER, 0.02)[0] == RemoteLatched(
        STRANGER
    )


def test_the_signalled_address_takes_the_stream_back_from_an_early_spoofer() -> None:
    session = make_session()
    session.renegotiate(audio_payload_type=0, event_payload_type=101, remote=PEER)
    spoofed = session.receive_datagram(inbound(0, 900, 0, b"\x11" * 160), STRANGER, 0.0)
    assert spoofed[0] == RemoteLatched(STRANGER)  # nothing from the caller yet: it latches
    genuine = session.receive_datagram(inbound(0, 1), PEER, 0.01)
    assert genuine[0] == RemoteLatched(PEER) and isinstance(genuine[1], AudioReceived)
    assert session.remote == PEER
    again = session.receive_datagram(inbound(0, 901, 160), STRANGER, 0.02)
    assert isinstance(again[0], PacketRejected) and again[0].reason is RejectReason.WRONG_SOURCE


def test_a_latched_address_is_never_given_up_for_an_unsignalled_one() -> None:
    session = make_session()
    session.renegotiate(audio_payload_type=0, event_payload_type=None, remote=("10.0.0.9", 5004))
    assert session.receive_datagram(inbound(0, 1), PEER, 0.0)[0] == RemoteLatched(PEER)
    stray = session.receive_datagram(inbound(0, 2, 160), STRANGER, 0.02)
    assert stray[0].reason is RejectReason.WRONG_SOURCE  # type: ignore[union-attr]
    assert session.remote == PEER


def test_built_packets_are_exactly_what_rtp_packet_serialises() -> None:
    # The send path packs the header itself; it must match RtpPacket byte for byte.
    session = make_session()
    first = session.build_audio(b"\x01\x02", 160)
    event = session.build_event_packet(b"\x05\x0a\x00\xa0", timestamp=(1 << 32) + 7, marker=True)
    second = session.build_audio(b"\x03", 160)
    a, e, b = parse_rtp(first), parse_rtp(event), parse_rtp(second)
    assert first == RtpPacket(0, a.sequence, a.timestamp, session.ssrc, b"\x01\x02",
                              a.marker).to_bytes()
    assert event == RtpPacket(101, e.sequence, 7, session.ssrc, b"\x05\x0a\x00\xa0",
                              True).to_bytes()
    assert (seq_diff(e.sequence, a.sequence), seq_diff(b.sequence, e.sequence)) == (1, 1)
    assert ts_diff(b.timestamp, a.timestamp) == 160


def test_an_out_of_range_payload_type_is_still_refused_when_building() -> None:
    session = RtpSession(audio_payload_type=200, rng=random.Random(1))
    with pytest.raises(RtpParseError, match="payload type 200"):
        session.build_audio(b"\xff", 160)
