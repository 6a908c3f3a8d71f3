"""An in-process phone line for tests: one call offering the engine's
:class:`~voxflow.lines.calls.Call` surface, with no sockets.

Keys are handed to the engine directly (with the source the test names); the engine's audio
is pulled from its source every 20 ms, ``speed`` frames at a time (so prompts can play faster
than real time), and kept for inspection; the caller's audio is offered as inbound frames.
A transfer is recorded and answered with the outcome the test chose.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable

import numpy as np

from voxflow.errors import SipStateError
from voxflow.lines.calls import (
    AudioSource,
    CallEnd,
    CallStreams,
    Int16Array,
    ItemStream,
    KeyPress,
    TransferOutcome,
    audio_source_for,
)
from voxflow.media.dtmf import DtmfSource
from voxflow.rtp.leg import FRAME_SAMPLES, InboundFrame

log = logging.getLogger(__name__)

__all__ = ["SimLineCall"]

_TICK = 0.02
LineHook = Callable[[str, dict[str, str]], None]
"""Told what the engine did to the call: ``("hangup", {})``, ``("transfer", {"uri": …})``,
``("dtmf_out", {"key": …})``."""


class SimLineCall(CallStreams):
    """One simulated, already answered call; see the module docstring."""

    def __init__(
        self,
        *,
        caller: str | None = "+4930123456",
        callee: str | None = "+49211555",
        accept_transfer: bool = True,
        speed: float = 1.0,
        on_line: LineHook | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        super().__init__()
        self.call_id = f"sim-{uuid.uuid4().hex[:12]}"
        self.caller = caller
        self.callee = callee
        self.asserted_identity: str | None = None
        self.remote_address = ("127.0.0.1", 5060)
        self.accept_transfer = accept_transfer
        self.speed = speed
        self.played: list[Int16Array] = []
        self.transfers: list[str] = []
        self._on_line = on_line
        self._voice: list[Int16Array] = []
        self._source: AudioSource | None = None
        self._ticker = asyncio.get_running_loop().create_task(self._tick_loop(),
                                                               name=f"simline-{self.call_id}")
        self._credit = 0.0

    # -- the Call surface the engine drives -----------------------------------------------------

    def frames(self) -> AsyncIterator[InboundFrame]:
        """The caller's audio as 20 ms frames (silence between utterances is not sent)."""
        if self._frames is None:
            self._frames = ItemStream(250)
        return self._frames.__aiter__()

    def set_audio_source(self, source: AudioSource | None) -> None:
        """Pull-based playback, as on the real lines."""
        self._source = source

    def play(self, samples: Int16Array) -> None:
        """Play ``samples`` from the next tick, replacing the current source."""
        self._source = audio_source_for(samples)

    def send_dtmf(self, key: str, duration_ms: float = 100.0) -> None:
        """Noted: the simulated caller has no ears for keys."""
        self._tell("dtmf_out", key=key)

    def hangup(self) -> None:
        """The engine ends the call; idempotent."""
        if not self._ended.done():
            self._tell("hangup")
            self._finish(CallEnd("hangup", "local"))

    async def transfer(self, target: str, max_wait: float = 10.0) -> TransferOutcome:
        """Record the transfer and answer it as the test chose (at once)."""
        if self._ended.done():
            return TransferOutcome(False, None, "call ended")
        self.transfers.append(target)
        self._tell("transfer", uri=target, accepted=str(self.accept_transfer).lower())
        if self.accept_transfer:
            return TransferOutcome(True, 200, "OK")
        return TransferOutcome(False, 603, "Declined")

    # -- what the test (the caller) does -------------------------------------------------------

    def press(self, key: str, source: DtmfSource) -> None:
        """The caller presses ``key``; it reaches the engine as coming by ``source``."""
        if self._ended.done():
            raise SipStateError(f"call {self.call_id} is over; cannot press {key!r}")
        self._presses.put(KeyPress(key, source, time.monotonic()))

    def speak(self, samples: Int16Array) -> None:
        """The caller's voice (8 kHz int16), offered to frame readers 20 ms at a time."""
        audio = np.asarray(samples, dtype=np.int16).ravel()
        padded = np.zeros(-(-audio.size // FRAME_SAMPLES) * FRAME_SAMPLES, dtype=np.int16)
        padded[: audio.size] = audio
        self._voice.extend(padded.reshape(-1, FRAME_SAMPLES))

    def caller_hangup(self) -> None:
        """The caller ends the call."""
        self._finish(CallEnd("caller hung up", "remote"))

    async def close(self) -> None:
        """Stop the ticker (and end the call if it is still live)."""
        self._finish(CallEnd("line closed", "local"))
        self._ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._ticker

    # -- internals -----------------------------------------------------------------------------

    def _tell(self, what: str, **detail: str) -> None:
        if self._on_line is not None:
            self._on_line(what, detail)

    def _finish(self, end: CallEnd) -> None:
        self._close_streams(end)

    async def _tick_loop(self) -> None:
        deadline = time.monotonic()
        while not self._ended.done():
            deadline += _TICK
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            self._credit += self.speed
            while self._credit >= 1 and not self._ended.done():
                self._credit -= 1
                self._tick()

    def _tick(self) -> None:
        if self._voice and self._frames is not None:
            self._frames.put(InboundFrame(self._voice.pop(0), False))
        elif self._voice:
            self._voice.pop(0)
        source = self._source
        if source is None:
            return
        try:
            frame = source()
        except Exception:  # like the real lines: a failing source is dropped, the call goes on
            log.exception("%s: audio source failed; continuing without it", self.call_id)
            self._source = None
            return
        if frame is not None:
            self.played.append(np.asarray(frame, dtype=np.int16))
