"""A phone call without a phone: the in-process simulated call the admin dashboard starts.

:class:`SimulatedCall` offers the :class:`voxflow.lines.calls.Call` surface, so the engine runs it
with the same :class:`~voxflow.server.runner.CallRunner` as a SIP call. Keys are injected with
:meth:`SimulatedCall.press` and reach the session by the same path a line's key press takes
(``presses()``); outbound audio is pulled every 20 ms in real time, as the SIP line's media
tick does, so prompts take as long as they would on a phone and a key can cut them.

Decisions: injected keys are reported with source ``stream`` (a key carried as a message, not
as tones; :class:`~voxflow.media.dtmf.DtmfSource` has no member of its own for them); a
transfer succeeds after ``transfer_delay_s`` (there is no far end to refuse it), after which the
engine hangs up as it does once a real transfer is answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import numpy as np

from voxflow.errors import VoxflowError
from voxflow.lines.calls import (
    AudioSource,
    Call,
    CallEnd,
    Int16Array,
    ItemStream,
    KeyPress,
    TransferOutcome,
    audio_source_for,
)
from voxflow.media.dtmf import DtmfSource
from voxflow.rtp.leg import InboundFrame

__all__ = ["SIMULATED_KEYS", "SimulatedCall"]

#: Keys a simulated caller can press (the keypad; A-D are not on a phone's keypad).
SIMULATED_KEYS = frozenset("0123456789*#")
log = logging.getLogger(__name__)
FRAME_S = 0.02
_SILENCE = np.zeros(160, dtype=np.int16)
_numbers = itertools.count(1)


class SimulatedCall:
    """One answered simulated call; must be created inside a running event loop."""

    def __init__(
        self,
        *,
        caller: str | None = "+4930123456",
        callee: str | None = "+4921100000",
        transfer_delay_s: float = 0.2,
    ) -> None:
        self._call_id = f"sim-{next(_numbers)}-{uuid.uuid4().hex[:8]}"
        self._caller = caller
        self._callee = callee
        self._transfer_delay_s = transfer_delay_s
        self._end: CallEnd | None = None
        self._ended = asyncio.Event()
        self._presses: ItemStream[KeyPress] = ItemStream()
        self._frames: list[ItemStream[InboundFrame]] = []
        self._source: AudioSource | None = None
        self.frames_played = 0
        """Outbound frames that carried audio (prompts heard by the simulated caller)."""
        self.keys_sent: list[str] = []
        """Keys the engine sent to the caller (``send_dtmf``)."""
        self.transfers: list[str] = []
        """Targets the engine transferred the call to, in order."""
        self._tick = asyncio.get_running_loop().create_task(
            self._media_tick(), name=f"sim-media-{self._call_id}"
        )

    # -- the Call surface ------------------------------------------------------------------------

    @property
    def call_id(self) -> str:
        """The simulated line's own id for the call (not the session id)."""
        return self._call_id

    @property
    def caller(self) -> str | None:
        """The simulated caller's number."""
        return self._caller

    @property
    def callee(self) -> str | None:
        """The dialled number."""
        return self._callee

    @property
    def end(self) -> CallEnd | None:
        """How the call ended, or None while it is live."""
        return self._end

    async def wait_ended(self) -> CallEnd:
        """Wait until the call is over."""
        await self._ended.wait()
        assert self._end is not None
        return self._end

    def presses(self) -> AsyncIterator[KeyPress]:
        """Injected key presses in order; ends when the call ends. One reader only."""
        return aiter(self._presses)

    def frames(self) -> AsyncIterator[InboundFrame]:
        """Inbound audio: the simulated caller is silent, one frame per 20 ms tick."""
        stream: ItemStream[InboundFrame] = ItemStream(limit=50)
        if self._end is None:
            self._frames.append(stream)
        else:
            stream.close()
        return aiter(stream)

    def set_audio_source(self, source: AudioSource | None) -> None:
        """Pull-based playback: ``source()`` runs every 20 ms."""
        self._source = source

    def play(self, samples: Int16Array) -> None:
        """Play ``samples`` from the next tick, replacing the current source."""
        self._source = audio_source_for(samples)

    def send_dtmf(self, key: str, duration_ms: float = 100.0) -> None:
        """Note a key sent to the caller (nobody listens to tones here)."""
        self.keys_sent.append(key)

    def hangup(self) -> None:
        """End the call from the engine's side; idempotent."""
        self._finish(CallEnd("hangup", "local"))

    async def transfer(self, target: str, max_wait: float = 10.0) -> TransferOutcome:
        """A blind transfer that the simulated far end always answers."""
        if self._end is not None:
            return TransferOutcome(False, None, "the call is over")
        self.transfers.append(target)
        await asyncio.sleep(min(self._transfer_delay_s, max_wait))
        return TransferOutcome(True, 200, "simulated transfer answered")

    # -- the simulated caller ----------------------------------------------------------------------

    def press(self, key: str) -> None:
        """The caller presses ``key``; raises :class:`VoxflowError` for a key not on a keypad."""
        if key not in SIMULATED_KEYS:
            raise VoxflowError(f"key {key!r}: a simulated caller presses one of 0-9, * or #")
        if self._end is not None:
            raise VoxflowError(f"simulated call {self._call_id} is over; no key can be pressed")
        self._presses.put(KeyPress(key, DtmfSource.STREAM, time.monotonic()))

    def caller_hangs_up(self) -> None:
        """The simulated caller hangs up."""
        self._finish(CallEnd("caller hung up", "remote"))

    # -- internals -------------------------------------------------------------------------------

    def _finish(self, end: CallEnd) -> None:
        if self._end is not None:
            return
        self._end = end
        self._presses.close()
        for stream in self._frames:
            stream.close()
        self._tick.cancel()
        self._ended.set()

    async def _media_tick(self) -> None:
        # Paced against the clock, not per sleep, so playback keeps real time under load.
        started = time.monotonic()
        for tick in itertools.count(1):
            source = self._source
            try:
                frame = source() if source is not None else None
            except Exception:  # a broken source must not stop the tick (and the call's timers)
                log.exception("audio source failed on simulated call %s", self._call_id)
                frame = None
            if frame is not None:
                self.frames_played += 1
            for stream in self._frames:
                stream.put(InboundFrame(_SILENCE, lost=False))
            delay = started + tick * FRAME_S - time.monotonic()
            await asyncio.sleep(max(0.0, delay))

    async def aclose(self) -> None:
        """Hang up (if still live) and wait for the media tick to stop."""
        self.hangup()
        with contextlib.suppress(asyncio.CancelledError):
            await self._tick


if TYPE_CHECKING:  # mypy proves the simulated call offers the engine's Call surface

    def _offers_call_surface(call: SimulatedCall) -> Call:
        return call
