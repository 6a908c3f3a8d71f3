"""A sans-IO SIP user agent: datagrams and ``now`` in, events and datagrams out.

Driven like aioquic's connection: ``receive_datagram``, ``datagrams_to_send``, ``get_timer``,
``handle_timer``, ``next_event``. Commands (``answer``, ``hangup``, ``refer`` …) queue
datagrams too. Nothing here raises out of ``receive_datagram``: malformed input is answered
(400 when addressable), counted in ``stats`` and logged.

Responses that create no lasting state (403, 407, 503 for overload, 400) are sent statelessly,
so a flood of requests costs no memory; retransmissions simply get the same answer again.
"""

from __future__ import annotations

import logging
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from voxflow.errors import SdpError, SipParseError, SipStateError
from voxflow.sip.auth import Challenge, DigestServer, Verdict, answer_challenge
from voxflow.sip.call import Call, CallState
from voxflow.sip.config import Credentials, SipConfig
from voxflow.sip.dialog import Dialog, check_dialog_headers
from voxflow.sip.events import (
    CallAnswered,
    CallConfirmed,
    CallEnded,
    Event,
    IncomingCall,
    InfoReceived,
    MediaUpdated,
    OutgoingCallProgress,
    RegistrationState,
    TransferProgress,
)
from voxflow.sip.headers import Address, Headers, Via, quote
from voxflow.sip.message import Message, Request, Response, parse_message, salvage_request
from voxflow.sip.ratelimit import LIMITED_METHODS, Action, SourceRateLimiter
from voxflow.sip.sdp import (
    LocalMedia,
    NegotiatedMedia,
    SessionDescription,
    answer_offer,
    build_offer,
    process_answer,
)
from voxflow.sip.transaction import (
    MAGIC_COOKIE,
    ClientTransaction,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    ServerTransaction,
    State,
    Transaction,
    client_key,
    invite_key_for_cancel,
    server_key,
)
from voxflow.sip.uri import SipUri

logger = logging.getLogger("voxflow.sip")

Addr = tuple[str, int]
ALLOWED_METHODS = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "NOTIFY")
DTMF_CONTENT_TYPES = ("application/dtmf-relay", "application/dtmf", "application/hook-flash")
_PROBE_MEDIA_PORT = 9  # negotiation does not depend on our port; any placeholder works


@dataclass
class SipStats:
    """Counters for metrics and for tests that must see dropped input."""

    received: int = 0
    malformed: int = 0
    dropped: int = 0
    forbidden: int = 0
    overloaded: int = 0
    internal_errors: int = 0
    rate_limited: int = 0  # refused with 503 by the per-source rate limit
    rate_dropped: int = 0  # refused silently: past the per-source ceiling of 503 answers


@dataclass
class _ClientContext:
    """Why we sent a client transaction, so its responses reach the right handler."""

    purpose: str  # "invite", "bye", "cancel", "refer", "info", "register"
    call_id: str | None


@dataclass
class _Registration:
    call_id: str
    from_tag: str
    cseq: int = 0
    auth_attempts: int = 0
    expires: int = 0
    refresh_at: float | None = None


def _answered_2xx(txn: ServerTransaction) -> bool:
    # RFC 6026 §7.1: an ACK matching an INVITE transaction in Accepted state (same branch, or
    # an RFC 2543 peer without branches) acknowledges the 2xx and belongs to the TU
    response = txn.last_response
    return response is not None and 200 <= response.status < 300


def _check_echoes_request(request: Request, response: Response) -> None:
    """Raise SipParseError unless ``response`` carries the Call-ID, CSeq number and From tag of
    the request whose transaction its branch matched (§8.2.6.2): one that does not is not an
    answer to it, and must neither end that transaction nor reach another call."""
    if (
        response.call_id != request.call_id
        or response.cseq.number != request.cseq.number
        or response.from_address.tag != request.from_address.tag
    ):
        raise SipParseError(
            f"{response.status} response matches the branch of our {request.method} but not "
            "its Call-ID, CSeq number and From tag"
        )


def _got_provisional(txn: InviteClientTransaction | None) -> bool:
    # a 100 Trying leaves the call "calling" but moves its transaction on (§17.1.1.2)
    return txn is not None and txn.state is State.PROCEEDING


class UserAgent:
    """The SIP user agent for every call on one listening socket."""

    def __init__(self, config: SipConfig, token: Callable[[], str] | None = None) -> None:
        self.config = config
        self.stats = SipStats()
        self._token = token or (lambda: secrets.token_hex(8))
        self._events: deque[Event] = deque()
        self._outgoing: list[tuple[bytes, Addr]] = []
        self._calls: dict[str, Call] = {}
        self._server_txns: dict[tuple[str, str, str], ServerTransaction] = {}
        self._client_txns: dict[tuple[str, str], ClientTransaction] = {}
        self._client_context: dict[int, _ClientContext] = {}
        self._registration: _Registration | None = None
        self._limiter = (
            SourceRateLimiter(config.rate_limits, config.allowed_sources)
            if config.rate_limits is not None
            else None
        )
        auth = config.inbound_auth
        self._digest = (
            DigestServer(
                auth.realm,
                auth.users,
                auth.secret,
                algorithm=auth.algorithm,
                nonce_lifetime=auth.nonce_lifetime,
            )
            if auth is not None
            else None
        )

    # ----------------------------------------------------------------- driving interface

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        """Feed one datagram; never raises."""
        self.stats.received += 1
        try:
            message = parse_message(data)
        except SipParseError as error:
            self._reject_malformed(data, addr, error)
            return
        try:
            if isinstance(message, Request):
                self._receive_request(message, addr, now)
            else:
                self._receive_response(message, now)
        except (SipParseError, SdpError) as error:
            self._reject_malformed(data, addr, error)
        except Exception:  # one bad datagram must not stop the other calls
            self.stats.internal_errors += 1
            logger.exception("internal error while handling a datagram from %s:%s", *addr)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        """Everything queued for sending since the last call."""
        out, self._outgoing = self._outgoing, []
        return out

    def next_event(self) -> Event | None:
        """The oldest unread event."""
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """The next time :meth:`handle_timer` must run, or None."""
        deadlines = [
            deadline
            for txn in self._transactions()
            if (deadline := txn.next_deadline()) is not None
        ]
        deadlines += [c.answer_deadline for c in self._calls.values() if c.answer_deadline]
        if self._registration is not None and self._registration.refresh_at is not None:
            deadlines.append(self._registration.refresh_at)
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> None:
        """Run every due retransmission and timeout."""
        for txn in self._transactions():
            deadline = txn.next_deadline()
            if deadline is None or deadline > now:
                continue
            for message in txn.handle_timer(now):
                self._send(message, txn.remote)
            if txn.terminated:
                self._forget(txn, now)
        for call in list(self._calls.values()):
            if call.answer_deadline is not None and call.answer_deadline <= now:
                if call.outbound:
                    self._give_up_cancelled(call)
                else:
                    self._end_unanswered(call, 480, "no-answer", "timeout", now)
        registration = self._registration
        refresh_at = registration.refresh_at if registration is not None else None
        if registration is not None and refresh_at is not None and refresh_at <= now:
            registration.refresh_at = None
            self._send_register(self._registration_expires(), now, None)

    @property
    def call_count(self) -> int:
        """Calls currently tracked (any state)."""
        return len(self._calls)

    @property
    def transaction_count(self) -> int:
        """Live transactions (server and client)."""
        return len(self._server_txns) + len(self._client_txns)

    # ----------------------------------------------------------------- commands

    def ring(self, call_id: str, now: float) -> None:
        """Send 180 Ringing for an incoming call."""
        call = self._call(call_id, CallState.INCOMING)
        assert call.invite_server is not None
        response = self._response(call.invite, 180, to_tag=call.local_tag)
        response.headers.add("Contact", self._contact())
        self._respond(call.invite_server, response, now)

    def answer(
        self, call_id: str, rtp_address: str, rtp_port: int, now: float
    ) -> NegotiatedMedia | None:
        """Answer with 200 OK; returns the negotiated media (None when the INVITE had no offer)."""
        call = self._call(call_id, CallState.INCOMING)
        assert call.invite_server is not None
        call.local_media = self._local_media(rtp_address, rtp_port)
        if call.remote_offer is not None:
            answer_sdp, call.media = answer_offer(
                call.remote_offer, call.local_media, call.sdp_session_id, call.next_sdp_version()
            )
        else:
            answer_sdp = build_offer(call.local_media, call.sdp_session_id, call.next_sdp_version())
            call.our_offer = answer_sdp
        call.dialog = Dialog.as_uas(call.invite, call.local_tag)
        self._respond(call.invite_server, self._ok_with_sdp(call.invite, call, answer_sdp), now)
        call.state = CallState.ANSWERED
        call.answer_deadline = None
        return call.media

    def reject(self, call_id: str, status: int, now: float, reason: str | None = None) -> None:
        """Refuse an incoming call with a 3xx–6xx response."""
        if not 300 <= status <= 699:
            raise SipStateError(f"reject needs a 3xx-6xx status, got {status}")
        call = self._call(call_id, CallState.INCOMING)
        self._end_unanswered(call, status, reason or f"rejected {status}", "local", now)

    def hangup(self, call_id: str, now: float) -> None:
        """End a call in whatever state it is: BYE, CANCEL or a final error response."""
        call = self._calls.get(call_id)
        if call is None or call.state is CallState.TERMINATING:
            raise SipStateError(f"call {call_id!r} does not exist or is already ending")
        if call.state is CallState.INCOMING:
            self._end_unanswered(call, 480, "hangup", "local", now)
            return
        self._events.append(CallEnded(call_id, "hangup", "local"))
        previous, call.state = call.state, CallState.TERMINATING
        if previous is CallState.CONFIRMED:
            self._send_bye(call, now)
        elif previous is CallState.ANSWERED:
            call.bye_when_acked = True  # §15: no BYE before the ACK or its timeout
        elif previous is CallState.EARLY or _got_provisional(call.invite_client):
            self._send_cancel(call, now)
        else:
            call.cancel_when_provisional = True  # §9.1: no CANCEL before a provisional

    def refer(self, call_id: str, target: str, now: float) -> None:
        """Blind transfer: REFER the peer to ``target``; progress arrives as TransferProgress."""
        call = self._call(call_id, CallState.CONFIRMED)
        request = self._in_dialog_request(call, "REFER")
        request.headers.add("Refer-To", f"<{SipUri.parse(target)}>")
        request.headers.add("Referred-By", self._contact())
        self._start_client(request, self._dialog_destination(call), "refer", call_id, now)

    def send_info(self, call_id: str, content_type: str, body: bytes, now: float) -> None:
        """Send an INFO in the call's dialog."""
        call = self._call(call_id, CallState.CONFIRMED)
        request = self._in_dialog_request(call, "INFO")
        request.headers.add("Content-Type", content_type)
        request.body = body
        self._start_client(request, self._dialog_destination(call), "info", call_id, now)

    def invite(
        self,
        target: str,
        rtp_address: str,
        rtp_port: int,
        now: float,
        *,
        from_user: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> str:
        """Place an outgoing call; returns its Call-ID. Answers 401/407 challenges once."""
        uri = SipUri.parse(target)
        call_id = f"{self._token()}@{self.config.advertised_address}"
        local_media = self._local_media(rtp_address, rtp_port)
        session_id = int(self._token()[:8], 16)
        offer = build_offer(local_media, session_id, 1)
        user = from_user or self.config.user
        host = (
            self.config.registration.registrar
            if self.config.registration
            else (self.config.advertised_address)
        )
        headers = Headers()
        headers.add("From", str(Address(SipUri("sip", user, host)).with_tag(self._token())))
        headers.add("To", str(Address(uri)))
        headers.add("Call-ID", call_id)
        headers.add("CSeq", "1 INVITE")
        headers.add("Contact", self._contact())
        headers.add("Allow", ", ".join(ALLOWED_METHODS))
        headers.add("Content-Type", "application/sdp")
        for name, value in (extra_headers or {}).items():
            headers.add(name, value)
        request = Request(headers, offer.to_bytes(), "INVITE", uri)
        destination = self.config.outbound_proxy or (uri.host_for_socket, uri.port or 5060)
        call = Call(
            call_id,
            True,
            CallState.CALLING,
            destination,
            request.from_address.tag or "",
            request,
            our_offer=offer,
            local_media=local_media,
            sdp_session_id=session_id,
            sdp_version=1,
        )
        self._calls[call_id] = call
        self._send_invite(call, request, now)
        return call_id

    def register(self, now: float) -> None:
        """REGISTER to the configured trunk; refreshes itself before expiry."""
        if self.config.registration is None:
            raise SipStateError("register() needs SipConfig.registration")
        self._send_register(self.config.registration.expires, now, None)

    def unregister(self, now: float) -> None:
        """Remove our binding (REGISTER with expires 0) and stop refreshing."""
        if self.config.registration is None or self._registration is None:
            raise SipStateError("unregister() without a registration")
        self._registration.refresh_at = None
        self._send_register(0, now, None)

    # ----------------------------------------------------------------- inbound requests

    def _receive_request(self, request: Request, addr: Addr, now: float) -> None:
        self._stamp_via(request, addr)
        if not self._within_rate_limit(request, addr, now):
            return
        if not self.config.source_allowed(addr[0]):
            self.stats.forbidden += 1
            logger.warning("%s from %s refused by the allow-list", request.method, addr[0])
            if request.method != "ACK":
                self._send_stateless(request, 403, "source address not allowed")
            return
        txn = self._server_txns.get(server_key(request))
        if txn is not None and not (request.method == "ACK" and _answered_2xx(txn)):
            for message in txn.receive_request(request, now):
                self._send(message, txn.remote)
            return
        if request.method == "ACK":
            self._receive_ack(request, now)
            return
        if request.method == "CANCEL":
            self._receive_cancel(request, now)
            return
        max_forwards = request.headers.get("Max-Forwards")
        if max_forwards is not None and max_forwards.strip() == "0":
            self._send_stateless(request, 483, None)
            return
        if request.to_address.tag is not None:
            self._receive_in_dialog(request, now)
        elif request.method == "INVITE":
            self._receive_invite(request, addr, now)
        elif request.method == "OPTIONS":
            self._respond_new(request, self._options_response(request), now)
        elif request.method in ("BYE", "INFO", "NOTIFY"):
            self._respond_new(request, self._response(request, 481), now)
        else:
            self._respond_new(request, self._method_not_allowed(request), now)

    def _within_rate_limit(self, request: Request, addr: Addr, now: float) -> bool:
        if self._limiter is None or request.method not in LIMITED_METHODS:
            return True
        if server_key(request) in self._server_txns:
            return True  # a retransmission is absorbed by its transaction and costs nothing
        verdict = self._limiter.check(addr[0], request.method, now)
        if verdict.action is Action.ALLOW:
            return True
        if verdict.log:
            logger.warning(
                "%s from %s over the per-source rate limit (%d more refused since last report)",
                request.method,
                addr[0],
                verdict.suppressed,
            )
        if verdict.action is Action.REJECT:
            self.stats.rate_limited += 1
            self._send_stateless(
                request, 503, "rate limit exceeded", {"Retry-After": str(verdict.retry_after)}
            )
        else:
            self.stats.rate_dropped += 1
        return False

    def _receive_invite(self, request: Request, addr: Addr, now: float) -> None:
        if request.call_id in self._calls:
            self._send_stateless(request, 482, "Call-ID already in use")  # merged request
            return
        if len(self._calls) >= self.config.max_calls:
            self.stats.overloaded += 1
            self._send_stateless(request, 503, "too many calls", {"Retry-After": "5"})
            return
        if not self._inbound_auth_passes(request, now):
            return
        required = [r for r in request.headers.get_all("Require") if r.lower() != "timer"]
        if required:
            self._send_stateless(request, 420, None, {"Unsupported": ", ".join(required)})
            return
        check_dialog_headers(request)  # a Contact answer() could not reuse → 400 now, not later
        offer = self._parse_offer(request)  # raises SdpError → 400/488 via receive_datagram
        if offer is not None:
            answer_offer(
                offer, self._local_media(self.config.advertised_address, _PROBE_MEDIA_PORT)
            )
        txn = InviteServerTransaction(
            request, request.top_via.response_address(), self.config.timers
        )
        self._server_txns[server_key(request)] = txn
        self._respond(txn, self._response(request, 100), now)
        call = Call(
            request.call_id,
            False,
            CallState.INCOMING,
            addr,
            self._token(),
            request,
            invite_server=txn,
            remote_offer=offer,
            sdp_session_id=int(self._token()[:8], 16),
            answer_deadline=now + self.config.answer_timeout,
        )
        self._calls[call.call_id] = call
        self._events.append(
            IncomingCall(
                call.call_id,
                offer,
                request.from_address,
                request.to_address,
                request.uri,
                addr,
                request.headers.as_dict(),
            )
        )

    def _inbound_auth_passes(self, request: Request, now: float) -> bool:
        if self._digest is None:
            return True
        credentials = request.headers.get("Proxy-Authorization") or request.headers.get(
            "Authorization"
        )
        verdict = self._digest.verify(credentials, request.method, now)
        if verdict is Verdict.OK:
            return True
        if verdict is Verdict.INVALID:
            self._send_stateless(request, 403, "wrong credentials")
        else:
            challenge = self._digest.challenge(now, stale=verdict is Verdict.STALE)
            self._send_stateless(request, 407, None, {"Proxy-Authenticate": challenge})
        return False

    def _parse_offer(self, request: Request) -> SessionDescription | None:
        if not request.body.strip():
            return None
        if request.content_type != "application/sdp":
            raise SdpError(f"INVITE body has Content-Type {request.content_type!r}", status=415)
        return SessionDescription.parse(request.body)

    def _receive_ack(self, request: Request, now: float) -> None:
        call = self._calls.get(request.call_id)
        txn = call.invite_server if call is not None else None
        if call is None or txn is None or txn.request.cseq.number != request.cseq.number:
            self.stats.dropped += 1  # ACK for nothing we know: never answered (§17.2.3)
            return
        txn.acknowledge(now)
        if call.our_offer is not None and request.body.strip():
            try:
                call.media = process_answer(call.our_offer, SessionDescription.parse(request.body))
                call.our_offer = None
                self._events.append(MediaUpdated(call.call_id, call.media))
            except SdpError as error:
                logger.warning("unusable SDP answer in ACK of %s: %s", call.call_id, error)
        if call.state is CallState.ANSWERED:
            call.state = CallState.CONFIRMED
            self._events.append(CallConfirmed(call.call_id))
        elif call.state is CallState.TERMINATING and call.bye_when_acked:
            call.bye_when_acked = False
            self._send_bye(call, now)

    def _receive_cancel(self, request: Request, now: float) -> None:
        invite_txn = self._server_txns.get(invite_key_for_cancel(request))
        if not isinstance(invite_txn, InviteServerTransaction):
            self._respond_new(request, self._response(request, 481), now)
            return
        call = self._calls.get(request.call_id)
        self._respond_new(
            request, self._response(request, 200, to_tag=call.local_tag if call else None), now
        )
        if call is not None and call.state is CallState.INCOMING:
            self._end_unanswered(call, 487, "cancelled", "remote", now)

    def _receive_in_dialog(self, request: Request, now: float) -> None:
        call = self._calls.get(request.call_id)
        dialog = call.dialog if call is not None else None
        if call is None or dialog is None or not dialog.matches(request):
            self._respond_new(request, self._response(request, 481), now)
            return
        if request.method == "INVITE":
            check_dialog_headers(request)  # a target refresh we could not reuse → 400, no state
        if not dialog.accept_remote_cseq(request):
            self._respond_new(request, self._response(request, 500, "CSeq out of order"), now)
            return
        handler = {
            "BYE": self._receive_bye,
            "INFO": self._receive_info,
            "INVITE": self._receive_reinvite,
            "NOTIFY": self._receive_notify,
            "OPTIONS": self._receive_options_in_dialog,
        }.get(request.method)
        if handler is None:
            self._respond_new(request, self._method_not_allowed(request), now)
        else:
            handler(call, request, now)

    def _receive_options_in_dialog(self, call: Call, request: Request, now: float) -> None:
        self._respond_new(request, self._options_response(request), now)

    def _receive_bye(self, call: Call, request: Request, now: float) -> None:
        self._respond_new(request, self._response(request, 200), now)
        if call.invite_server is not None:
            call.invite_server.acknowledge(now)  # a BYE implies the 2xx arrived
        if call.state is not CallState.TERMINATING:
            self._events.append(CallEnded(call.call_id, "bye", "remote"))
        self._drop_call(call)

    def _receive_info(self, call: Call, request: Request, now: float) -> None:
        content_type = request.content_type
        if content_type in DTMF_CONTENT_TYPES:
            self._respond_new(request, self._response(request, 200), now)
            self._events.append(
                InfoReceived(call.call_id, content_type, request.body, request.cseq.number)
            )
        elif not request.body:
            self._respond_new(request, self._response(request, 200), now)  # keep-alive INFO
        else:
            response = self._response(request, 415)
            response.headers.add("Accept", ", ".join(DTMF_CONTENT_TYPES))
            self._respond_new(request, response, now)

    def _receive_reinvite(self, call: Call, request: Request, now: float) -> None:
        pending = call.invite_server
        if pending is not None and not pending.has_final_response:
            self._respond_new(request, self._response(request, 500, None), now)
            return
        txn = InviteServerTransaction(
            request, request.top_via.response_address(), self.config.timers
        )
        self._server_txns[server_key(request)] = txn
        local = call.local_media
        if call.state is not CallState.CONFIRMED or local is None or call.dialog is None:
            self._respond(txn, self._response(request, 491, None, call.local_tag), now)
            return
        try:
            offer = self._parse_offer(request)
            if offer is None:
                sdp = build_offer(local, call.sdp_session_id, call.next_sdp_version())
                call.our_offer = sdp
            else:
                sdp, media = answer_offer(offer, local, call.sdp_session_id, call.sdp_version + 1)
                call.next_sdp_version()
        except SdpError as error:
            response = self._response(request, error.status, None, call.local_tag)
            response.headers.add("Warning", self._warning(str(error)))
            self._respond(txn, response, now)
            return
        target = request.headers.get("Contact")
        if target:
            call.dialog.remote_target = Address.parse(target, "Contact").uri
        call.invite_server = txn
        self._respond(txn, self._ok_with_sdp(request, call, sdp), now)
        if offer is not None:
            call.media = media
            self._events.append(MediaUpdated(call.call_id, media))

    def _receive_notify(self, call: Call, request: Request, now: float) -> None:
        event = (request.headers.get("Event") or "").split(";")[0].strip().lower()
        if event != "refer":
            response = self._response(request, 489)
            response.reason = "Bad Event"
            self._respond_new(request, response, now)
            return
        status_line = request.body.decode("utf-8", "replace").strip().split("\n")[0].strip()
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("SIP/") or not parts[1].isdigit():
            raise SipParseError(f"NOTIFY body is not a sipfrag status line: {status_line[:60]!r}")
        self._respond_new(request, self._response(request, 200), now)
        status = int(parts[1])
        terminated = (
            (request.headers.get("Subscription-State") or "").lower().startswith("terminated")
        )
        reason = parts[2] if len(parts) > 2 else ""
        self._events.append(
            TransferProgress(call.call_id, status, reason, status >= 200 or terminated)
        )

    # ----------------------------------------------------------------- inbound responses

    def _receive_response(self, response: Response, now: float) -> None:
        txn = self._client_txns.get(client_key(response))
        if txn is None:
            self._receive_stray_response(response)
            return
        _check_echoes_request(txn.request, response)
        if txn.request.method == "INVITE" and 200 <= response.status < 300:
            check_dialog_headers(response)  # the dialog's remote target, before the ACK is due
        deliver, to_send = txn.receive_response(response, now)
        for message in to_send:
            self._send(message, txn.remote)
        if txn.terminated:
            self._forget(txn, now)
        if not deliver:
            return
        context = self._client_context[id(txn)]
        if context.purpose == "invite":
            self._invite_response(txn, response, now)
        elif context.purpose == "refer" and response.status >= 200:
            final = response.status >= 300
            self._events.append(
                TransferProgress(context.call_id or "", response.status, response.reason, final)
            )
        elif context.purpose == "register":
            self._register_response(txn.request, response, now)
        elif context.purpose == "bye" and response.status >= 200 and context.call_id:
            call = self._calls.get(context.call_id)
            if call is not None and call.state is CallState.TERMINATING:
                self._drop_call(call)

    def _receive_stray_response(self, response: Response) -> None:
        """A 2xx copy to an INVITE whose transaction already ended still needs our ACK."""
        call = self._calls.get(response.call_id)
        cseq = response.cseq
        ack = call.last_ack if call is not None else None
        is_copy = ack is not None and (cseq.method, cseq.number) == ("INVITE", ack.cseq.number)
        if call is not None and ack is not None and is_copy and 200 <= response.status < 300:
            self._send(ack, self._dialog_destination(call))
            return
        self.stats.dropped += 1

    def _invite_response(self, txn: ClientTransaction, response: Response, now: float) -> None:
        call = self._calls.get(response.call_id)
        if call is None or call.invite_client is not txn:
            return
        status = response.status
        if status < 200:
            if call.cancel_when_provisional:
                self._send_cancel(call, now)  # §9.1: any provisional, 100 included, allows it
                return
            if status == 100:
                return
            if call.state is CallState.CALLING:
                call.state = CallState.EARLY
            if call.state is CallState.EARLY:
                self._events.append(OutgoingCallProgress(call.call_id, status, response.reason))
        elif status < 300:
            self._invite_accepted(call, response, now)
        elif (
            status in (401, 407)
            and call.state is not CallState.TERMINATING
            and (self._retry_with_auth(call, response, now))
        ):
            return
        else:
            if call.state is not CallState.TERMINATING:
                reason = f"{status} {response.reason}"
                self._events.append(CallEnded(call.call_id, reason, "remote", status))
            self._drop_call(call)

    def _invite_accepted(self, call: Call, response: Response, now: float) -> None:
        if call.last_ack is not None:
            self._send(call.last_ack, self._dialog_destination(call))
            return
        call.dialog = Dialog.as_uac(call.invite, response)
        ack = self._in_dialog_request(call, "ACK", cseq=call.invite.cseq.number)
        call.last_ack = ack
        self._send(ack, self._dialog_destination(call))
        if call.state is CallState.TERMINATING:
            self._send_bye(call, now)
            return
        try:
            assert call.our_offer is not None
            call.media = process_answer(call.our_offer, SessionDescription.parse(response.body))
        except SdpError as error:
            self._events.append(CallEnded(call.call_id, f"unusable SDP answer: {error}", "local"))
            call.state = CallState.TERMINATING
            self._send_bye(call, now)
            return
        call.state = CallState.CONFIRMED
        self._events.append(CallAnswered(call.call_id, call.media))

    def _retry_with_auth(self, call: Call, response: Response, now: float) -> bool:
        credentials = self.config.outbound_credentials or (
            self.config.registration.credentials if self.config.registration else None
        )
        if credentials is None or call.auth_attempts >= 2:
            return False
        request = self._authorized_copy(
            call.invite, response, credentials, call.invite.cseq.number + 1
        )
        if request is None:
            return False
        call.auth_attempts += 1
        call.invite = request
        self._send_invite(call, request, now)
        return True

    def _authorized_copy(
        self, request: Request, challenge_response: Response, credentials: Credentials, cseq: int
    ) -> Request | None:
        proxy = challenge_response.status == 407
        header = challenge_response.headers.get(
            "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        )
        if header is None:
            return None
        try:
            challenge = Challenge.parse(header)
        except SipParseError as error:
            logger.warning("unusable digest challenge: %s", error)
            return None
        headers = request.headers.copy()
        headers.remove("Via")
        headers.remove("Authorization")
        headers.remove("Proxy-Authorization")
        headers.set("CSeq", f"{cseq} {request.method}")
        headers.add(
            "Proxy-Authorization" if proxy else "Authorization",
            answer_challenge(
                challenge,
                method=request.method,
                uri=str(request.uri),
                username=credentials.username,
                password=credentials.password,
                cnonce=self._token(),
                body=request.body,
            ),
        )
        return Request(headers, request.body, request.method, request.uri)

    # ----------------------------------------------------------------- registration

    def _registration_expires(self) -> int:
        assert self.config.registration is not None
        return self.config.registration.expires

    def _send_register(self, expires: int, now: float, authorized_from: Response | None) -> None:
        settings = self.config.registration
        assert settings is not None
        if self._registration is None:
            self._registration = _Registration(
                f"{self._token()}@{self.config.advertised_address}", self._token()
            )
        registration = self._registration
        registration.cseq += 1
        user = settings.user or settings.credentials.username
        aor = Address(SipUri("sip", user, settings.registrar))
        headers = Headers()
        headers.add("From", str(aor.with_tag(registration.from_tag)))
        headers.add("To", str(aor))
        headers.add("Call-ID", registration.call_id)
        headers.add("CSeq", f"{registration.cseq} REGISTER")
        headers.add("Contact", f"{self._contact(user)};expires={expires}")
        headers.add("Expires", str(expires))
        request = Request(headers, b"", "REGISTER", SipUri("sip", None, settings.registrar))
        if authorized_from is not None:
            authorized = self._authorized_copy(
                request, authorized_from, settings.credentials, registration.cseq
            )
            if authorized is None:
                return
            request = authorized
        self._start_client(request, settings.address, "register", None, now)

    def _register_response(self, request: Request, response: Response, now: float) -> None:
        registration = self._registration
        settings = self.config.registration
        if registration is None or settings is None or response.status < 200:
            return
        requested = int(request.headers.get("Expires") or "0")
        if response.status in (401, 407) and registration.auth_attempts < 2:
            registration.auth_attempts += 1
            self._send_register(requested, now, response)
            return
        registration.auth_attempts = 0
        if 200 <= response.status < 300 and requested > 0:
            expires = self._granted_expires(response, requested)
            registration.expires = expires
            registration.refresh_at = now + max(expires - 30, expires / 2)
            self._events.append(RegistrationState(True, response.status, response.reason, expires))
        elif 200 <= response.status < 300:
            self._events.append(RegistrationState(False, response.status, "unregistered"))
        else:
            registration.refresh_at = now + settings.retry_after
            self._events.append(RegistrationState(False, response.status, response.reason))

    def _granted_expires(self, response: Response, requested: int) -> int:
        ours = self._contact(self.config.registration.user if self.config.registration else None)
        our_uri = Address.parse(ours).uri
        for value in response.headers.get_all("Contact"):
            contact = Address.parse(value, "Contact")
            expires = contact.params.get("expires")
            if contact.uri.host == our_uri.host and contact.uri.port == our_uri.port and expires:
                return int(expires) if expires.isdigit() else requested
        header = response.headers.get("Expires")
        return int(header) if header and header.isdigit() else requested

    # ----------------------------------------------------------------- sending helpers

    def _send_invite(self, call: Call, request: Request, now: float) -> None:
        request.headers.remove("Via")
        request.headers.add("Via", str(self._via()))
        self._add_common(request)
        txn = self._start_client(request, call.remote_addr, "invite", call.call_id, now)
        assert isinstance(txn, InviteClientTransaction)
        call.invite_client = txn

    def _send_bye(self, call: Call, now: float) -> None:
        request = self._in_dialog_request(call, "BYE")
        self._start_client(request, self._dialog_destination(call), "bye", call.call_id, now)

    def _send_cancel(self, call: Call, now: float) -> None:
        if call.cancel_sent or call.invite_client is None:
            return
        call.cancel_sent = True
        # §9.1: without a final response 64·T1 after the CANCEL, the INVITE is given up
        call.answer_deadline = now + self.config.timers.timeout
        cancel = call.invite_client.build_cancel()
        self._add_common(cancel)
        self._start_client(cancel, call.remote_addr, "cancel", call.call_id, now)

    def _start_client(
        self, request: Request, remote: Addr, purpose: str, call_id: str | None, now: float
    ) -> ClientTransaction:
        if "Via" not in request.headers:
            request.headers.add("Via", str(self._via()))
            self._add_common(request)
        txn: ClientTransaction
        if request.method == "INVITE":
            txn = InviteClientTransaction(request, remote, self.config.timers)
        else:
            txn = NonInviteClientTransaction(request, remote, self.config.timers)
        self._client_txns[client_key(request)] = txn
        self._client_context[id(txn)] = _ClientContext(purpose, call_id)
        for message in txn.start(now):
            self._send(message, remote)
        return txn

    def _in_dialog_request(self, call: Call, method: str, cseq: int | None = None) -> Request:
        assert call.dialog is not None
        request = call.dialog.create_request(method, self._via(), self._contact(), cseq=cseq)
        self._add_common(request)
        return request

    def _dialog_destination(self, call: Call) -> Addr:
        assert call.dialog is not None
        return call.dialog.destination(call.remote_addr)

    def _add_common(self, request: Request) -> None:
        if "Max-Forwards" not in request.headers:
            request.headers.add("Max-Forwards", "70")
        if "User-Agent" not in request.headers:
            request.headers.add("User-Agent", self.config.user_agent)

    def _via(self) -> Via:
        return Via(
            "UDP",
            self.config.advertised_address,
            self.config.advertised_port,
            {"branch": f"{MAGIC_COOKIE}{self._token()}", "rport": None},
        )

    def _contact(self, user: str | None = None) -> str:
        host = self.config.advertised_address
        return f"<sip:{user or self.config.user}@{host}:{self.config.advertised_port}>"

    def _local_media(self, address: str, port: int) -> LocalMedia:
        return LocalMedia(address, port, self.config.codecs, self.config.ptime)

    def _response(
        self, request: Request, status: int, reason: str | None = None, to_tag: str | None = None
    ) -> Response:
        if to_tag is None and status != 100 and request.to_address.tag is None:
            to_tag = self._token()  # every non-100 response needs a To tag (§8.2.6.2)
        response = Response.for_request(request, status, reason, to_tag)
        response.headers.add("Server", self.config.user_agent)
        return response

    def _ok_with_sdp(self, request: Request, call: Call, sdp: SessionDescription) -> Response:
        response = self._response(request, 200, None, call.local_tag)
        response.headers.add("Contact", self._contact())
        response.headers.add("Allow", ", ".join(ALLOWED_METHODS))
        response.headers.add("Content-Type", "application/sdp")
        response.body = sdp.to_bytes()
        return response

    def _options_response(self, request: Request) -> Response:
        response = self._response(request, 200)
        response.headers.add("Allow", ", ".join(ALLOWED_METHODS))
        response.headers.add("Accept", "application/sdp, " + ", ".join(DTMF_CONTENT_TYPES))
        response.headers.add("Contact", self._contact())
        return response

    def _method_not_allowed(self, request: Request) -> Response:
        response = self._response(request, 405)
        response.headers.add("Allow", ", ".join(ALLOWED_METHODS))
        return response

    def _warning(self, text: str) -> str:
        return f"399 {self.config.advertised_address} {quote(text[:200])}"

    def _respond(self, txn: ServerTransaction, response: Response, now: float) -> None:
        for message in txn.respond(response, now):
            self._send(message, txn.remote)

    def _respond_new(self, request: Request, response: Response, now: float) -> None:
        """Answer a non-INVITE request through a new server transaction (absorbs copies)."""
        txn = NonInviteServerTransaction(
            request, request.top_via.response_address(), self.config.timers
        )
        self._server_txns[server_key(request)] = txn
        self._respond(txn, response, now)

    def _send_stateless(
        self,
        request: Request,
        status: int,
        warning: str | None,
        extra: dict[str, str] | None = None,
    ) -> None:
        response = self._response(request, status)
        if warning:
            response.headers.add("Warning", self._warning(warning))
        for name, value in (extra or {}).items():
            response.headers.add(name, value)
        self._send(response, request.top_via.response_address())

    def _reject_malformed(self, data: bytes, addr: Addr, error: SipParseError | SdpError) -> None:
        self.stats.malformed += 1
        logger.info("bad SIP datagram from %s:%s: %s", addr[0], addr[1], error)
        request = salvage_request(data)
        if request is None:
            return
        try:
            self._stamp_via(request, addr)
            self._send_stateless(request, error.status, str(error))
        except SipParseError:
            return

    def _send(self, message: Message, addr: Addr) -> None:
        self._outgoing.append((bytes(message), addr))

    @staticmethod
    def _stamp_via(request: Request, addr: Addr) -> None:
        vias = request.headers.get_all("Via")
        top = Via.parse(vias[0])
        top.stamp_source(addr)
        request.headers.remove("Via")
        for value in [str(top), *vias[1:]]:
            request.headers.add("Via", value)

    # ----------------------------------------------------------------- bookkeeping

    def _call(self, call_id: str, state: CallState) -> Call:
        call = self._calls.get(call_id)
        if call is None:
            raise SipStateError(f"no call with Call-ID {call_id!r}")
        if call.state is not state:
            raise SipStateError(f"call {call_id!r} is {call.state.value}, not {state.value}")
        return call

    def _transactions(self) -> list[Transaction]:
        return [*self._server_txns.values(), *self._client_txns.values()]

    def _end_unanswered(self, call: Call, status: int, reason: str, by: str, now: float) -> None:
        if call.invite_server is not None and not call.invite_server.has_final_response:
            self._respond(
                call.invite_server, self._response(call.invite, status, None, call.local_tag), now
            )
        self._events.append(CallEnded(call.call_id, reason, by, status))
        self._drop_call(call)

    def _give_up_cancelled(self, call: Call) -> None:
        txn = call.invite_client
        call.answer_deadline = None
        if txn is not None and txn.state in (State.CALLING, State.PROCEEDING):
            self._client_txns.pop(client_key(txn.request), None)
            self._client_context.pop(id(txn), None)
            self._drop_call(call)  # its CallEnded went out with the hangup

    def _drop_call(self, call: Call) -> None:
        self._calls.pop(call.call_id, None)

    def _forget(self, txn: Transaction, now: float) -> None:
        if isinstance(txn, ServerTransaction):
            self._server_txns.pop(server_key(txn.request), None)
            if isinstance(txn, InviteServerTransaction) and txn.timed_out:
                self._ack_timeout(txn, now)
            return
        assert isinstance(txn, ClientTransaction)
        self._client_txns.pop(client_key(txn.request), None)
        context = self._client_context.pop(id(txn), _ClientContext("", None))
        if txn.timed_out:
            self._client_timeout(txn, context, now)

    def _ack_timeout(self, txn: InviteServerTransaction, now: float) -> None:
        call = self._calls.get(txn.request.call_id)
        if call is None or call.invite_server is not txn:
            return
        if txn.last_response is not None and txn.last_response.status < 300:
            if call.state is not CallState.TERMINATING:
                self._events.append(CallEnded(call.call_id, "ack-timeout", "timeout", 408))
            call.state = CallState.TERMINATING
            self._send_bye(call, now)  # §13.3.1.4: end the dialog the ACK never confirmed

    def _client_timeout(self, txn: ClientTransaction, context: _ClientContext, now: float) -> None:
        call = self._calls.get(context.call_id) if context.call_id else None
        if context.purpose == "invite" and call is not None and call.invite_client is txn:
            if call.state is not CallState.TERMINATING:
                self._events.append(CallEnded(call.call_id, "timeout", "timeout", 408))
            self._drop_call(call)
        elif context.purpose == "bye" and call is not None:
            self._drop_call(call)
        elif context.purpose == "refer" and call is not None:
            self._events.append(TransferProgress(call.call_id, 408, "Request Timeout", True))
        elif context.purpose == "register" and self.config.registration is not None:
            self._events.append(RegistrationState(False, 408, "registrar did not answer"))
            if self._registration is not None:
                self._registration.refresh_at = now + self.config.registration.retry_after


__all__ = ["ALLOWED_METHODS", "DTMF_CONTENT_TYPES", "SipStats", "UserAgent"]
