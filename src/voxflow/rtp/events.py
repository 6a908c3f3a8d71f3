"""What an :class:`voxflow.rtp.session.RtpSession` reports about inbound datagrams."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from voxflow.rtp.packet import RtpPacket

Address = tuple[str, int]


class RejectReason(enum.Enum):
    """Why an inbound datagram was dropped."""

    NOT_RTP = "not_rtp"
    WRONG_SOURCE = "wrong_source"
    UNKNOWN_PAYLOAD_TYPE = "unknown_payload_type"


@dataclass(frozen=True, slots=True)
class RemoteLatched:
    """The first valid packet fixed the remote media address (symmetric RTP)."""

    address: Address


@dataclass(frozen=True, slots=True)
class AudioReceived:
    """An audio packet was accepted and handed to the jitter buffer."""

    packet: RtpPacket


@dataclass(frozen=True, slots=True)
class TelephoneEventReceived:
    """A packet on the negotiated telephone-event payload type (RFC 4733), for the DTMF receiver."""

    packet: RtpPacket
    arrival: float


@dataclass(frozen=True, slots=True)
class PacketRejected:
    """A datagram was dropped; ``detail`` says what was wrong with it."""

    reason: RejectReason
    address: Address
    detail: str


RtpEvent = RemoteLatched | AudioReceived | TelephoneEventReceived | PacketRejected
