"""Events the SIP user agent reports (plain dataclasses, read with ``UserAgent.next_event()``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from voxflow.sip.headers import Address
from voxflow.sip.sdp import NegotiatedMedia, SessionDescription
from voxflow.sip.uri import SipUri

Addr = tuple[str, int]


@dataclass(frozen=True)
class Event:
    """Base class of every user-agent event."""


@dataclass(frozen=True)
class IncomingCall(Event):
    """A new INVITE passed policy and SDP checks; answer with ``ring``/``answer``/``reject``."""

    call_id: str
    offer: SessionDescription | None
    from_address: Address
    to_address: Address
    request_uri: SipUri
    remote_addr: Addr
    headers: dict[str, list[str]] = field(default_factory=dict)

    @property
    def from_number(self) -> str | None:
        """User part of From (the caller's number on most trunks)."""
        return self.from_address.uri.user

    @property
    def to_number(self) -> str | None:
        """User part of To (the dialled number)."""
        return self.to_address.uri.user

    @property
    def asserted_identity(self) -> str | None:
        """First P-Asserted-Identity value, if the trunk sent one."""
        values = self.headers.get("P-Asserted-Identity")
        return values[0] if values else None


@dataclass(frozen=True)
class CallConfirmed(Event):
    """The ACK for our 2xx arrived: the inbound call is fully established."""

    call_id: str


@dataclass(frozen=True)
class CallAnswered(Event):
    """Our outgoing INVITE was answered (we sent the ACK)."""

    call_id: str
    media: NegotiatedMedia


@dataclass(frozen=True)
class OutgoingCallProgress(Event):
    """A provisional response to our outgoing INVITE (180, 183 …)."""

    call_id: str
    status: int
    reason: str


@dataclass(frozen=True)
class CallEnded(Event):
    """The call is over. ``by`` is ``local``, ``remote`` or ``timeout``."""

    call_id: str
    reason: str
    by: str
    status: int | None = None


@dataclass(frozen=True)
class InfoReceived(Event):
    """An in-dialog INFO with a DTMF content type (already answered 200)."""

    call_id: str
    content_type: str
    body: bytes
    cseq: int


@dataclass(frozen=True)
class MediaUpdated(Event):
    """A re-INVITE changed the media (hold/unhold, codec or telephone-event changes)."""

    call_id: str
    media: NegotiatedMedia


@dataclass(frozen=True)
class TransferProgress(Event):
    """Progress of our REFER: 202/4xx to the REFER itself, then NOTIFY sipfrag statuses."""

    call_id: str
    status: int
    reason: str
    final: bool


@dataclass(frozen=True)
class RegistrationState(Event):
    """Outcome of a REGISTER (refreshes included)."""

    registered: bool
    status: int | None
    reason: str
    expires: int = 0
