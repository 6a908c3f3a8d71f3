"""Time the SIP parser, serializer, SDP answer and a full INVITE→200 pass through the agent."""

from __future__ import annotations

import timeit
from collections.abc import Callable

from sip_harness import OFFER_SDP, SipHarness, request_text

from voxflow.sip.message import parse_message
from voxflow.sip.sdp import LocalMedia, SessionDescription, answer_offer

INVITE = request_text("INVITE", body=OFFER_SDP, content_type="application/sdp")


def per_call_us(statement: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(statement, number=number, repeat=5)) / number * 1e6


def agent_invite_to_answer() -> None:
    h = SipHarness()
    h.send(INVITE)
    h.ua.next_event()
    h.ua.answer("call-1", "192.0.2.1", 30000, h.now)
    h.ua.datagrams_to_send(h.now)


def main() -> None:
    message = parse_message(INVITE)
    offer = SessionDescription.parse(OFFER_SDP.encode())
    rows = [
        ("parse INVITE with SDP", per_call_us(lambda: parse_message(INVITE), 2000)),
        ("serialize INVITE", per_call_us(lambda: bytes(message), 2000)),
        (
            "parse SDP offer",
            per_call_us(lambda: SessionDescription.parse(OFFER_SDP.encode()), 2000),
        ),
        (
            "answer SDP offer",
            per_call_us(lambda: answer_offer(offer, LocalMedia("192.0.2.1", 1)), 2000),
        ),
        ("agent: INVITE in → 100, answer → 200 out", per_call_us(agent_invite_to_answer, 500)),
    ]
    print(f"{'operation':<45} {'µs':>8}")
    for name, value in rows:
        print(f"{name:<45} {value:>8.1f}")


if __name__ == "__main__":
    main()
