"""One call leg's RTP: outbound packet numbering, inbound demultiplexing and address latching.

Sans-IO: :meth:`RtpSession.receive_datagram` takes bytes, the sender's address and ``now`` and
returns events; ``build_*`` return bytes for the adapter to send to :attr:`RtpSession.remote`.

Symmetric RTP (RFC 4961): the remote address from the SDP is only a first guess. The first valid
packet (RTP version 2 on a negotiated payload type) fixes the remote address ("latching"), which
makes calls through NAT work; afterwards packets from any other address are dropped and counted,
so a stray or hostile sender cannot inject audio or DTMF into the call. One exception closes the
race a spoofer could win by sending before the caller does: a packet from the address the SDP
signalled always takes the stream back from a latched address that was not signalled.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from voxflow.errors import RtpError, RtpParseError
from voxflow.rtp.events import (
    Address,
    AudioReceived,
    PacketRejected,
    RejectReason,
    RemoteLatched,
    RtpEvent,
    TelephoneEventReceived,
)
from voxflow.rtp.jitter import Frame, JitterBuffer, JitterConfig, JitterStats
from voxflow.rtp.packet import RtpPacket, parse_rtp

_SEQ_MOD = 1 << 16
_HEADER = struct.Struct("!BBHII")  # version 2, no padding/extension/CSRC; M+PT; seq; ts; SSRC
_TS_MOD = 1 << 32


@dataclass(frozen=True, slots=True)
class RtpSessionStats:
    """Datagram counters of one session plus its jitter buffer's statistics."""

    sent: int
    received: int
    telephone_events: int
    rejected_not_rtp: int
    rejected_wrong_source: int
    rejected_unknown_payload_type: int
    jitter: JitterStats


class RtpSession:
    """Sans-IO RTP for one call leg: see the module docstring."""

    def __init__(
        self,
        *,
        audio_payload_type: int,
        event_payload_type: int | None = None,
        remote: Address | None = None,
        jitter: JitterConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        # RFC 3550 §5.1: random initial sequence number and timestamp, random SSRC.
        source = rng if rng is not None else random.SystemRandom()
        self.ssrc = source.getrandbits(32)
        self._sequence = source.getrandbits(16)
        self._timestamp = source.getrandbits(32)
        self._talkspurt_pending = True
        self._audio_pt = audio_payload_type
        self._event_pt = event_payload_type
        self._remote = remote
        self._signalled = remote
        self._latched = False
        self._jitter = JitterBuffer(jitter)
        self._sent = 0
        self._received = 0
        self._telephone_events = 0
        self._rejected = dict.fromkeys(RejectReason, 0)

    # -- configuration -------------------------------------------------------------------------

    @property
    def remote(self) -> Address | None:
        """Where outbound packets go: the latched address, else the one from the SDP."""
        return self._remote

    @property
    def latched(self) -> bool:
        """True once a valid inbound packet fixed :attr:`remote`."""
        return self._latched

    def renegotiate(
        self, *, audio_payload_type: int, event_payload_type: int | None, remote: Address | None
    ) -> None:
        """Apply a new offer/answer (re-INVITE): new payload types and remote; latch again."""
        self._audio_pt = audio_payload_type
        self._event_pt = event_payload_type
        self._remote = remote
        self._signalled = remote
        self._latched = False

    # -- outbound ------------------------------------------------------------------------------

    @property
    def next_timestamp(self) -> int:
        """RTP timestamp of the next audio frame, e.g. the start timestamp of a telephone event."""
        return self._timestamp

    def build_audio(self, payload: bytes, samples: int) -> bytes:
        """Next audio packet; the timestamp then advances by ``samples`` (clock units)."""
        marker = self._talkspurt_pending
        self._talkspurt_pending = False
        data = self._build(self._audio_pt, payload, self._timestamp, marker)
        self._timestamp = (self._timestamp + samples) % _TS_MOD
        return data

    def advance(self, samples: int) -> None:
        """Let ``samples`` clock units pass without audio; the next audio starts a talkspurt."""
        self._timestamp = (self._timestamp + samples) % _TS_MOD
        self._talkspurt_pending = True

    def build_event_packet(self, payload: bytes, *, timestamp: int, marker: bool = False) -> bytes:
        """One telephone-event packet with a caller-fixed timestamp (RFC 4733 §2.5.1.2).

        The audio clock is not touched: the caller keeps calling :meth:`advance` (or
        :meth:`build_audio`) per frame so audio after the event continues at the right time.
        """
        if self._event_pt is None:
            raise RtpError("cannot send a telephone event: none was negotiated for this call")
        return self._build(self._event_pt, payload, timestamp % _TS_MOD, marker)

    def build_event_packets(
        self, payloads: Sequence[bytes], *, timestamp: int, marker: bool = False
    ) -> list[bytes]:
        """Several event packets with one timestamp (e.g. the three END copies); ``marker`` on
        the first only."""
        return [
            self.build_event_packet(payload, timestamp=timestamp, marker=marker and i == 0)
            for i, payload in enumerate(payloads)
        ]

    def _build(self, payload_type: int, payload: bytes, timestamp: int, marker: bool) -> bytes:
        if 0 <= payload_type <= 127 and 0 <= self.ssrc <= 0xFFFFFFFF:
            # Every packet of every call goes through here: pack the fixed header directly
            # (the same bytes RtpPacket.to_bytes makes; sequence and timestamp are kept reduced).
            second = payload_type | 0x80 if marker else payload_type
            data = _HEADER.pack(0x80, second, self._sequence, timestamp, self.ssrc) + payload
        else:  # out of range: RtpPacket raises the error that names the field
            data = RtpPacket(
                payload_type, self._sequence, timestamp, self.ssrc, payload, marker
            ).to_bytes()
        self._sequence = (self._sequence + 1) % _SEQ_MOD
        self._sent += 1
        return data

    # -- inbound -------------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, address: Address, now: float) -> list[RtpEvent]:
        """Handle one inbound datagram; audio goes to the jitter buffer (:meth:`pop_frames`)."""
        source: Address = (address[0], address[1])
        reclaimed = self._latched and source != self._remote and source == self._signalled
        if self._latched and source != self._remote and not reclaimed:
            return [self._reject(RejectReason.WRONG_SOURCE, source, f"not from {self._remote}")]
        try:
            packet = parse_rtp(data)
        except RtpParseError as error:
            return [self._reject(RejectReason.NOT_RTP, source, str(error))]
        event: RtpEvent
        if packet.payload_type == self._audio_pt:
            self._jitter.push(packet, now)
            event = AudioReceived(packet)
        elif packet.payload_type == self._event_pt:
            self._telephone_events += 1
            event = TelephoneEventReceived(packet, now)
        else:
            return [
                self._reject(
                    RejectReason.UNKNOWN_PAYLOAD_TYPE,
                    source,
                    f"payload type {packet.payload_type} was not negotiated",
                )
            ]
        self._received += 1
        if self._latched and not reclaimed:
            return [event]
        self._latched = True
        self._remote = source
        return [RemoteLatched(source), event]

    def pop_frames(self, now: float) -> list[Frame]:
        """Inbound audio frames due by ``now`` (see :class:`voxflow.rtp.jitter.JitterBuffer`)."""
        return self._jitter.pop(now)

    def pop_payloads(self, now: float) -> list[bytes | None]:
        """The payloads of :meth:`pop_frames` alone (None: lost)."""
        return self._jitter.pop_payloads(now)

    def next_frame_deadline(self) -> float | None:
        """When the next inbound frame is due, or None before any audio arrived."""
        return self._jitter.next_deadline()

    @property
    def stats(self) -> RtpSessionStats:
        """Counters since the session started."""
        return RtpSessionStats(
            sent=self._sent,
            received=self._received,
            telephone_events=self._telephone_events,
            rejected_not_rtp=self._rejected[RejectReason.NOT_RTP],
            rejected_wrong_source=self._rejected[RejectReason.WRONG_SOURCE],
            rejected_unknown_payload_type=self._rejected[RejectReason.UNKNOWN_PAYLOAD_TYPE],
            jitter=self._jitter.stats,
        )

    def _reject(self, reason: RejectReason, source: Address, detail: str) -> PacketRejected:
        self._rejected[reason] += 1
        return PacketRejected(reason, source, detail)
