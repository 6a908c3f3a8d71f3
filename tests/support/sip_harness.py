"""Drive a sans-IO SIP UserAgent with byte strings and a fake clock (no sockets).

``SipHarness`` plays a remote peer at ``PEER``: it sends requests written as text, collects
what the agent sends back (parsed), and advances time through the agent's timers.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from voxflow.sip.config import SipConfig
from voxflow.sip.events import Event
from voxflow.sip.message import Request, Response, parse_message
from voxflow.sip.useragent import UserAgent

PEER = ("192.0.2.10", 5070)
AGENT = ("192.0.2.1", 5060)

OFFER_SDP = (
    "v=0\r\no=peer 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)


def crlf(text: str) -> bytes:
    """Turn a readable multi-line message into wire bytes with CRLF line ends."""
    return text.strip("\n").replace("\n", "\r\n").encode()


def request_text(
    method: str,
    *,
    call_id: str = "call-1",
    cseq: int = 1,
    branch: str = "z9hG4bK-1",
    from_tag: str = "peer-tag",
    to_tag: str | None = None,
    body: str = "",
    content_type: str | None = None,
    extra: str = "",
    uri: str = "sip:bot@192.0.2.1:5060",
) -> bytes:
    """A request from the peer as wire bytes."""
    to = "<sip:bot@192.0.2.1>" + (f";tag={to_tag}" if to_tag else "")
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP {PEER[0]}:{PEER[1]};branch={branch};rport",
        "Max-Forwards: 70",
        f'From: "Alice" <sip:+4930123@{PEER[0]}>;tag={from_tag}',
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:alice@{PEER[0]}:{PEER[1]}>",
    ]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    if extra:
        lines.extend(extra.strip("\n").split("\n"))
    lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


@dataclass
class SipHarness:
    """A user agent, a clock and the peer's view of the traffic."""

    config: SipConfig = field(
        default_factory=lambda: SipConfig(
            listen_address=AGENT[0], listen_port=AGENT[1], answer_timeout=60.0
        )
    )
    now: float = 1000.0

    def __post_init__(self) -> None:
        counter = itertools.count(1)
        self.ua = UserAgent(self.config, token=lambda: f"{next(counter):08x}")

    def send(self, data: bytes, addr: tuple[str, int] = PEER) -> None:
        """Deliver one datagram to the agent."""
        self.ua.receive_datagram(data, addr, self.now)

    def sent(self) -> list[tuple[Request | Response, tuple[str, int]]]:
        """Everything the agent sent since the last call, parsed."""
        return [(parse_message(data), addr) for data, addr in self.ua.datagrams_to_send(self.now)]

    def sent_messages(self) -> list[Request | Response]:
        """Like :meth:`sent` without the addresses."""
        return [message for message, _ in self.sent()]

    def statuses(self) -> list[int | str]:
        """Status codes of sent responses and methods of sent requests, in order."""
        return [m.status if isinstance(m, Response) else m.method for m in self.sent_messages()]

    def events(self) -> list[Event]:
        """Every event since the last call."""
        out = []
        while (event := self.ua.next_event()) is not None:
            out.append(event)
        return out

    def advance(self, seconds: float) -> None:
        """Move the clock forward, firing every timer that falls due on the way."""
        end = self.now + seconds
        while (deadline := self.ua.get_timer()) is not None and deadline <= end:
            self.now = max(self.now, deadline)
            self.ua.handle_timer(self.now)
        self.now = end
