from sip_harness import PEER, request_text

from voxflow.sip.message import Message, Request, Response, parse_message
from voxflow.sip.transaction import (
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    State,
    TimerValues,
    Transaction,
    client_key,
    invite_key_for_cancel,
    server_key,
)

TIMERS = TimerValues()


def request(
    method: str, *, cseq: int = 1, branch: str = "z9hG4bK-1", to_tag: str | None = None
) -> Request:
    message = parse_message(request_text(method, cseq=cseq, branch=branch, to_tag=to_tag))
    assert isinstance(message, Request)
    return message


def fire_all(txn: Transaction, until: float) -> list[tuple[float, Message]]:
    """Run a transaction's timers up to ``until``; returns (time, message) for every send."""
    sent: list[tuple[float, Message]] = []
    while (deadline := txn.next_deadline()) is not None and deadline <= until:
        sent += [(deadline, m) for m in txn.handle_timer(deadline)]
    return sent


def test_2xx_is_retransmitted_with_t1_doubling_capped_at_t2_until_timer_h() -> None:
    invite = request("INVITE")
    txn = InviteServerTransaction(invite, PEER, TIMERS)
    ok = Response.for_request(invite, 200, to_tag="t")
    assert txn.respond(ok, now=0.0) == [ok]
    sent = fire_all(txn, until=100.0)
    times = [t for t, _ in sent]
    assert times[:7] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5]  # 0.5, 1, 2, 4, 4, 4 … apart
    assert all(message is ok for _, message in sent)
    assert times[-1] < 32.0
    assert txn.terminated and txn.timed_out  # Timer H: no ACK within 64·T1


def test_ack_stops_2xx_retransmission_and_absorbs_until_timer_l() -> None:
    invite = request("INVITE")
    txn = InviteServerTransaction(invite, PEER, TIMERS)
    txn.respond(Response.for_request(invite, 200, to_tag="t"), now=0.0)
    fire_all(txn, until=2.0)
    txn.acknowledge(now=2.0)
    assert fire_all(txn, until=31.9) == []
    assert txn.receive_request(invite, now=5.0)  # a late INVITE copy still gets the 2xx
    fire_all(txn, until=32.0)
    assert txn.terminated and not txn.timed_out


def test_non_2xx_final_waits_for_ack_then_timer_i() -> None:
    invite = request("INVITE")
    txn = InviteServerTransaction(invite, PEER, TIMERS)
    busy = Response.for_request(invite, 486, to_tag="t")
    txn.respond(busy, now=0.0)
    assert [m for _, m in fire_all(txn, until=0.6)] == [busy]  # Timer G
    txn.receive_request(request("ACK", cseq=1), now=0.7)
    assert txn.state is State.CONFIRMED
    assert txn.receive_request(invite, now=1.0) == []
    fire_all(txn, until=0.7 + TIMERS.t4)
    assert txn.terminated and not txn.timed_out


def test_invite_retransmission_replays_the_last_provisional() -> None:
    invite = request("INVITE")
    txn = InviteServerTransaction(invite, PEER, TIMERS)
    ringing = Response.for_request(invite, 180, to_tag="t")
    txn.respond(ringing, now=0.0)
    assert txn.receive_request(invite, now=0.5) == [ringing]
    assert txn.next_deadline() is None  # provisional responses are not retransmitted


def test_non_invite_server_absorbs_retransmissions_until_timer_j() -> None:
    bye = request("BYE", to_tag="x")
    txn = NonInviteServerTransaction(bye, PEER, TIMERS)
    assert txn.receive_request(bye, now=0.0) == []  # nothing to replay before a response
    ok = Response.for_request(bye, 200)
    txn.respond(ok, now=0.0)
    assert txn.receive_request(bye, now=3.0) == [ok]
    assert fire_all(txn, until=31.9) == [] and not txn.terminated
    fire_all(txn, until=32.0)
    assert txn.terminated and not txn.timed_out


def test_invite_client_timer_a_doubles_uncapped_and_timer_b_times_out() -> None:
    invite = request("INVITE")
    txn = InviteClientTransaction(invite, PEER, TIMERS)
    assert txn.start(now=0.0) == [invite]
    sent = fire_all(txn, until=64.0)
    assert [t for t, _ in sent] == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert txn.terminated and txn.timed_out


def test_invite_client_provisional_stops_retransmission_and_non_2xx_is_acked() -> None:
    invite = request("INVITE")
    txn = InviteClientTransaction(invite, PEER, TIMERS)
    txn.start(now=0.0)
    assert txn.receive_response(Response.for_request(invite, 180, to_tag="r"), now=0.2) == (
        True,
        [],
    )
    assert fire_all(txn, until=60.0) == []
    declined = Response.for_request(invite, 603, to_tag="r")
    deliver, sent = txn.receive_response(declined, now=61.0)
    ack = sent[0]
    assert deliver and isinstance(ack, Request) and ack.method == "ACK"
    assert ack.top_via.branch == invite.top_via.branch and ack.to_address.tag == "r"
    assert ack.cseq.number == 1 and ack.cseq.method == "ACK"
    assert txn.receive_response(declined, now=62.0) == (False, [ack])  # copies re-ACKed
    fire_all(txn, until=61.0 + 32.0)
    assert txn.terminated and not txn.timed_out


def test_invite_client_cancel_matches_the_invite() -> None:
    invite = request("INVITE")
    cancel = InviteClientTransaction(invite, PEER, TIMERS).build_cancel()
    assert (cancel.method, cancel.cseq.method, cancel.cseq.number) == ("CANCEL", "CANCEL", 1)
    assert invite_key_for_cancel(cancel) == server_key(invite)


def test_non_invite_client_timer_e_caps_at_t2_and_timer_f_times_out() -> None:
    options = request("OPTIONS")
    txn = NonInviteClientTransaction(options, PEER, TIMERS)
    txn.start(now=0.0)
    times = [t for t, _ in fire_all(txn, until=40.0)]
    assert times[:6] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5]
    assert txn.terminated and txn.timed_out


def test_non_invite_client_final_then_timer_k_absorbs_copies() -> None:
    options = request("OPTIONS")
    txn = NonInviteClientTransaction(options, PEER, TIMERS)
    txn.start(now=0.0)
    ok = Response.for_request(options, 200, to_tag="r")
    assert txn.receive_response(ok, now=0.1) == (True, [])
    assert txn.receive_response(ok, now=0.2) == (False, [])
    fire_all(txn, until=0.1 + TIMERS.t4)
    assert txn.terminated and not txn.timed_out


def test_keys_match_ack_to_invite_and_responses_to_requests() -> None:
    assert server_key(request("ACK"))[:2] == server_key(request("INVITE"))[:2]
    assert server_key(request("ACK")) == server_key(request("INVITE"))
    assert server_key(request("INVITE", branch="z9hG4bK-2")) != server_key(request("INVITE"))
    options = request("OPTIONS")
    assert client_key(Response.for_request(options, 200)) == client_key(options)
