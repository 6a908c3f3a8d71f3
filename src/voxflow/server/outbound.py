"""Outbound calls: where a number is dialled, the session of a placed call, the API request,
and the audio/key bridge of a transfer that REFER could not do.

The call placing itself is :meth:`voxflow.server.app.VoxflowApp.dial`; this module keeps the
decisions that need no sockets, plus :class:`Bridge`, which only moves frames between two
calls the line already serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from voxflow.errors import VoxflowError
from voxflow.lines.calls import Int16Array, KeyPress
from voxflow.lines.sip import DialOutcome, InboundFrame, LineCall
from voxflow.media.dtmf import DtmfSource
from voxflow.protocol import Direction, Session
from voxflow.server.identity import e164

log = logging.getLogger(__name__)

DEFAULT_FLOW_ID = "default"
_NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")
_SEPARATORS = re.compile(r"[\s\-.()/]")
# A bridged leg's audio waits at most this many frames (100 ms) for the other leg's tick;
# older frames are dropped so the delay between the two parties cannot grow.
_BRIDGE_FRAMES = 5


class NoRouteError(VoxflowError):
    """A number cannot be dialled: no trunk, transfer domain or outbound target is configured."""


def dial_uri(number: str, domain: str | None) -> str:
    """The SIP URI that dials ``number``: a SIP URI as given, else ``sip:NUMBER@DOMAIN``.

    ``domain`` is the trunk (or configured outbound target); without one only SIP URIs work.
    Separators people type (spaces, dashes, brackets) are removed; the ``+`` is kept, because
    trunks route E.164 numbers with it.
    """
    text = number.strip()
    if text.startswith(("sip:", "sips:")):
        return text
    compact = _SEPARATORS.sub("", text.removeprefix("tel:"))
    if not _NUMBER.match(compact):
        raise ValueError(f"{number!r} is not a phone number or SIP URI")
    if not domain:
        raise NoRouteError(f"cannot dial {number!r}: no trunk, transfer_domain or outbound "
                           "target is configured")
    return f"sip:{compact}@{domain}"


def outbound_session(
    *,
    our_number: str,
    dialled: str,
    account_id: str,
    plus: bool = True,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> Session:
    """The ``session`` object of a call we place: from our number to the dialled one."""
    ours = e164(our_number, plus=plus)
    return Session(
        id=new_id(),
        account_id=account_id,
        phone_number=ours,
        direction=Direction.OUTBOUND,
        from_phone_number=ours,
        to_phone_number=e164(dialled.removeprefix("tel:"), plus=plus),
    )


@dataclass(frozen=True, slots=True)
class CallRequest:
    """The body of ``POST /v3/ai-flows/{aiFlowId}/call``."""

    to_phone_number: str
    billing_device: str | None


def parse_call_request(body: Mapping[str, Any]) -> CallRequest:
    """Validate the AI Flow outbound-call body (ValueError names the field)."""
    to = body.get("toPhoneNumber")
    if not isinstance(to, str) or not to.strip():
        raise ValueError('toPhoneNumber: required, a phone number such as "+4921112345"')
    billing = body.get("billingDevice")
    if billing is not None and not isinstance(billing, str):
        raise ValueError("billingDevice: must be a string (e.g. a device id such as \"e0\")")
    return CallRequest(to.strip(), billing)


@dataclass(eq=False)
class OutboundCall:
    """A call being placed; ``outcome`` once it was answered or failed."""

    session: Session
    target_uri: str
    outcome: DialOutcome | None = None
    detail: str = ""
    status: int | None = None
    _settled: asyncio.Event = field(default_factory=asyncio.Event)
    _done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def session_id(self) -> str:
        """The call's session id (also the call record's id)."""
        return self.session.id

    @property
    def done(self) -> bool:
        """Whether the call is over."""
        return self._done.is_set()

    def settle(self, outcome: DialOutcome, detail: str = "", status: int | None = None) -> None:
        """Note how the attempt ended (answered or why not)."""
        self.outcome, self.detail, self.status = outcome, detail, status
        self._settled.set()

    def finish(self) -> None:
        """The call (and its session, when answered) is over."""
        self._done.set()

    async def wait_outcome(self) -> DialOutcome:
        """Wait until the call was answered or failed."""
        await self._settled.wait()
        assert self.outcome is not None
        return self.outcome

    async def wait_done(self) -> None:
        """Wait until the call is over."""
        await self._done.wait()

    def as_json(self) -> dict[str, Any]:
        """What the API reports about the call."""
        return {"sessionId": self.session_id, "toPhoneNumber": self.session.to_phone_number,
                "direction": "outbound", "status": self.outcome.value if self.outcome else
                "dialing", "detail": self.detail}


class Bridge:
    """Two answered calls joined: each one's inbound frames are the other's audio source,
    each one's keys are sent on to the other, and either hanging up ends both."""

    def __init__(self, first: LineCall, second: LineCall) -> None:
        self.calls = (first, second)
        self._to_second: deque[Int16Array] = deque(maxlen=_BRIDGE_FRAMES)
        self._to_first: deque[Int16Array] = deque(maxlen=_BRIDGE_FRAMES)
        self.frames_moved = 0

    def _source(self, queue: deque[Int16Array]) -> Callable[[], Int16Array | None]:
        return lambda: queue.popleft() if queue else None

    def _sink(self, queue: deque[Int16Array]) -> Callable[[InboundFrame], None]:
        def carry(frame: InboundFrame) -> None:
            if not frame.lost:
                # A copy: the frame is a view into the whole tick's batch of frames.
                queue.append(frame.samples.copy())
                self.frames_moved += 1

        return carry

    def forward_key(self, source: LineCall, press: KeyPress) -> None:
        """A key pressed on ``source`` is sent on to the other party.

        In-band keys are not: their tones already travel in the bridged audio, and sending
        them as telephone-events as well would reach a party that detects both twice.
        """
        if press.source is DtmfSource.INBAND:
            return
        other = self.calls[1] if source is self.calls[0] else self.calls[0]
        with contextlib.suppress(VoxflowError):
            other.send_dtmf(press.key)

    async def run(self) -> None:
        """Carry audio until either call ends, then hang up the other one."""
        first, second = self.calls
        first.set_audio_source(self._source(self._to_first))
        second.set_audio_source(self._source(self._to_second))
        # Frames move inside the line's media tick: no task, and no frames() reader taken away.
        first.set_frame_sink(self._sink(self._to_second))
        second.set_frame_sink(self._sink(self._to_first))
        keys = asyncio.create_task(self._keys(second))
        ends = [asyncio.ensure_future(first.wait_ended()),
                asyncio.ensure_future(second.wait_ended())]
        try:
            await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
        finally:
            first.set_frame_sink(None)
            second.set_frame_sink(None)
            first.hangup()
            second.hangup()
            for task in (keys, *ends):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _keys(self, source: LineCall) -> None:
        # The first call's keys are read by its runner, which forwards them (one reader only).
        async for press in source.presses():
            self.forward_key(source, press)
