"""What every line hands the engine: the :class:`Call` surface and the small types it uses.

The SIP line (:class:`voxflow.lines.sip.LineCall`) and the media-stream line
(:class:`voxflow.lines.stream.StreamCall`) both offer exactly this surface, so the engine runs
either kind of call with the same code. mypy checks that both conform (see the end of this
module).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt

from voxflow.media.dtmf import DtmfSource
from voxflow.rtp.leg import InboundFrame

__all__ = [
    "AudioSource",
    "Call",
    "CallEnd",
    "CallStreams",
    "Int16Array",
    "ItemStream",
    "KeyPress",
    "TransferOutcome",
    "audio_source_for",
]

T = TypeVar("T")
Int16Array = npt.NDArray[np.int16]
AudioSource = Callable[[], "Int16Array | None"]
"""Called once per 20 ms tick: 160 int16 samples (8 kHz) to send, or None for silence."""


@dataclass(frozen=True, slots=True)
class KeyPress:
    """One key press, reported once whatever path(s) it came by; ``at`` is monotonic seconds."""

    key: str
    source: DtmfSource
    at: float


@dataclass(frozen=True, slots=True)
class CallEnd:
    """Why a call ended: ``by`` is ``local``, ``remote`` or ``timeout``."""

    reason: str
    by: str
    status: int | None = None


@dataclass(frozen=True, slots=True)
class TransferOutcome:
    """Result of a blind transfer; on failure the engine may bridge with an INVITE instead."""

    success: bool
    status: int | None
    reason: str


def audio_source_for(samples: Int16Array, frame_samples: int = 160) -> AudioSource:
    """An :data:`AudioSource` that plays ``samples`` once (the last frame zero-padded)."""
    audio = np.asarray(samples, dtype=np.int16).ravel()
    padded = np.zeros(-(-audio.size // frame_samples) * frame_samples, dtype=np.int16)
    padded[: audio.size] = audio
    chunks = deque(padded.reshape(-1, frame_samples))
    return lambda: chunks.popleft() if chunks else None


class ItemStream(Generic[T]):
    """A single-reader async stream; ``limit`` drops the oldest items for a slow reader."""

    def __init__(self, limit: int | None = None) -> None:
        self._items: deque[T] = deque(maxlen=limit)
        self._wakeup = asyncio.Event()
        self._closed = False
        self.dropped = 0

    def put(self, item: T) -> None:
        if self._closed:
            return
        if self._items.maxlen is not None and len(self._items) == self._items.maxlen:
            self.dropped += 1
        self._items.append(item)
        self._wakeup.set()

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    async def __aiter__(self) -> AsyncIterator[T]:
        while True:
            while self._items:
                yield self._items.popleft()
            if self._closed:
                return
            self._wakeup.clear()
            await self._wakeup.wait()


@runtime_checkable
class Call(Protocol):
    """One answered phone call as the engine drives it, whatever line carries it."""

    @property
    def call_id(self) -> str:
        """The line's identifier of the call (SIP Call-ID, the stream's call id)."""

    @property
    def caller(self) -> str | None:
        """The caller's number, when the line knows it."""

    @property
    def callee(self) -> str | None:
        """The dialled number, when the line knows it."""

    @property
    def end(self) -> CallEnd | None:
        """How the call ended, or None while it is live."""

    async def wait_ended(self) -> CallEnd:
        """Wait until the call is over."""

    def presses(self) -> AsyncIterator[KeyPress]:
        """Key presses in order, each once; ends when the call ends. One reader only."""

    def frames(self) -> AsyncIterator[InboundFrame]:
        """Decoded inbound 20 ms frames (8 kHz int16) from now on; ends with the call."""

    def set_audio_source(self, source: AudioSource | None) -> None:
        """Pull-based playback: ``source()`` runs each 20 ms and returns 160 samples or None."""

    def play(self, samples: Int16Array) -> None:
        """Play ``samples`` (8 kHz int16) from the next tick, replacing the current source."""

    def send_dtmf(self, key: str, duration_ms: float = 100.0) -> None:
        """Send a key to the caller (a line that cannot raises a ``VoxflowError`` saying so)."""

    def hangup(self) -> None:
        """End the call; idempotent."""

    async def transfer(self, target: str, max_wait: float = 10.0) -> TransferOutcome:
        """Blind transfer; a line that cannot transfer returns a failed outcome saying why."""


if TYPE_CHECKING:  # mypy proves both lines' calls offer the Call surface
    from voxflow.lines.sip import LineCall
    from voxflow.lines.stream import StreamCall

    def _both_lines_offer_calls(sip: LineCall, stream: StreamCall) -> tuple[Call, Call]:
        return sip, stream


class CallStreams:
    """What every line's call shares: its key presses, inbound frames, and how it ended."""

    def __init__(self) -> None:
        self._presses: ItemStream[KeyPress] = ItemStream()
        self._frames: ItemStream[InboundFrame] | None = None  # made when a reader asks
        self._ended: asyncio.Future[CallEnd] = asyncio.get_running_loop().create_future()

    @property
    def end(self) -> CallEnd | None:
        """How the call ended, or None while it is live."""
        return self._ended.result() if self._ended.done() else None

    async def wait_ended(self) -> CallEnd:
        """Wait until the call is over."""
        return await asyncio.shield(self._ended)

    def presses(self) -> AsyncIterator[KeyPress]:
        """Key presses in order (each press once); ends when the call ends. One reader only."""
        return self._presses.__aiter__()

    def _close_streams(self, end: CallEnd) -> None:
        """Settle how the call ended (the first report wins) and end both streams."""
        if not self._ended.done():
            self._ended.set_result(end)
        self._presses.close()
        if self._frames is not None:
            self._frames.close()

