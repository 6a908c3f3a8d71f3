"""Small seed corpora and libFuzzer dictionaries, generated rather than committed.

``python fuzz/seeds.py DIR`` writes ``DIR/<target>/seed-NN`` files; ``fuzz/run.py`` calls
:func:`write_seeds` itself before a run.
"""

from __future__ import annotations

import base64
import json
import struct
import sys
from pathlib import Path

import numpy as np
from checks import start_agent

from voxflow.media.audio import encode_wav
from voxflow.sip.message import Request, Response, parse_message

_PEER = "192.0.2.10:5070"

SDP_OFFER = (
    "v=0\r\no=peer 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 8 0 101 100\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=rtpmap:100 red/8000\r\na=fmtp:100 101/101\r\n"
    "a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)
SDP_IPV6_INACTIVE = (
    "v=0\no=- 2 2 IN IP6 2001:db8::1\ns=call\nc=IN IP6 2001:db8::1\nb=AS:64\nt=0 0\n"
    "m=video 0 RTP/AVP 96\nm=audio 5004/2 RTP/AVP 0\nc=IN IP6 2001:db8::2\na=inactive\n"
)


def sip_request(
    method: str,
    *,
    call_id: str = "c1",
    cseq: int = 1,
    branch: str = "z9hG4bK-1",
    to_tag: str | None = None,
    body: str = "",
    content_type: str | None = None,
    extra: tuple[str, ...] = (),
) -> bytes:
    """One request as a peer at 192.0.2.10 would send it."""
    to = "<sip:bot@192.0.2.1>" + (f";tag={to_tag}" if to_tag else "")
    lines = [
        f"{method} sip:bot@192.0.2.1:5060 SIP/2.0",
        f"Via: SIP/2.0/UDP {_PEER};branch={branch};rport",
        "Max-Forwards: 70",
        'From: "Alice" <sip:+4930123@192.0.2.10>;tag=peer',
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:alice@{_PEER}>",
        *extra,
    ]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def sip_response(status: int, reason: str, method: str = "INVITE", body: str = "") -> bytes:
    """A response to one of our requests."""
    return (
        f"SIP/2.0 {status} {reason}\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-ours\r\n"
        "From: <sip:voxflow@192.0.2.1>;tag=ours\r\nTo: <sip:bob@192.0.2.10>;tag=theirs\r\n"
        f"Call-ID: out-1\r\nCSeq: 1 {method}\r\n"
        'WWW-Authenticate: Digest realm="x", nonce="abc", qop="auth", algorithm=MD5\r\n'
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def _sip() -> list[bytes]:
    invite = sip_request("INVITE", body=SDP_OFFER, content_type="application/sdp")
    compact = (
        b"\r\nOPTIONS sip:bot@192.0.2.1 SIP/2.0\nv: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK-c\n"
        b"f: <sip:a@x>;tag=1\nt: sip:b@y\ni: compact\n"
        b"CSeq: 7 OPTIONS\nSubject: folded\n  line\nl: 0\n\n"
    )
    return [
        invite,
        compact,
        sip_request("BYE", to_tag="t1", cseq=2),
        sip_request(
            "INFO",
            to_tag="t1",
            body="Signal=5\r\nDuration=160\r\n",
            content_type="application/dtmf-relay",
        ),
        sip_request("REGISTER", extra=("Expires: 60",)),
        sip_response(200, "OK", body=SDP_OFFER),
        sip_response(401, "Unauthorized"),
    ]


def _rtp() -> list[bytes]:
    packet = struct.pack("!BBHII", 0x80, 0, 1, 160, 0x1234) + bytes(160)
    rich = (
        struct.pack("!BBHII", 0xB2, 0xE5, 2, 320, 0x1234)
        + struct.pack("!II", 1, 2)
        + struct.pack("!HH", 0xBEDE, 1)
        + b"\x10\xaa\0\0"
        + b"\x05\x0a\x01\x40"
        + b"\0\0\x03"
    )
    event = b"\x05\x0a\x01\x40"
    end = b"\x05\x8a\x03\x20"
    red = b"\xe5\x00\xa0\x04" + b"\x65" + event + end
    receiver = b"".join(
        bytes([flags, 1]) + struct.pack("!HIH", seq, 8000, 4) + payload + b"\x04"
        for flags, seq, payload in ((1, 10, event), (0, 11, event), (0, 12, end), (0, 13, end))
    )
    red_receiver = bytes([0x41, 2]) + struct.pack("!HIH", 5, 9000, len(red)) + red + b"\x02"
    return [
        b"\x00" + packet,
        b"\x00" + rich,
        b"\x01" + event + end,
        b"\x02" + struct.pack("!I", 1000) + red,
        b"\x03" + receiver,
        b"\x03" + red_receiver,
    ]


def _sip_info() -> list[bytes]:
    # first byte: content type index (see checks._INFO_TYPES), high bit = pass as str
    return [
        b"\x02Signal=5\r\nDuration=160\r\n",
        b"\x82signal: #\nduration: 250\n",
        b"\x01" + b"10",
        b"\x01*",
        b"\x03\x05\x8a\x03\x20",
        b"\x00",
    ]


def _actions() -> list[bytes]:
    wav = base64.b64encode(encode_wav(np.zeros(80, np.int16), 8000)).decode()
    documents: list[object] = [
        {"type": "speak", "session_id": "s1", "text": "Hallo", "barge_in": {"strategy": "none"}},
        [
            {"type": "speak", "session_id": "s1", "ssml": "<speak>Hi</speak>"},
            {"type": "audio", "session_id": "s1", "audio": wav},
            {"type": "transfer", "session_id": "s1", "target_phone_number": "+4930123"},
            {"type": "hangup", "session_id": "s1"},
            {"type": "barge_in", "session_id": "s1"},
        ],
        {
            "type": "session_start",
            "session": {
                "id": "s1",
                "account_id": "a",
                "phone_number": "+4930",
                "direction": "inbound",
                "from_phone_number": "+4930123",
                "to_phone_number": "+4930456",
            },
        },
        {"type": "dtmf_received", "digit": "5", "session": {"id": "s1"}},
        [],
    ]
    return [json.dumps(document).encode() for document in documents] + [b"null", b"{"]


def _wav() -> list[bytes]:
    tone = (np.sin(np.arange(160) / 3.0) * 8000).astype(np.int16)
    pcm16 = encode_wav(tone, 8000)
    header = pcm16[:44]
    alaw = bytearray(header)
    struct.pack_into("<HHIIHH", alaw, 20, 6, 2, 8000, 16000, 2, 8)
    return [pcm16, bytes(alaw) + bytes(40), encode_wav(tone[:3], 16000)]


def _record(op: int, payload: bytes = b"") -> bytes:
    return bytes([op]) + struct.pack("!H", len(payload)) + payload if op % 8 <= 4 else bytes([op])


def _useragent() -> list[bytes]:
    # first byte: agent flags (see checks.start_agent), then records (see checks.check_useragent)
    invite = sip_request("INVITE", body=SDP_OFFER, content_type="application/sdp")
    ack = sip_request("ACK", to_tag="00000000")
    bye = sip_request("BYE", to_tag="00000000", cseq=2, branch="z9hG4bK-2")
    cancel = sip_request("CANCEL")
    options = sip_request("OPTIONS", call_id="o1", branch="z9hG4bK-o")
    info = sip_request(
        "INFO",
        to_tag="00000000",
        cseq=3,
        branch="z9hG4bK-3",
        body="Signal=1\r\n",
        content_type="application/dtmf-relay",
    )
    answer, hangup, tick, ring = 6, 7, 5, 0x86
    inbound = [
        _record(0, invite)
        + _record(answer)
        + _record(0, ack)
        + _record(0, info)
        + _record(0, bye)
        + _record(tick)
        + b"\x40",
        _record(0, invite) + _record(ring) + _record(0, cancel) + _record(tick) + b"\xff",
        _record(0, options) + _record(8, options) + _record(16, b"garbage"),
        _record(0, invite) + _record(hangup) + _record(tick) + b"\x10",
    ]
    return [b"\x00" + seed for seed in inbound] + [
        b"\x02" + _record(0, invite),  # digest auth on: answered 407
        *(b"\x01" + seed for seed in _outgoing_call_seeds()),
    ]


def _outgoing_call_seeds() -> list[bytes]:
    """Answers to the INVITE the agent sends when flags bit 0 is set, built from that INVITE."""
    ua, _ = start_agent(1, 1000.0)
    ((wire, _),) = ua.datagrams_to_send(1000.0)
    request = parse_message(wire)
    assert isinstance(request, Request)

    def response(status: int, body: str = "", **headers: str) -> bytes:
        message = Response.for_request(request, status, to_tag="far", body=body.encode())
        message.headers.add("Contact", "<sip:bob@192.0.2.10:5070>")
        for name, value in headers.items():
            message.headers.add(name.replace("_", "-"), value)
        return bytes(message)

    ok = response(200, SDP_OFFER, Content_Type="application/sdp")
    bye = sip_request("BYE", call_id=request.call_id, cseq=1, branch="z9hG4bK-b")
    bye = bye.replace(b"tag=peer", b"tag=far").replace(
        b"To: <sip:bot@192.0.2.1>", b"To: " + (request.headers.get("From") or "").encode()
    )
    challenge = 'Digest realm="trunk", nonce="n1", qop="auth", algorithm=MD5'
    return [
        _record(0, response(100)) + _record(0, response(180)) + _record(0, ok) + _record(0, bye),
        _record(0, response(183, SDP_OFFER, Content_Type="application/sdp"))
        + _record(0, response(486)),
        _record(0, response(407, Proxy_Authenticate=challenge)) + _record(5) + b"\x80",
        _record(0, response(180)) + _record(7) + _record(0, response(487)),
    ]


SEEDS = {
    "sip": _sip,
    "sdp": lambda: [SDP_OFFER.encode(), SDP_IPV6_INACTIVE.encode(), b"v=0\r\n"],
    "rtp": _rtp,
    "sip_info": _sip_info,
    "actions": _actions,
    "wav": _wav,
    "useragent": _useragent,
}

_SIP_WORDS = [
    "SIP/2.0",
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "INFO",
    "REGISTER",
    "NOTIFY",
    "Via:",
    "From:",
    "To:",
    "Call-ID:",
    "CSeq:",
    "Contact:",
    "Content-Length:",
    "Content-Type:",
    "Max-Forwards:",
    "Require:",
    "Authorization:",
    "Proxy-Authorization:",
    ";tag=",
    ";branch=z9hG4bK",
    ";rport",
    ";received=",
    "sip:",
    "sips:",
    "tel:",
    "<",
    ">",
    "\r\n",
    "\r\n\r\n",
    "application/sdp",
    "Digest ",
    'nonce="',
    "realm=",
]
_SDP_WORDS = [
    "v=0",
    "o=",
    "s=",
    "c=IN IP4 ",
    "c=IN IP6 ",
    "m=audio ",
    "m=video ",
    " RTP/AVP ",
    "a=rtpmap:",
    "a=fmtp:",
    "a=ptime:",
    "a=sendrecv",
    "a=sendonly",
    "a=recvonly",
    "a=inactive",
    "telephone-event/8000",
    "PCMU/8000",
    "PCMA/8000",
    "red/8000",
    "t=0 0",
]
_JSON_WORDS = [
    '"type"',
    '"session_id"',
    '"speak"',
    '"audio"',
    '"hangup"',
    '"transfer"',
    '"barge_in"',
    '"text"',
    '"ssml"',
    '"session"',
    '"digit"',
    '"dtmf_received"',
    '"session_start"',
    '"user_speak"',
    '"session_end"',
    "null",
    "true",
    "false",
    "[]",
    "{}",
]
DICTIONARIES = {
    "sip": _SIP_WORDS,
    "useragent": _SIP_WORDS + _SDP_WORDS,
    "sdp": _SDP_WORDS,
    "actions": _JSON_WORDS,
    "sip_info": ["Signal=", "Duration=", "signal:", "\r\n", "hf", "flash", "*", "#"],
    "wav": ["RIFF", "WAVE", "fmt ", "data", "LIST", "fact"],
}


def _escape(word: str) -> str:
    # libFuzzer dictionaries understand only \\, \" and \xNN escapes
    return "".join(c if " " <= c <= "~" and c not in '"\\' else f"\\x{ord(c):02X}" for c in word)


def write_seeds(target: str, directory: Path) -> int:
    """Write the seeds of ``target`` into ``directory``; returns how many."""
    directory.mkdir(parents=True, exist_ok=True)
    seeds = SEEDS[target]()
    for index, seed in enumerate(seeds):
        (directory / f"seed-{index:02d}").write_bytes(seed)
    return len(seeds)


def write_dictionary(target: str, path: Path) -> Path | None:
    """Write the libFuzzer dictionary of ``target`` (None when it has none)."""
    words = DICTIONARIES.get(target)
    if not words:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f'"{_escape(word)}"\n' for word in words))
    return path


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "fuzz/.work/seeds")
    for name in SEEDS:
        print(name, write_seeds(name, root / name))
