"""What every DTMF source reports, and what the per-call arbiter hands to the engine.

All three transports (RFC 4733 telephone-events, SIP INFO, in-band tones) report presses with the
same two dataclasses, so the arbiter and the engine never care where a press came from except to
record it. Times are in milliseconds on the caller's clock (``now`` passed into the sans-IO cores).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class DtmfSource(enum.StrEnum):
    """How a key press travelled."""

    RFC4733 = "rfc4733"
    SIP_INFO = "sip_info"
    INBAND = "inband"
    STREAM = "stream"  # a media-stream WebSocket's own dtmf message


@dataclass(frozen=True, slots=True)
class KeyDown:
    """A key press has started (emitted once per press, as soon as it is known).

    ``at_ms`` is when the press was recognised; ``onset_ms`` is the best estimate of when the
    tone/press actually began (equal to ``at_ms`` when the source cannot tell).
    """

    key: str
    source: DtmfSource
    at_ms: float
    onset_ms: float


@dataclass(frozen=True, slots=True)
class KeyUp:
    """A key press has ended; ``duration_ms`` is its length when the source knows it."""

    key: str
    source: DtmfSource
    at_ms: float
    duration_ms: float | None
