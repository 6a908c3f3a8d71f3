"""RFC 3261 §17 transactions over an unreliable transport, with injected time.

Each transaction is a small state machine. Methods take the message and ``now`` and return the
messages to send to ``remote``; ``next_deadline()``/``handle_timer(now)`` drive retransmissions
and timeouts. The INVITE server transaction also retransmits a 2xx until the ACK arrives
(RFC 3261 §13.3.1.4 and RFC 6026's Accepted state) so the user agent needs no extra timers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from voxflow.errors import SipStateError
from voxflow.sip.headers import Headers
from voxflow.sip.message import Message, Request, Response

Addr = tuple[str, int]
MAGIC_COOKIE = "z9hG4bK"


@dataclass(frozen=True)
class TimerValues:
    """RFC 3261 timer base values in seconds (Table 4)."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def timeout(self) -> float:
        """64·T1: Timers B, F, H, J, L, M."""
        return 64 * self.t1


class State(enum.Enum):
    """Transaction states of RFC 3261 §17 plus RFC 6026's Accepted."""

    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


TransactionKey = tuple[str, str, str]


def server_key(request: Request) -> TransactionKey:
    """Key matching a request to its server transaction (RFC 3261 §17.2.3).

    ACK is matched to the INVITE it acknowledges; a CANCEL gets its own transaction (look up
    the INVITE with :func:`invite_key_for_cancel`).
    """
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch or ""
    if not branch.startswith(MAGIC_COOKIE):
        # RFC 2543 peers: no unique branch, so fall back to the dialog-ish identifiers.
        branch = f"legacy:{request.call_id}:{request.cseq.number}:{request.from_address.tag}"
    host, port = via.sent_by
    return branch, f"{host}:{port}", method


def invite_key_for_cancel(cancel: Request) -> TransactionKey:
    """Key of the INVITE server transaction a CANCEL refers to."""
    branch, sent_by, _ = server_key(cancel)
    return branch, sent_by, "INVITE"


def client_key(message: Message) -> tuple[str, str]:
    """Key matching a response (or our own request) to a client transaction (§17.1.3)."""
    return message.top_via.branch or "", message.cseq.method


class _Retransmitter:
    """Retransmission interval that doubles from T1, optionally capped (Timers A, E, G)."""

    def __init__(self, now: float, first: float, cap: float | None) -> None:
        self.interval = first
        self.cap = cap
        self.deadline = now + first

    def advance(self, now: float) -> None:
        self.interval = self.interval * 2 if self.cap is None else min(self.interval * 2, self.cap)
        self.deadline = now + self.interval


class Transaction:
    """What all four transaction kinds share: timers, state and the peer address."""

    def __init__(self, request: Request, remote: Addr, timers: TimerValues) -> None:
        self.request = request
        self.remote = remote
        self.timers = timers
        self.state = State.TRYING
        self.timed_out = False
        self._deadlines: dict[str, float] = {}
        self._retransmitter: _Retransmitter | None = None

    @property
    def terminated(self) -> bool:
        """True once the transaction can be forgotten."""
        return self.state is State.TERMINATED

    def next_deadline(self) -> float | None:
        """The earliest time :meth:`handle_timer` has work to do."""
        deadlines = list(self._deadlines.values())
        if self._retransmitter is not None:
            deadlines.append(self._retransmitter.deadline)
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> list[Message]:
        """Fire every due timer; returns what to (re)send."""
        out: list[Message] = []
        retransmitter = self._retransmitter
        if retransmitter is not None and retransmitter.deadline <= now:
            retransmitter.advance(now)
            message = self._retransmission()
            if message is not None:
                out.append(message)
        for name, deadline in sorted(self._deadlines.items(), key=lambda item: item[1]):
            if deadline <= now and name in self._deadlines:
                del self._deadlines[name]
                self._expire(name)
        return out

    def _retransmission(self) -> Message | None:
        raise NotImplementedError

    def _expire(self, name: str) -> None:
        """A non-retransmission timer fired: a timeout or the end of absorbing copies."""
        if name == "timeout":
            self.timed_out = True
        self._finish()

    def _finish(self) -> None:
        self.state = State.TERMINATED
        self._deadlines.clear()
        self._retransmitter = None


class ServerTransaction(Transaction):
    """Common to server transactions: replaying the last response to retransmissions."""

    def __init__(self, request: Request, remote: Addr, timers: TimerValues) -> None:
        super().__init__(request, remote, timers)
        self.last_response: Response | None = None

    @property
    def has_final_response(self) -> bool:
        """True once a final (>= 200) response was sent."""
        return self.last_response is not None and self.last_response.status >= 200

    def respond(self, response: Response, now: float) -> list[Message]:
        """Send a response through this transaction."""
        raise NotImplementedError

    def receive_request(self, request: Request, now: float) -> list[Message]:
        """A request matching this transaction (retransmission or ACK)."""
        raise NotImplementedError

    def _retransmission(self) -> Message | None:
        return self.last_response

    def _replay(self) -> list[Message]:
        return [self.last_response] if self.last_response is not None else []


class InviteServerTransaction(ServerTransaction):
    """RFC 3261 §17.2.1 with RFC 6026: Proceeding → Accepted (2xx) / Completed (non-2xx)."""

    def __init__(self, request: Request, remote: Addr, timers: TimerValues) -> None:
        super().__init__(request, remote, timers)
        self.state = State.PROCEEDING
        self.acknowledged = False

    def respond(self, response: Response, now: float) -> list[Message]:
        """Send a response; finals start retransmission until the ACK (Timer G, H)."""
        if self.state is not State.PROCEEDING:
            raise SipStateError(f"INVITE already answered; cannot send {response.status}")
        self.last_response = response
        if response.status >= 200:
            self.state = State.ACCEPTED if response.status < 300 else State.COMPLETED
            self._retransmitter = _Retransmitter(now, self.timers.t1, self.timers.t2)
            self._deadlines["timeout"] = now + self.timers.timeout
        return [response]

    def receive_request(self, request: Request, now: float) -> list[Message]:
        """A retransmitted INVITE (replay) or the ACK (stop retransmitting)."""
        if request.method != "ACK":
            return [] if self.state is State.CONFIRMED else self._replay()
        self.acknowledge(now)
        return []

    def acknowledge(self, now: float) -> None:
        """The ACK arrived (for 2xx it is matched by the dialog, not by branch)."""
        if self.state is State.COMPLETED:
            self.state = State.CONFIRMED
            self._retransmitter = None
            self._deadlines = {"absorb": now + self.timers.t4}  # Timer I
        elif self.state is State.ACCEPTED and not self.acknowledged:
            self.acknowledged = True
            self._retransmitter = None
            # Timer L: keep absorbing INVITE copies until 64·T1 after the 2xx.
            self._deadlines["absorb"] = self._deadlines.pop("timeout", now)


class NonInviteServerTransaction(ServerTransaction):
    """RFC 3261 §17.2.2: Trying → Proceeding → Completed (Timer J) → Terminated."""

    def respond(self, response: Response, now: float) -> list[Message]:
        """Send a response; a final one starts Timer J."""
        if self.has_final_response:
            raise SipStateError(f"{self.request.method} transaction already answered")
        self.last_response = response
        if response.status >= 200:
            self.state = State.COMPLETED
            self._deadlines["absorb"] = now + self.timers.timeout
        else:
            self.state = State.PROCEEDING
        return [response]

    def receive_request(self, request: Request, now: float) -> list[Message]:
        """A retransmission: replay the last response, if any."""
        return self._replay()


class ClientTransaction(Transaction):
    """Common to client transactions: the request is retransmitted until a response arrives."""

    def _retransmission(self) -> Message | None:
        return self.request

    def receive_response(self, response: Response, now: float) -> tuple[bool, list[Message]]:
        """Returns (pass the response up?, messages to send)."""
        raise NotImplementedError

    def start(self, now: float) -> list[Message]:
        """Send the request and arm the timers."""
        self._start_timers(now)
        return [self.request]

    def _start_timers(self, now: float) -> None:
        raise NotImplementedError


class InviteClientTransaction(ClientTransaction):
    """RFC 3261 §17.1.1 with RFC 6026 (Timers A, B, D, M)."""

    def __init__(self, request: Request, remote: Addr, timers: TimerValues) -> None:
        super().__init__(request, remote, timers)
        self.state = State.CALLING
        self._ack: Request | None = None

    def _start_timers(self, now: float) -> None:
        self._retransmitter = _Retransmitter(now, self.timers.t1, None)  # Timer A, uncapped
        self._deadlines["timeout"] = now + self.timers.timeout  # Timer B

    def receive_response(self, response: Response, now: float) -> tuple[bool, list[Message]]:
        """Returns (pass the response up?, messages to send)."""
        if self.state in (State.CALLING, State.PROCEEDING):
            self._retransmitter = None
            self._deadlines.pop("timeout", None)
            if response.status < 200:
                self.state = State.PROCEEDING
                return True, []
            if response.status < 300:
                self.state = State.ACCEPTED
                self._deadlines["absorb"] = now + self.timers.timeout  # Timer M
                return True, []
            self.state = State.COMPLETED
            self._ack = self._build_ack(response)
            self._deadlines["absorb"] = now + 32.0  # Timer D
            return True, [self._ack]
        if self.state is State.ACCEPTED:
            return 200 <= response.status < 300, []  # 2xx copies: the dialog re-ACKs
        if self.state is State.COMPLETED and self._ack is not None and response.status >= 300:
            return False, [self._ack]
        return False, []

    def _build_ack(self, response: Response) -> Request:
        """ACK for a non-2xx final: same branch, To from the response (§17.1.1.3)."""
        headers = Headers()
        headers.add("Via", self.request.headers.get_all("Via")[0])
        for name in ("Max-Forwards", "From"):
            for value in self.request.headers.get_all(name):
                headers.add(name, value)
        headers.add("To", response.headers.get("To") or "")
        headers.add("Call-ID", self.request.call_id)
        headers.add("CSeq", f"{self.request.cseq.number} ACK")
        for value in self.request.headers.get_all("Route"):
            headers.add("Route", value)
        return Request(headers, b"", "ACK", self.request.uri)

    def build_cancel(self) -> Request:
        """CANCEL for this INVITE (§9.1): same branch, Request-URI, From, To, Call-ID, Route."""
        headers = Headers()
        headers.add("Via", self.request.headers.get_all("Via")[0])
        for name in ("Max-Forwards", "From", "To", "Call-ID"):
            for value in self.request.headers.get_all(name):
                headers.add(name, value)
        headers.add("CSeq", f"{self.request.cseq.number} CANCEL")
        for value in self.request.headers.get_all("Route"):
            headers.add("Route", value)
        return Request(headers, b"", "CANCEL", self.request.uri)


class NonInviteClientTransaction(ClientTransaction):
    """RFC 3261 §17.1.2 (Timers E, F, K)."""

    def _start_timers(self, now: float) -> None:
        self._retransmitter = _Retransmitter(now, self.timers.t1, self.timers.t2)  # Timer E
        self._deadlines["timeout"] = now + self.timers.timeout  # Timer F

    def receive_response(self, response: Response, now: float) -> tuple[bool, list[Message]]:
        """Returns (pass the response up?, messages to send)."""
        if self.state not in (State.TRYING, State.PROCEEDING):
            return False, []  # retransmitted final: absorbed
        if response.status < 200:
            if self.state is State.TRYING and self._retransmitter is not None:
                self._retransmitter.interval = self.timers.t2 / 2  # next advance lands on T2
            self.state = State.PROCEEDING
            return True, []
        self.state = State.COMPLETED
        self._retransmitter = None
        self._deadlines = {"absorb": now + self.timers.t4}  # Timer K
        return True, []
