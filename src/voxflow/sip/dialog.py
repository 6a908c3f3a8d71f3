"""SIP dialog state (RFC 3261 §12): identifiers, CSeq counters, route set, in-dialog requests."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from voxflow.sip.headers import Address, Headers, Via
from voxflow.sip.message import Request, Response
from voxflow.sip.uri import SipUri

Addr = tuple[str, int]


def _contact_uri(message: Request | Response, fallback: SipUri) -> SipUri:
    contact = message.headers.get("Contact")
    return Address.parse(contact, "Contact").uri if contact and contact != "*" else fallback


def check_dialog_headers(message: Request | Response) -> None:
    """Raise :class:`SipParseError` unless the Contact and Record-Route entries a dialog would
    keep from ``message`` parse: they become the Request-URI and Route of later requests
    (§12.1), so one we could not reuse is refused on arrival, not when we hang up."""
    _contact_uri(message, SipUri("sip", None, "invalid"))
    for route in message.headers.get_all("Record-Route"):
        Address.parse(route, "Record-Route")


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


@dataclass
class Dialog:
    """One dialog as seen from our side; ``local``/``remote`` are the From/To with tags."""

    call_id: str
    local: Address
    remote: Address
    remote_target: SipUri
    route_set: list[str] = field(default_factory=list)
    local_cseq: int = 0
    remote_cseq: int | None = None

    @classmethod
    def as_uas(cls, request: Request, local_tag: str) -> Dialog:
        """Dialog created by our 2xx to ``request`` (§12.1.1)."""
        return cls(
            call_id=request.call_id,
            local=request.to_address.with_tag(local_tag),
            remote=request.from_address,
            remote_target=_contact_uri(request, request.from_address.uri),
            route_set=request.headers.get_all("Record-Route"),
            remote_cseq=request.cseq.number,
        )

    @classmethod
    def as_uac(cls, request: Request, response: Response) -> Dialog:
        """Dialog created by a 2xx to our ``request`` (§12.1.2); route set reversed."""
        return cls(
            call_id=request.call_id,
            local=request.from_address,
            remote=response.to_address,
            remote_target=_contact_uri(response, request.uri),
            route_set=list(reversed(response.headers.get_all("Record-Route"))),
            local_cseq=request.cseq.number,
        )

    @property
    def local_tag(self) -> str | None:
        """Our tag."""
        return self.local.tag

    @property
    def remote_tag(self) -> str | None:
        """The peer's tag."""
        return self.remote.tag

    def matches(self, request: Request) -> bool:
        """Whether an in-dialog request belongs to this dialog (Call-ID and both tags)."""
        return (
            request.call_id == self.call_id
            and request.to_address.tag == self.local_tag
            and request.from_address.tag == self.remote_tag
        )

    def accept_remote_cseq(self, request: Request) -> bool:
        """Record the peer's CSeq; False for an out-of-order request (§12.2.2 → 500)."""
        number = request.cseq.number
        if self.remote_cseq is not None and number <= self.remote_cseq and request.method != "ACK":
            return False
        self.remote_cseq = max(number, self.remote_cseq or 0)
        return True

    def create_request(
        self, method: str, via: Via, contact: str, *, cseq: int | None = None
    ) -> Request:
        """An in-dialog request (§12.2.1.1) with loose routing; ``cseq`` overrides for ACK."""
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        headers = Headers()
        headers.add("Via", str(via))
        headers.add("Max-Forwards", "70")
        headers.add("From", str(self.local))
        headers.add("To", str(self.remote))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{cseq} {method}")
        for route in self.route_set:
            headers.add("Route", route)
        headers.add("Contact", contact)
        return Request(headers, b"", method, self.remote_target)

    def destination(self, fallback: Addr) -> Addr:
        """Where in-dialog requests go: first route or remote target, if an IP literal."""
        uri = (
            Address.parse(self.route_set[0], "Route").uri if self.route_set else self.remote_target
        )
        if not _is_ip_literal(uri.host):
            return fallback  # no DNS in a sans-IO core: reuse the peer's signalling address
        return uri.host_for_socket, uri.port or 5060
