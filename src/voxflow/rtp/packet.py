"""RTP fixed header, CSRC list, header extension and padding (RFC 3550 §5.1, §5.3.1).

:func:`parse_rtp` turns a datagram into an :class:`RtpPacket`; :meth:`RtpPacket.to_bytes` does the
reverse. Anything that is not a well-formed RTP version 2 packet raises
:class:`voxflow.errors.RtpParseError`, so a STUN probe, an RTCP packet or line noise on the media
port never gets further than this module.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from voxflow.errors import RtpParseError

RTP_VERSION = 2
FIXED_HEADER_SIZE = 12

_FIXED = struct.Struct("!BBHII")
_EXTENSION_HEAD = struct.Struct("!HH")
# Second byte values 192..223 are RTCP packet types (SR=200 ...) when RTCP shares the port
# (RFC 5761 §4); with the marker bit they alias RTP payload types 64..95.
_RTCP_TYPES = range(192, 224)


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """A header extension: the 16-bit profile word and its data (a multiple of 4 bytes)."""

    profile: int
    data: bytes


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet; ``payload`` excludes header, CSRCs, extension and padding."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    padding: int = 0

    def to_bytes(self) -> bytes:
        """Serialize; raises :class:`RtpParseError` if a field is out of range."""
        self._check_ranges()
        first = RTP_VERSION << 6 | len(self.csrcs)
        if self.padding:
            first |= 0x20
        if self.extension is not None:
            first |= 0x10
        second = self.payload_type | (0x80 if self.marker else 0)
        parts = [_FIXED.pack(first, second, self.sequence, self.timestamp, self.ssrc)]
        parts.extend(struct.pack("!I", csrc) for csrc in self.csrcs)
        if self.extension is not None:
            words = len(self.extension.data) // 4
            parts.append(_EXTENSION_HEAD.pack(self.extension.profile, words))
            parts.append(self.extension.data)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes([self.padding]))
        return b"".join(parts)

    def _check_ranges(self) -> None:
        problems = []
        if not 0 <= self.payload_type <= 127:
            problems.append(f"payload type {self.payload_type} not in 0..127")
        if not 0 <= self.sequence <= 0xFFFF:
            problems.append(f"sequence {self.sequence} not in 0..65535")
        if not 0 <= self.timestamp <= 0xFFFFFFFF:
            problems.append(f"timestamp {self.timestamp} not a 32-bit unsigned value")
        if not 0 <= self.ssrc <= 0xFFFFFFFF:
            problems.append(f"SSRC {self.ssrc} not a 32-bit unsigned value")
        if len(self.csrcs) > 15:
            problems.append(f"{len(self.csrcs)} CSRCs, at most 15 fit the header")
        if any(not 0 <= csrc <= 0xFFFFFFFF for csrc in self.csrcs):
            problems.append("a CSRC is not a 32-bit unsigned value")
        if not 0 <= self.padding <= 255:
            problems.append(f"padding {self.padding} not in 0..255")
        if self.extension is not None and (
            len(self.extension.data) % 4 or not 0 <= self.extension.profile <= 0xFFFF
        ):
            problems.append("extension data must be a multiple of 4 bytes, profile 16 bits")
        if problems:
            raise RtpParseError("cannot build RTP packet: " + "; ".join(problems))


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one datagram as RTP; raises :class:`RtpParseError` naming what was wrong."""
    size = len(data)
    if size < FIXED_HEADER_SIZE:
        raise RtpParseError(f"RTP packet too short: {size} bytes, the fixed header needs 12")
    first, second, sequence, timestamp, ssrc = _FIXED.unpack_from(data)
    if first == 0x80 and second not in _RTCP_TYPES:
        # Version 2 without padding, extension or CSRCs: nearly every audio packet of every
        # call, so it skips the general path's per-field work (same packet).
        return RtpPacket(second & 0x7F, sequence, timestamp, ssrc, bytes(data[12:]),
                         second > 0x7F)
    version = first >> 6
    if version != RTP_VERSION:
        raise RtpParseError(f"not RTP: version {version}, expected 2 (STUN or garbage?)")
    if second in _RTCP_TYPES:
        raise RtpParseError(f"not RTP: second byte {second} is an RTCP packet type")
    offset = FIXED_HEADER_SIZE
    csrc_count = first & 0x0F
    csrc_end = offset + 4 * csrc_count
    if csrc_end > size:
        raise RtpParseError(
            f"RTP packet truncated: {csrc_count} CSRCs need {csrc_end} bytes, got {size}"
        )
    csrcs = struct.unpack_from(f"!{csrc_count}I", data, offset)
    offset = csrc_end
    extension = None
    if first & 0x10:
        if offset + 4 > size:
            raise RtpParseError(f"RTP packet truncated: extension header missing at byte {offset}")
        profile, words = _EXTENSION_HEAD.unpack_from(data, offset)
        ext_end = offset + 4 + 4 * words
        if ext_end > size:
            raise RtpParseError(
                f"RTP packet truncated: extension of {words} words needs {ext_end} bytes,"
                f" got {size}"
            )
        extension = RtpExtension(profile, bytes(data[offset + 4 : ext_end]))
        offset = ext_end
    end = size
    padding = 0
    if first & 0x20:
        padding = data[-1]
        if padding == 0 or offset + padding > size:
            raise RtpParseError(
                f"RTP padding count {padding} invalid for {size - offset} bytes after the header"
            )
        end = size - padding
    return RtpPacket(
        payload_type=second & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=bytes(data[offset:end]),
        marker=bool(second & 0x80),
        csrcs=tuple(csrcs),
        extension=extension,
        padding=padding,
    )
