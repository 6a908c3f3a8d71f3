"""The INVITE usage of a dialog: where one call stands and what it negotiated."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from voxflow.sip.dialog import Dialog
from voxflow.sip.message import Request
from voxflow.sip.sdp import LocalMedia, NegotiatedMedia, SessionDescription
from voxflow.sip.transaction import InviteClientTransaction, InviteServerTransaction

Addr = tuple[str, int]


class CallState(enum.Enum):
    """Life of one call from our side."""

    INCOMING = "incoming"  # INVITE received, not answered yet
    CALLING = "calling"  # our INVITE sent, no provisional response yet
    EARLY = "early"  # our INVITE got a provisional response
    ANSWERED = "answered"  # we sent 2xx, waiting for the ACK
    CONFIRMED = "confirmed"
    TERMINATING = "terminating"  # hung up locally, BYE/CANCEL still in flight


@dataclass
class Call:
    """Everything the user agent tracks for one Call-ID."""

    call_id: str
    outbound: bool
    state: CallState
    remote_addr: Addr
    local_tag: str
    invite: Request
    dialog: Dialog | None = None
    invite_server: InviteServerTransaction | None = None
    invite_client: InviteClientTransaction | None = None
    remote_offer: SessionDescription | None = None
    our_offer: SessionDescription | None = None
    local_media: LocalMedia | None = None
    media: NegotiatedMedia | None = None
    sdp_session_id: int = 0
    sdp_version: int = 0
    answer_deadline: float | None = None
    bye_when_acked: bool = False
    cancel_when_provisional: bool = False
    cancel_sent: bool = False
    auth_attempts: int = 0
    last_ack: Request | None = None

    def next_sdp_version(self) -> int:
        """Bump the o= version for a new SDP body (RFC 3264 §8)."""
        self.sdp_version += 1
        return self.sdp_version
