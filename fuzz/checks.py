"""The properties every fuzz target checks, as plain functions of one byte string.

Each ``check_*`` feeds its input to one parser and lets through only the error type that parser
documents; anything else escapes and counts as a crash. Where a parser has a serializer, the
output must parse again to the same thing (parse(serialize(parse(x))) == parse(x)).

No fuzzing engine is imported here, so the same checks run under atheris (``fuzz_*.py``) and
under hypothesis (``tests/fuzz``).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np

from voxflow.errors import (
    DtmfParseError,
    MediaError,
    ProtocolError,
    RtpParseError,
    SdpError,
    SipParseError,
    SipStateError,
)
from voxflow.media.audio import WavLimits, decode_wav, encode_wav
from voxflow.media.dtmf.rfc4733 import (
    TelephoneEventReceiver,
    build_telephone_event_payload,
    extract_telephone_events,
    parse_telephone_event_payload,
    unwrap_red,
)
from voxflow.media.dtmf.sip_info import SUPPORTED_CONTENT_TYPES, parse_sip_info_dtmf
from voxflow.protocol.parsing import dump_actions, parse_actions, parse_event, to_wire
from voxflow.rtp.packet import parse_rtp
from voxflow.sip.call import CallState
from voxflow.sip.config import Credentials, InboundAuth, SipConfig
from voxflow.sip.events import IncomingCall
from voxflow.sip.message import parse_message
from voxflow.sip.ratelimit import RateLimit, RateLimits
from voxflow.sip.sdp import LocalMedia, SessionDescription, answer_offer
from voxflow.sip.useragent import UserAgent

Check = Callable[[bytes], None]


class Reader:
    """Carves typed values off the front of a fuzz input; yields zeros once it runs dry."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def remaining(self) -> int:
        """Bytes not consumed yet."""
        return len(self.data) - self.pos

    def uint(self, size: int) -> int:
        """A big-endian unsigned integer of ``size`` bytes."""
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return int.from_bytes(chunk.ljust(size, b"\0"), "big")

    def chunk(self) -> bytes:
        """A length-prefixed (16-bit) byte string."""
        size = self.uint(2)
        out = self.data[self.pos : self.pos + size]
        self.pos += size
        return out

    def rest(self) -> bytes:
        """Everything left."""
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out


# --------------------------------------------------------------------------------- SIP


def check_sip(data: bytes) -> None:
    """SIP messages: only SipParseError; serializing a parsed message is a fixed point."""
    try:
        message = parse_message(data)
    except SipParseError:
        return
    wire = bytes(message)
    again = parse_message(wire)  # what we serialize must parse: we send these bytes
    assert bytes(again) == wire, (wire, bytes(again))
    assert type(again) is type(message)


# --------------------------------------------------------------------------------- SDP

_LOCAL = LocalMedia("192.0.2.1", 4000)


def check_sdp(data: bytes) -> None:
    """SDP bodies: only SdpError from parse and answer; serializing is a fixed point."""
    try:
        offer = SessionDescription.parse(data)
    except SdpError:
        return
    wire = offer.to_bytes()
    again = SessionDescription.parse(wire)
    assert again.to_bytes() == wire, (wire, again.to_bytes())
    assert again.media == offer.media
    try:
        answer, _ = answer_offer(offer, _LOCAL)
    except SdpError:
        return
    answer_wire = answer.to_bytes()
    assert SessionDescription.parse(answer_wire).to_bytes() == answer_wire


# --------------------------------------------------------------------------------- RTP, RFC 4733


def check_rtp(data: bytes) -> None:
    """RTP packets, telephone-event payloads and RED: only their documented errors.

    The first byte picks the layer; a receiver also sees a short packet sequence.
    """
    if not data:
        return
    selector, body = data[0] % 4, data[1:]
    if selector == 0:
        try:
            packet = parse_rtp(body)
        except RtpParseError:
            return
        assert parse_rtp(packet.to_bytes()) == packet
    elif selector == 1:
        try:
            blocks = parse_telephone_event_payload(body)
        except DtmfParseError:
            return
        assert parse_telephone_event_payload(build_telephone_event_payload(blocks)) == blocks
    elif selector == 2:
        reader = Reader(body)
        timestamp = reader.uint(4)
        try:
            red = unwrap_red(reader.rest(), timestamp)
            extract_telephone_events(100, body, timestamp, telephone_event_pt=101, red_pt=100)
        except DtmfParseError:
            return
        assert all(0 <= block.timestamp <= 0xFFFFFFFF for block in red)
    else:
        _check_receiver(Reader(body))


def _check_receiver(reader: Reader) -> None:
    receiver = TelephoneEventReceiver()
    now_ms = 0.0
    while reader.remaining > 0:
        flags = reader.uint(1)
        ssrc = reader.uint(1)  # few distinct SSRCs, so switches happen
        seq = reader.uint(2)
        timestamp = reader.uint(4)
        payload = reader.chunk()
        now_ms += reader.uint(1) * 5.0
        try:
            if flags & 0x40:
                receiver.receive_red(
                    ssrc=ssrc,
                    seq=seq,
                    timestamp=timestamp,
                    marker=bool(flags & 1),
                    payload=payload,
                    telephone_event_pt=101,
                    now_ms=now_ms,
                )
            else:
                receiver.receive(
                    ssrc=ssrc,
                    seq=seq,
                    timestamp=timestamp,
                    marker=bool(flags & 1),
                    payload=payload,
                    now_ms=now_ms,
                )
        except DtmfParseError:
            pass
        receiver.poll(now_ms)
        deadline = receiver.next_deadline()
        assert deadline is None or deadline > now_ms, "poll left an overdue press open"


# --------------------------------------------------------------------------------- SIP INFO

_INFO_TYPES = (*sorted(SUPPORTED_CONTENT_TYPES), "text/plain", "application/dtmf-relay; x=1")


def check_sip_info(data: bytes) -> None:
    """DTMF INFO bodies: only DtmfParseError; a key is one of the sixteen DTMF keys."""
    if not data:
        return
    content_type = _INFO_TYPES[data[0] % len(_INFO_TYPES)]
    body: str | bytes = data[1:]
    if data[0] & 0x80:
        body = data[1:].decode("utf-8", "replace")
    try:
        report = parse_sip_info_dtmf(content_type, body)
    except DtmfParseError:
        return
    assert report.key is None or report.key in "0123456789*#ABCD", report
    assert report.flash == (report.key is None)
    assert report.duration_ms is None or report.duration_ms >= 0


# --------------------------------------------------------------------------------- actions


def check_actions(data: bytes) -> None:
    """Assistant responses and events: only ProtocolError; the wire form parses back equal."""
    try:
        actions = parse_actions(data)
    except ProtocolError:
        pass
    else:
        if actions:
            assert parse_actions(dump_actions(actions)) == actions
    try:
        event = parse_event(data)
    except ProtocolError:
        return
    assert parse_event(json.dumps(to_wire(event))) == event


# --------------------------------------------------------------------------------- WAV

_WAV_LIMITS = WavLimits(max_bytes=1 << 20, max_seconds=30.0)


def check_wav(data: bytes) -> None:
    """WAV files: only MediaError; decoded audio re-encodes and decodes unchanged."""
    try:
        samples, rate = decode_wav(data, _WAV_LIMITS)
    except MediaError:
        return
    assert samples.dtype == np.int16 and samples.ndim == 1
    again, again_rate = decode_wav(encode_wav(samples, rate))
    assert again_rate == rate and np.array_equal(again, samples)


# --------------------------------------------------------------------------------- user agent

_SOURCES = (("192.0.2.10", 5070), ("192.0.2.11", 5060), ("198.51.100.7", 5060))
_MAX_CALLS = 8
_OUTGOING_TARGET = "sip:bob@192.0.2.10:5070"


def make_agent(flags: int) -> UserAgent:
    """The agent under test; ``flags`` bit 1 turns on digest auth for inbound INVITEs."""
    counter = iter(range(1 << 30))
    auth = InboundAuth("voxflow", {"alice": "secret"}, b"k" * 16) if flags & 2 else None
    config = SipConfig(
        listen_address="192.0.2.1",
        max_calls=_MAX_CALLS,
        answer_timeout=30.0,
        inbound_auth=auth,
        outbound_credentials=Credentials("voxflow", "secret"),
        rate_limits=RateLimits(invite=RateLimit(rate=5.0, burst=10.0)),
    )
    return UserAgent(config, token=lambda: f"{next(counter):08x}")


def start_agent(flags: int, now: float) -> tuple[UserAgent, list[str]]:
    """``make_agent`` and its calls: one outgoing call placed when ``flags`` bit 0 is set."""
    ua = make_agent(flags)
    if flags & 1:
        return ua, [ua.invite(_OUTGOING_TARGET, "192.0.2.1", 4002, now)]
    return ua, []


def check_useragent(data: bytes) -> None:
    """A whole user agent fed datagrams, clock steps and commands: nothing escapes, no internal
    error is counted, calls and transactions stay bounded and nothing leaks once time runs on."""
    reader = Reader(data)
    now = 1000.0
    ua, calls = start_agent(reader.uint(1), now)
    steps = 0
    while reader.remaining > 0 and steps < 64:
        steps += 1
        op = reader.uint(1)
        kind = op % 8
        if kind <= 4:
            ua.receive_datagram(reader.chunk(), _SOURCES[op // 8 % len(_SOURCES)], now)
        elif kind == 5:
            now += reader.uint(1) * 0.25
            ua.handle_timer(now)
        elif calls:
            call_id = calls[op // 8 % len(calls)]
            try:
                if kind == 6 and op & 0x80:
                    ua.ring(call_id, now)
                elif kind == 6:
                    ua.answer(call_id, "192.0.2.1", 4000, now)
                elif op & 0x80:
                    ua.send_info(call_id, "application/dtmf-relay", b"Signal=1\r\n", now)
                else:
                    ua.hangup(call_id, now)
            except SipStateError:
                pass
        _drain(ua, now, calls)
        assert ua.stats.internal_errors == 0, "an exception was swallowed in receive_datagram"
        assert ua.call_count <= _MAX_CALLS + 1  # one outgoing call on top
    for _ in range(10_000):  # let every timer run out: transactions end, unanswered calls too
        deadline = ua.get_timer()
        if deadline is None or deadline > now + 600.0:
            break
        ua.handle_timer(deadline)
        _drain(ua, deadline, calls)
    # A confirmed call lasts until someone hangs up. An outgoing call that got a provisional
    # response (a 100 Trying leaves it "calling") may ring for ever: RFC 3261 gives a UAC no
    # timer there (Timer C is for proxies) and the agent has no ring timeout of its own, so the
    # application has to give up on it; its INVITE transaction alone may outlive the clock.
    states = [call.state for call in ua._calls.values()]  # no public view of call states
    ringing = sum(state in (CallState.CALLING, CallState.EARLY) for state in states)
    assert states.count(CallState.CONFIRMED) + ringing == len(states), f"calls stuck: {states}"
    assert ua.transaction_count <= ringing, "a transaction outlived all its timers"


def _drain(ua: UserAgent, now: float, calls: list[str]) -> None:
    while (event := ua.next_event()) is not None:
        if isinstance(event, IncomingCall):
            calls.append(event.call_id)
    for wire, _addr in ua.datagrams_to_send(now):
        _check_sent(wire)


def _check_sent(wire: bytes) -> None:
    """What the agent sends parses, except a 400 that echoes a broken request's headers."""
    try:
        parse_message(wire)
    except SipParseError:
        # salvage_request is lenient on purpose: a peer whose From is garbled still learns why
        assert wire.startswith(b"SIP/2.0 400 "), wire[:200]


CHECKS: dict[str, Check] = {
    "sip": check_sip,
    "sdp": check_sdp,
    "rtp": check_rtp,
    "sip_info": check_sip_info,
    "actions": check_actions,
    "wav": check_wav,
    "useragent": check_useragent,
}
