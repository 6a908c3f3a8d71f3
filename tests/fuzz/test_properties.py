"""Hypothesis properties for the parsers that had none: SDP, SIP INFO DTMF, actions and events,
WAV, telephone-event and RED payloads; plus every fuzz check fed hypothesis' random bytes."""

import base64
import importlib.util
import io
import json
import sys
import wave
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxflow.errors import SdpError
from voxflow.media.audio import decode_wav, encode_wav
from voxflow.media.dtmf.rfc4733 import (
    TelephoneEventBlock,
    build_telephone_event_payload,
    parse_telephone_event_payload,
    unwrap_red,
)
from voxflow.media.dtmf.sip_info import parse_sip_info_dtmf
from voxflow.protocol.parsing import dump_actions, parse_actions, parse_event, to_wire
from voxflow.sip.sdp import LocalMedia, SessionDescription, answer_offer

FUZZ_DIR = Path(__file__).resolve().parents[2] / "fuzz"


def load_checks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_checks", FUZZ_DIR / "checks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_checks"] = module
    spec.loader.exec_module(module)
    return module


CHECKS = load_checks().CHECKS


@pytest.mark.parametrize("target", sorted(CHECKS))
@given(data=st.binary(max_size=700))
def test_fuzz_checks_hold_for_random_bytes(target: str, data: bytes) -> None:
    CHECKS[target](data)  # raises AssertionError (or worse) when a property breaks


# --------------------------------------------------------------------------------- SDP

ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
formats = st.lists(st.sampled_from(["0", "8", "9", "18", "96", "101", "126"]), min_size=1)
directions = st.sampled_from(["sendrecv", "sendonly", "recvonly", "inactive", None])


@st.composite
def sdp_offers(draw: st.DrawFn) -> tuple[bytes, int]:
    newline = draw(st.sampled_from(["\r\n", "\n"]))
    lines = ["v=0", f"o=peer {draw(st.integers(0, 2**32))} 1 IN IP4 192.0.2.10", "s=-"]
    address = draw(st.one_of(ipv4, ipv6))
    lines.append(f"c=IN {'IP6' if ':' in address else 'IP4'} {address}")
    lines.append("t=0 0")
    sections = draw(st.integers(0, 3))
    for _ in range(sections):
        media = draw(st.sampled_from(["audio", "video"]))
        port = draw(st.integers(0, 65535))
        fmts = draw(formats)
        lines.append(f"m={media} {port} RTP/AVP {' '.join(fmts)}")
        if "101" in fmts and draw(st.booleans()):
            lines.append("a=rtpmap:101 telephone-event/8000")
            lines.append("a=fmtp:101 0-16")
        if "96" in fmts:
            lines.append(f"a=rtpmap:96 {draw(st.sampled_from(['PCMU', 'opus', 'red']))}/8000")
        if (direction := draw(directions)) is not None:
            lines.append(f"a={direction}")
        lines.append(f"a=ptime:{draw(st.integers(10, 60))}")
    return (newline.join(lines) + newline).encode(), sections


@given(sdp_offers())
def test_generated_offers_parse_round_trip_and_answer_every_m_line(
    offer: tuple[bytes, int],
) -> None:
    body, sections = offer
    parsed = SessionDescription.parse(body)
    assert len(parsed.media) == sections
    wire = parsed.to_bytes()
    assert SessionDescription.parse(wire).to_bytes() == wire
    try:
        answer, media = answer_offer(parsed, LocalMedia("192.0.2.1", 4000), 7, 1)
    except SdpError as error:
        assert error.status == 488
        return
    assert len(answer.media) == sections  # RFC 3264 §6: one answer m= line per offered one
    assert media.codec.name in ("PCMU", "PCMA")
    assert any(
        m.media == "audio"
        and m.port == media.remote_port
        and str(media.codec.payload_type) in m.formats
        for m in parsed.media
    )


# --------------------------------------------------------------------------------- SIP INFO

keys = st.sampled_from(list("0123456789*#ABCD"))


@given(
    key=keys,
    lower=st.booleans(),
    separator=st.sampled_from(["=", ": ", " = ", ":"]),
    duration=st.integers(0, 9_999_999),
    newline=st.sampled_from(["\r\n", "\n"]),
    noise=st.sampled_from(["", "X-Other=1", "junk line"]),
)
def test_dtmf_relay_bodies_report_their_key_and_duration(
    key: str, lower: bool, separator: str, duration: int, newline: str, noise: str
) -> None:
    signal = key.lower() if lower else key
    body = newline.join([noise, f"Signal{separator}{signal}", f"Duration{separator}{duration}"])
    report = parse_sip_info_dtmf("application/dtmf-relay", body.encode())
    assert report.key == key and not report.flash and report.duration_ms == duration


@given(code=st.integers(0, 15), end=st.booleans(), duration=st.integers(0, 0xFFFF))
def test_telephone_event_info_bodies_name_the_event_key(
    code: int, end: bool, duration: int
) -> None:
    body = build_telephone_event_payload([TelephoneEventBlock(code, end, 10, duration)])
    report = parse_sip_info_dtmf("audio/telephone-event", body)
    assert report.key == "0123456789*#ABCD"[code]


# --------------------------------------------------------------------------------- actions

texts = st.text(min_size=1, max_size=40)
session_ids = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=12)


@st.composite
def action_documents(draw: st.DrawFn) -> dict[str, object]:
    session_id = draw(session_ids)
    kind = draw(st.sampled_from(["speak", "hangup", "barge_in", "transfer", "audio"]))
    document: dict[str, object] = {"type": kind, "session_id": session_id}
    if kind == "speak":
        document["text"] = draw(texts)
    elif kind == "transfer":
        document["target_phone_number"] = "+49" + draw(
            st.text("0123456789", min_size=4, max_size=12)
        )
    elif kind == "audio":
        samples = np.array(draw(st.lists(st.integers(-32768, 32767), max_size=50)), np.int16)
        document["audio"] = base64.b64encode(encode_wav(samples, 8000)).decode()
    return document


@given(st.lists(action_documents(), min_size=1, max_size=4))
def test_generated_actions_survive_the_wire_round_trip(documents: list[dict[str, object]]) -> None:
    actions = parse_actions(json.dumps(documents))
    assert [a.type for a in actions] == [d["type"] for d in documents]
    assert parse_actions(dump_actions(actions)) == actions


@given(digit=st.sampled_from(list("0123456789*#")), session_id=session_ids)
def test_dtmf_events_survive_the_wire_round_trip(digit: str, session_id: str) -> None:
    event = parse_event({"type": "dtmf_received", "digit": digit, "session": {"id": session_id}})
    assert parse_event(json.dumps(to_wire(event))) == event


# --------------------------------------------------------------------------------- WAV

rates = st.sampled_from([4000, 8000, 11025, 16000, 22050, 44100, 48000, 192000])


@given(samples=st.lists(st.integers(-32768, 32767), max_size=400), rate=rates)
def test_encoded_mono_wav_decodes_to_the_same_samples(samples: list[int], rate: int) -> None:
    audio = np.array(samples, np.int16)
    decoded, decoded_rate = decode_wav(encode_wav(audio, rate))
    assert decoded_rate == rate and np.array_equal(decoded, audio)


@given(
    frames=st.lists(st.integers(-32768, 32767), min_size=1, max_size=200),
    channels=st.integers(2, 8),
    width=st.sampled_from([1, 2]),
)
def test_multichannel_wav_downmixes_to_the_channel_mean(
    frames: list[int], channels: int, width: int
) -> None:
    # the same sample on every channel: the mean is that sample, whatever the rounding
    mono = np.array(frames, np.int16)
    if width == 1:
        mono = (mono >> 8 << 8).astype(np.int16)  # 8-bit WAV keeps the high byte only
        raw = np.repeat(((mono >> 8) + 128).astype(np.uint8), channels).tobytes()
    else:
        raw = np.repeat(mono, channels).astype("<i2").tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(8000)
        writer.writeframes(raw)
    decoded, rate = decode_wav(buffer.getvalue())
    assert rate == 8000 and np.array_equal(decoded, mono)


# --------------------------------------------------------------------------------- RFC 4733, RED

blocks = st.builds(
    TelephoneEventBlock,
    event=st.integers(0, 255),
    end=st.booleans(),
    volume=st.integers(0, 63),
    duration=st.integers(0, 0xFFFF),
)


@given(st.lists(blocks, min_size=1, max_size=8), st.booleans())
def test_telephone_event_payloads_round_trip_and_ignore_the_reserved_bit(
    items: list[TelephoneEventBlock], reserved: bool
) -> None:
    payload = bytearray(build_telephone_event_payload(items))
    if reserved:
        for index in range(1, len(payload), 4):
            payload[index] |= 0x40
    assert parse_telephone_event_payload(bytes(payload)) == items


red_blocks = st.tuples(st.integers(0, 127), st.integers(0, 0x3FFF), st.binary(max_size=40))


@given(
    redundant=st.lists(red_blocks, max_size=4),
    primary=st.tuples(st.integers(0, 127), st.binary(max_size=40)),
    timestamp=st.integers(0, 0xFFFFFFFF),
)
def test_red_payloads_unwrap_into_the_blocks_they_were_built_from(
    redundant: list[tuple[int, int, bytes]], primary: tuple[int, bytes], timestamp: int
) -> None:
    headers = b"".join(
        (0x80000000 | pt << 24 | offset << 10 | len(data)).to_bytes(4, "big")
        for pt, offset, data in redundant
    )
    payload = headers + bytes([primary[0]]) + b"".join(d for *_, d in redundant) + primary[1]
    unwrapped = unwrap_red(payload, timestamp)
    expected = [(pt, (timestamp - offset) % 2**32, data) for pt, offset, data in redundant]
    expected.append((primary[0], timestamp, primary[1]))
    assert [(b.payload_type, b.timestamp, b.data) for b in unwrapped] == expected
