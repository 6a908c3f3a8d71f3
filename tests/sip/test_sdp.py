import pytest

from voxflow.errors import SdpError
from voxflow.sip.sdp import (
    Codec,
    LocalMedia,
    SessionDescription,
    answer_offer,
    build_offer,
    process_answer,
)

LOCAL = LocalMedia("192.0.2.1", 30000)


def offer(
    formats: str,
    rtpmaps: tuple[str, ...] = (),
    *,
    extra: str = "",
    connection: str | None = "IN IP4 192.0.2.10",
    port: int = 40000,
    session_extra: str = "",
) -> SessionDescription:
    lines = ["v=0", "o=peer 1 1 IN IP4 192.0.2.10", "s=-"]
    if connection is not None:
        lines.append(f"c={connection}")
    lines += ["t=0 0", *filter(None, session_extra.split("\n"))]
    lines.append(f"m=audio {port} RTP/AVP {formats}")
    lines += [f"a=rtpmap:{line}" for line in rtpmaps]
    lines += list(filter(None, extra.split("\n")))
    return SessionDescription.parse(("\r\n".join(lines) + "\r\n").encode())


@pytest.mark.parametrize(
    ("formats", "codecs", "expected"),
    [
        ("0", ("PCMU", "PCMA"), ("PCMU", 0)),
        ("8", ("PCMU", "PCMA"), ("PCMA", 8)),
        ("8 0", ("PCMU", "PCMA"), ("PCMU", 0)),  # our preference wins over the offer order
        ("0 8", ("PCMA", "PCMU"), ("PCMA", 8)),
        ("8 0", ("PCMA",), ("PCMA", 8)),
    ],
)
def test_codec_choice_follows_our_preference(
    formats: str, codecs: tuple[str, ...], expected: tuple[str, int]
) -> None:
    local = LocalMedia("192.0.2.1", 30000, codecs)
    answer, media = answer_offer(offer(formats), local)
    assert (media.codec.name, media.codec.payload_type) == expected
    assert answer.media[0].formats == [str(expected[1])]
    assert (media.remote_address, media.remote_port) == ("192.0.2.10", 40000)


def test_dynamic_payload_type_for_g711_is_honoured() -> None:
    _, media = answer_offer(offer("97", ("97 PCMA/8000",)), LOCAL)
    assert media.codec == Codec("PCMA", 97, 8000)


@pytest.mark.parametrize("pt", [101, 96, 110])
def test_telephone_event_payload_type_is_echoed(pt: int) -> None:
    answer, media = answer_offer(
        offer(f"0 {pt}", (f"{pt} telephone-event/8000",), extra=f"a=fmtp:{pt} 0-15"), LOCAL
    )
    assert media.telephone_event == Codec("telephone-event", pt, 8000)
    body = answer.to_bytes().decode()
    assert f"a=rtpmap:{pt} telephone-event/8000" in body
    assert f"a=fmtp:{pt} 0-15" in body
    assert f"m=audio 30000 RTP/AVP 0 {pt}" in body


def test_telephone_event_clock_must_match_the_codec_clock() -> None:
    both = offer("0 96 101", ("96 telephone-event/16000", "101 telephone-event/8000"))
    assert answer_offer(both, LOCAL)[1].telephone_event == Codec("telephone-event", 101, 8000)
    only_wideband = offer("0 96", ("96 telephone-event/16000",))
    answer, media = answer_offer(only_wideband, LOCAL)
    assert media.telephone_event is None
    assert "telephone-event" not in answer.to_bytes().decode()


def test_no_telephone_event_offered_means_none() -> None:
    assert answer_offer(offer("0"), LOCAL)[1].telephone_event is None


def test_no_common_codec_is_488_naming_what_was_offered() -> None:
    with pytest.raises(SdpError, match="offers G729/8000, opus/48000") as info:
        answer_offer(offer("18 111", ("111 opus/48000/2",)), LOCAL)
    assert info.value.status == 488


def test_ptime_from_offer_and_default() -> None:
    assert answer_offer(offer("0", extra="a=ptime:30"), LOCAL)[1].ptime == 30
    assert answer_offer(offer("0"), LOCAL)[1].ptime == 20
    assert answer_offer(offer("0", extra="a=ptime:banana"), LOCAL)[1].ptime == 20


@pytest.mark.parametrize(
    ("extra", "connection", "direction", "on_hold"),
    [
        ("a=sendrecv", "IN IP4 192.0.2.10", "sendrecv", False),
        ("", "IN IP4 192.0.2.10", "sendrecv", False),
        ("a=sendonly", "IN IP4 192.0.2.10", "recvonly", True),
        ("a=recvonly", "IN IP4 192.0.2.10", "sendonly", False),
        ("a=inactive", "IN IP4 192.0.2.10", "inactive", True),
        ("", "IN IP4 0.0.0.0", "recvonly", True),  # RFC 2543 hold
    ],
)
def test_direction_answer_rules(extra: str, connection: str, direction: str, on_hold: bool) -> None:
    answer, media = answer_offer(offer("0", extra=extra, connection=connection), LOCAL)
    assert media.direction == direction
    assert media.on_hold is on_hold
    assert answer.media[0].direction == direction


def test_session_level_direction_applies() -> None:
    _, media = answer_offer(offer("0", session_extra="a=sendonly"), LOCAL)
    assert media.direction == "recvonly"


def test_rejected_and_extra_streams_keep_their_m_lines_with_port_zero() -> None:
    text = (
        "v=0\r\no=p 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
        "m=audio 0 RTP/AVP 0\r\nm=video 5000 RTP/AVP 96\r\nm=audio 41000 RTP/AVP 8\r\n"
    )
    answer, media = answer_offer(SessionDescription.parse(text.encode()), LOCAL)
    assert [(m.media, m.port) for m in answer.media] == [
        ("audio", 0),
        ("video", 0),
        ("audio", 30000),
    ]
    assert (media.codec.name, media.remote_port) == ("PCMA", 41000)


def test_only_port_zero_audio_is_488() -> None:
    with pytest.raises(SdpError) as info:
        answer_offer(offer("0", port=0), LOCAL)
    assert info.value.status == 488


def test_missing_connection_line_is_400() -> None:
    with pytest.raises(SdpError, match="no c= line") as info:
        answer_offer(offer("0", connection=None), LOCAL)
    assert info.value.status == 400


def test_media_level_connection_overrides_session_level() -> None:
    _, media = answer_offer(offer("0", extra="c=IN IP4 198.51.100.5"), LOCAL)
    assert media.remote_address == "198.51.100.5"


def test_srtp_only_offer_is_488() -> None:
    text = offer("0").to_bytes().replace(b"RTP/AVP", b"RTP/SAVP")
    with pytest.raises(SdpError, match="RTP/SAVP"):
        answer_offer(SessionDescription.parse(text), LOCAL)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"o=x\r\n", "no v= line"),
        (b"v=0\r\nm=audio\r\n", "m= needs"),
        (b"v=0\r\nm=audio port RTP/AVP 0\r\n", "bad port"),
        (b"v=0\r\nc=IN IP4\r\n", "c= must be"),
        (b"v=0\r\nnonsense\r\n", "not '<type>=<value>'"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_malformed_sdp_is_400(body: bytes, problem: str) -> None:
    with pytest.raises(SdpError, match=problem) as info:
        SessionDescription.parse(body)
    assert info.value.status == 400


def test_answer_origin_and_version() -> None:
    answer, _ = answer_offer(offer("0"), LOCAL, session_id=42, version=3)
    assert answer.origin == "voxflow 42 3 IN IP4 192.0.2.1"
    assert SessionDescription.parse(answer.to_bytes()).connection == "192.0.2.1"


def test_offerer_builds_offer_and_processes_answer() -> None:
    ours = build_offer(LOCAL)
    body = ours.to_bytes().decode()
    assert "m=audio 30000 RTP/AVP 0 8 101" in body and "a=rtpmap:101 telephone-event/8000" in body
    peer_local = LocalMedia("192.0.2.10", 40000, ("PCMA",))
    their_answer, _ = answer_offer(SessionDescription.parse(ours.to_bytes()), peer_local)
    media = process_answer(ours, their_answer)
    assert media.codec == Codec("PCMA", 8, 8000)
    assert media.telephone_event == Codec("telephone-event", 101, 8000)
    assert (media.remote_address, media.remote_port, media.direction) == (
        "192.0.2.10",
        40000,
        "sendrecv",
    )


def test_answer_with_codec_we_did_not_offer_is_refused() -> None:
    ours = build_offer(LocalMedia("192.0.2.1", 30000, ("PCMU",)))
    with pytest.raises(SdpError, match="did not offer"):
        process_answer(ours, offer("8"))
