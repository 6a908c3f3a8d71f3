"""The media-stream line: calls bridged over a Media Streams WebSocket, as :class:`StreamCall`.

Carriers and SIP-to-WebSocket bridges open one WebSocket per call and speak the Media Streams
protocol (:mod:`voxflow.lines.stream_protocol`). :class:`StreamLine` is a Starlette WebSocket
endpoint (``line.route("/media-stream")`` to mount it, ``line.asgi_app()`` for a whole app);
each stream that starts becomes a :class:`StreamCall` with the same surface as the SIP line's
:class:`~voxflow.lines.sip.LineCall` (see :class:`voxflow.lines.calls.Call`). Caller and callee
come from the ``start`` message's ``customParameters`` (``from``/``caller``, ``to``/``callee``).

One media task serves all calls (started with the first call, ending with the last), paced
every 20 ms from ``time.monotonic()`` deadlines like the SIP line's:

Keys
    Each call has one :class:`~voxflow.media.dtmf.DtmfArbiter`. The stream's ``dtmf`` messages
    (``DtmfSource.STREAM``) and in-band detection on the caller's audio (one
    :class:`~voxflow.media.dtmf.BatchDtmfDetector` slot per call) both go through it, in stream
    order: a ``dtmf`` message is judged after the audio that came before it. A press reported
    both ways is one press. As with RFC 4733, once a call has reported any key by message, its
    in-band detection is ignored from then on. In-band keys that are the echo of a DTMF tone
    pair we sent are dropped (:class:`~voxflow.rtp.echo_guard.OutboundToneGuard`).
Inbound audio
    WebSocket audio arrives in bursts (TCP), not on our clock. Frames are queued per call and
    each tick runs the detector over what arrived (at most 5 frames per call and tick, so a
    backlog is caught up at 5x real time; beyond 5 s queued the oldest frames are dropped).
    Rounds in which a call has no frame give it a frame flagged lost, which the detector
    treats as neither tone nor silence.
Outbound audio, paced at real time
    Each tick pulls one 20 ms frame from the call's audio source and sends it at once (grouped
    into ``media`` messages of ``outbound_chunk_ms``). The bridge would also accept audio faster
    than real time and buffer it, but then the engine's idea of what is playing would run ahead
    of the caller's ear, and every cut would depend on ``clear``. Paced, the bridge holds about
    one chunk: when the source stops, the caller hears the end within a chunk plus network delay.
    When the source returns None nothing is sent (``send_silence`` sends encoded silence
    instead, for bridges that want a continuous stream).
Playback cut (barge-in)
    To drop even that last buffered audio, call :meth:`StreamCall.stop_playback`: it discards
    our queued ``media`` messages and sends ``clear``. With ``clear_on_source_stop`` the line
    does this by itself whenever the audio source returns None right after audio, for engines
    that signal a cut only that way; the price is that the natural end of a prompt is clipped
    by up to one chunk still in the bridge's buffer.
Ending
    ``stop`` from the bridge or the socket closing ends the call (``by="remote"``);
    :meth:`StreamCall.hangup` ends it and closes the socket (``by="local"``). A media stream
    cannot transfer or send DTMF: :meth:`StreamCall.transfer` returns a failed outcome and
    :meth:`StreamCall.send_dtmf` raises :class:`~voxflow.lines.stream_protocol.StreamError`.

Malformed messages are logged and ignored; exceptions from the engine's hooks and audio
sources are logged; neither ends the line or another call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import inspect
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.types import Message
from starlette.websockets import WebSocket

from voxflow.errors import ConfigError
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
from voxflow.lines.stream_protocol import (
    FRAME_SAMPLES,
    MediaStreamConnection,
    StreamAudio,
    StreamDtmf,
    StreamError,
    StreamEvent,
    StreamMark,
    StreamRefused,
    StreamRejected,
    StreamStarted,
    StreamStopped,
)
from voxflow.media.dtmf import BatchDtmfDetector, DtmfArbiter, DtmfPress, DtmfSource, KeyDown, KeyUp
from voxflow.rtp.echo_guard import OutboundToneGuard
from voxflow.rtp.leg import InboundFrame, LegSettings
from voxflow.rtp.pacer import Pacer

log = logging.getLogger(__name__)

__all__ = ["StreamCall", "StreamCallPolicy", "StreamLine", "StreamLineConfig"]

_TICK: Final = 0.02
_FRAME_MS: Final = 20.0
_FRAME_BUFFER: Final = 250  # inbound frames kept for a slow frames() reader (5 s)
_MAX_QUEUED_FRAMES: Final = 250  # inbound frames waiting for the tick (5 s)
_MAX_ROUNDS: Final = 5  # frames per call and tick: a backlog drains at 5x real time
_OUTBOX_LIMIT: Final = 500  # queued outbound messages before the oldest media is dropped
_SILENCE: Final = np.zeros(FRAME_SAMPLES, dtype=np.int16)
_CALLER_KEYS: Final = ("from", "caller")
_CALLEE_KEYS: Final = ("to", "callee")
_CLOSE_NORMAL: Final = 1000
_CLOSE_UNSUPPORTED: Final = 1003
_CLOSE_POLICY: Final = 1008

StreamCallPolicy = Callable[["StreamCall"], "bool | int | Awaitable[bool | int]"]
"""Decides on a new stream: True takes the call; False or an int (a status, for the log)
refuses it and closes the socket (code 1008)."""


@dataclass(frozen=True, slots=True)
class StreamLineConfig:
    """Tunables of the media-stream line; DTMF ones are shared with the SIP line's legs."""

    dtmf: LegSettings = field(default_factory=LegSettings)
    detect_inband: bool = True
    hold_inband_for_stream_dtmf: bool = False
    """Hold in-band presses ``dtmf.inband_hold_ms`` for a ``dtmf`` message of the same key.
    Not needed for de-duplication (a late twin is absorbed anyway); adds latency."""
    outbound_chunk_ms: int = 20
    send_silence: bool = False
    clear_on_source_stop: bool = False
    start_timeout_s: float = 10.0
    reorder_depth: int = 32
    max_gap_ms: int = 1000
    token: str | None = None
    """When set, a stream is taken only if the bridge proves it: header ``X-API-TOKEN`` on the
    upgrade, or a ``token`` custom parameter in its start message (Twilio's ``<Parameter>``,
    since its stream URLs carry no query string). Anything else is closed with 1008."""

    def __post_init__(self) -> None:
        if self.start_timeout_s <= 0:
            raise ConfigError(f"start_timeout_s must be positive, got {self.start_timeout_s}")
        self.connection()  # validates the protocol settings

    def connection(self) -> MediaStreamConnection:
        """A fresh protocol state machine with these settings."""
        return MediaStreamConnection(
            outbound_chunk_ms=self.outbound_chunk_ms,
            reorder_depth=self.reorder_depth,
            max_gap_ms=self.max_gap_ms,
        )


@dataclass(frozen=True, slots=True)
class _Close:
    code: int
    reason: str


class _Outbox:
    """Messages for one socket, written by its writer task; the tick never awaits a socket."""

    def __init__(self) -> None:
        self._items: deque[tuple[bool, str]] = deque()  # (is media, text)
        self._wakeup = asyncio.Event()
        self.closing: _Close | None = None
        self.dropped = 0

    def send(self, texts: list[str], *, media: bool = False) -> None:
        if self.closing is not None:
            return
        for text in texts:
            self._items.append((media, text))
        if len(self._items) > _OUTBOX_LIMIT:
            self.drop_media(len(self._items) - _OUTBOX_LIMIT)
        self._wakeup.set()

    def drop_media(self, count: int | None = None) -> int:
        """Forget up to ``count`` (default: all) queued media messages, oldest first."""
        kept: deque[tuple[bool, str]] = deque()
        dropped = 0
        for media, text in self._items:
            if media and (count is None or dropped < count):
                dropped += 1
            else:
                kept.append((media, text))
        self._items = kept
        self.dropped += dropped
        return dropped

    def close(self, code: int, reason: str) -> None:
        if self.closing is None:
            self.closing = _Close(code, reason)
            self._wakeup.set()

    async def write_to(self, websocket: WebSocket) -> None:
        while True:
            while self._items:
                await websocket.send_text(self._items.popleft()[1])
            if self.closing is not None:
                await websocket.close(self.closing.code, self.closing.reason)
                return
            self._wakeup.clear()
            await self._wakeup.wait()


@dataclass(slots=True)
class _Batch:
    """What one call's queue gave this tick: frames, and dtmf digits before each frame."""

    frames: list[InboundFrame]
    digits: list[list[str]]  # digits[i] came before frames[i]; the last list after them all


class StreamCall(CallStreams):
    """One call on the media-stream line, as the engine sees it."""

    def __init__(
        self,
        line: StreamLine,
        started: StreamStarted,
        connection: MediaStreamConnection,
        outbox: _Outbox,
    ) -> None:
        super().__init__()
        self._line = line
        self.stream_sid = started.stream_sid
        self.call_id = started.call_sid or started.stream_sid
        self.account_sid = started.account_sid
        self.parameters = started.custom_parameters
        self.caller = _parameter(started.custom_parameters, _CALLER_KEYS)
        self.callee = _parameter(started.custom_parameters, _CALLEE_KEYS)
        self._connection = connection
        self._outbox = outbox
        settings = line.config.dtmf
        self._arbiter = DtmfArbiter(
            telephone_event_negotiated=line.config.hold_inband_for_stream_dtmf,
            inband_hold_ms=settings.inband_hold_ms,
            duplicate_window_ms=settings.duplicate_window_ms,
            allow_abcd=settings.allow_abcd,
        )
        self._echo_guard = OutboundToneGuard(tail_ms=settings.echo_tail_ms)
        self._echo_keys: set[str] = set()
        self._inbound: deque[InboundFrame | str] = deque()
        self._queued_frames = 0
        self._source: AudioSource | None = None
        self._playing = False
        self._marks: dict[str, asyncio.Event] = {}
        self.slot: int | None = None
        self.key_log: list[KeyPress] = []
        self.dropped_frames = 0
        self.echo_suppressed = 0

    def __repr__(self) -> str:
        return f"<StreamCall {self.call_id} from {self.caller} to {self.callee}>"

    # -- what the call delivers -----------------------------------------------------------------

    def frames(self) -> AsyncIterator[InboundFrame]:
        """Decoded inbound 20 ms frames (8 kHz int16, ``lost`` for missing chunks) from now on,
        as they arrive; ends with the call. A reader more than 5 s behind loses the oldest."""
        if self._frames is None:
            self._frames = ItemStream(_FRAME_BUFFER)
        return self._frames.__aiter__()

    @property
    def stats(self) -> dict[str, int]:
        """Counters of the stream (protocol) and of this call's media."""
        protocol = self._connection.stats
        return {
            "messages": protocol.messages,
            "rejected": protocol.rejected,
            "duplicates": protocol.duplicates,
            "lost_frames": protocol.lost_frames,
            "sent_messages": protocol.sent_messages,
            "dropped_frames": self.dropped_frames,
            "dropped_outbound": self._outbox.dropped,
            "echo_suppressed": self.echo_suppressed,
        }

    # -- what the call accepts ------------------------------------------------------------------

    def set_audio_source(self, source: AudioSource | None) -> None:
        """Pull-based playback: ``source()`` runs each 20 ms and returns 160 samples or None."""
        self._source = source

    def play(self, samples: Int16Array) -> None:
        """Play ``samples`` (8 kHz int16) from the next tick, replacing the current source."""
        self.set_audio_source(audio_source_for(samples, FRAME_SAMPLES))

    def stop_playback(self) -> None:
        """The engine cut playback (barge-in): drop audio queued for the bridge and send
        ``clear`` so the bridge drops what it buffered. The audio source stays; whatever it
        returns from the next tick on is played."""
        if self.end is not None:
            return
        self._outbox.drop_media()
        self._outbox.send([self._connection.clear()])
        self._playing = False

    def send_mark(self, name: str) -> None:
        """Send a ``mark`` after the audio sent so far; :meth:`wait_mark` learns when it played."""
        if self.end is not None:
            raise StreamError(f"call {self.call_id} has ended; no mark sent")
        self._marks.setdefault(name, asyncio.Event())
        self._outbox.send(self._connection.mark(name))

    async def wait_mark(self, name: str, max_wait: float | None = None) -> None:
        """Wait until the bridge returns mark ``name`` (TimeoutError after ``max_wait`` s)."""
        await asyncio.wait_for(self._marks.setdefault(name, asyncio.Event()).wait(), max_wait)

    def send_dtmf(self, key: str, duration_ms: float = 100.0) -> None:
        """Not possible: the Media Streams protocol has no way to send DTMF to the caller."""
        raise StreamError(
            f"call {self.call_id}: sending DTMF ({key!r}) is not supported on media streams; "
            "the protocol has no outbound dtmf message"
        )

    def hangup(self) -> None:
        """End the call and close its WebSocket; idempotent."""
        self._line._release(self, CallEnd("hung up", "local"), _CLOSE_NORMAL)

    async def transfer(self, target: str, max_wait: float = 10.0) -> TransferOutcome:
        """Always fails: a media stream carries audio only and has no call control."""
        return TransferOutcome(
            False,
            None,
            f"a media stream cannot transfer (to {target!r}): transfer the call at the "
            "bridge or carrier instead",
        )

    # -- fed by the line ------------------------------------------------------------------------

    def _queue(self, item: InboundFrame | str) -> None:
        if isinstance(item, InboundFrame):
            if self._queued_frames >= _MAX_QUEUED_FRAMES:
                self._drop_oldest_frame()
            self._queued_frames += 1
        self._inbound.append(item)

    def _drop_oldest_frame(self) -> None:
        for index, item in enumerate(self._inbound):
            if isinstance(item, InboundFrame):
                del self._inbound[index]
                self._queued_frames -= 1
                self.dropped_frames += 1
                if self.dropped_frames == 1:
                    log.warning("stream call %s: audio arrives faster than real time; "
                                "oldest frames dropped", self.call_id)
                return

    def _take_batch(self, max_frames: int) -> _Batch:
        batch = _Batch([], [[]])
        while self._inbound:
            item = self._inbound[0]
            if isinstance(item, str):
                batch.digits[-1].append(item)
            elif len(batch.frames) < max_frames:
                batch.frames.append(item)
                batch.digits.append([])
                self._queued_frames -= 1
            else:
                break
            self._inbound.popleft()
        return batch

    def _feed_digits(self, digits: list[str], now: float) -> None:
        now_ms = now * 1000
        for digit in digits:
            self._accept(self._arbiter.feed(KeyDown(digit, DtmfSource.STREAM, now_ms, now_ms),
                                            now_ms))
            # A dtmf message is a whole press; its end opens the window for an in-band twin.
            self._accept(self._arbiter.feed(KeyUp(digit, DtmfSource.STREAM, now_ms, None),
                                            now_ms))

    def _feed_inband(self, events: list[KeyDown | KeyUp], now: float) -> None:
        for event in events:
            if isinstance(event, KeyDown) and self._echo_guard.is_echo(
                event.key, event.onset_ms, event.at_ms
            ):
                self._echo_keys.add(event.key)
                self.echo_suppressed += 1
                log.info("stream call %s: in-band %r ignored: echo of our own audio",
                         self.call_id, event.key)
            elif isinstance(event, KeyUp) and event.key in self._echo_keys:
                self._echo_keys.discard(event.key)
            else:
                self._accept(self._arbiter.feed(event, now * 1000))

    def _accept(self, presses: list[DtmfPress]) -> None:
        for press in presses:
            key_press = KeyPress(press.key, press.source, press.at_ms / 1000)
            log.info("stream call %s: key %s via %s", self.call_id, press.key, press.source)
            self.key_log.append(key_press)
            self._presses.put(key_press)

    def _deliver_frame(self, frame: InboundFrame) -> None:
        if self._frames is not None:
            self._frames.put(frame)

    def _mark_played(self, name: str) -> None:
        self._marks.setdefault(name, asyncio.Event()).set()

    def _media_tick(self, now: float) -> None:
        self._accept(self._arbiter.poll(now * 1000))
        samples = self._next_frame()
        config = self._line.config
        connection = self._connection
        if samples is not None:
            self._echo_guard.record(samples, now * 1000)
            self._playing = True
            self._outbox.send(connection.send_audio(samples), media=True)
            return
        if self._playing:
            self._playing = False
            if config.clear_on_source_stop:
                self.stop_playback()
            else:
                self._outbox.send(connection.flush(), media=True)
        if config.send_silence:
            self._outbox.send(connection.send_audio(_SILENCE), media=True)

    def _next_frame(self) -> Int16Array | None:
        source = self._source
        if source is None:
            return None
        try:
            frame = source()
        except Exception:  # the engine's source must not stop this call's media or others'
            log.exception("stream call %s: audio source failed; continuing without it",
                          self.call_id)
            self._source = None
            return None
        if frame is None:
            return None
        samples = np.asarray(frame)
        if samples.shape != (FRAME_SAMPLES,):
            log.warning("stream call %s: audio frame of shape %s dropped", self.call_id,
                        samples.shape)
            return None
        return samples.astype(np.int16, copy=False)

    def _finish(self, end: CallEnd) -> None:
        self._close_streams(end)


def _parameter(parameters: dict[str, str], names: tuple[str, ...]) -> str | None:
    lowered = {key.lower(): value for key, value in parameters.items()}
    return next((lowered[name] for name in names if lowered.get(name)), None)


class StreamLine:
    """Media Streams WebSocket line; see the module docstring.

    ``policy`` decides on each stream once it has started (default: take every call); taken
    calls are also handed out by :meth:`next_call`.
    """

    def __init__(
        self, config: StreamLineConfig | None = None, policy: StreamCallPolicy | None = None
    ) -> None:
        self.config = config if config is not None else StreamLineConfig()
        self.policy = policy
        self._calls: dict[str, StreamCall] = {}
        self._outboxes: set[_Outbox] = set()
        self._detector = BatchDtmfDetector(0)
        self._ticker: asyncio.Task[None] | None = None
        self._answered: ItemStream[StreamCall] = ItemStream()
        self._stopped = False
        self.late_ticks = 0
        self.rejected_messages = 0

    # -- mounting -------------------------------------------------------------------------------

    def route(self, path: str = "/media-stream") -> WebSocketRoute:
        """The WebSocket route, to mount in the engine's Starlette app."""
        return WebSocketRoute(path, self.serve)

    def asgi_app(self, path: str = "/media-stream") -> Starlette:
        """A Starlette app serving only this line at ``path``."""
        return Starlette(routes=[self.route(path)])

    # -- calls ----------------------------------------------------------------------------------

    @property
    def calls(self) -> list[StreamCall]:
        """Live calls."""
        return list(self._calls.values())

    async def next_call(self, max_wait: float | None = None) -> StreamCall:
        """The next call taken (TimeoutError after ``max_wait`` seconds)."""

        async def first() -> StreamCall:
            async for call in self._answered:
                return call
            raise StreamError("media-stream line stopped")

        return await asyncio.wait_for(first(), max_wait)

    async def stop(self) -> None:
        """Hang up live calls, close every open stream socket and stop the media tick."""
        self._stopped = True
        for call in list(self._calls.values()):
            call.hangup()
        for outbox in list(self._outboxes):
            outbox.close(_CLOSE_NORMAL, "line stopped")
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        self._answered.close()

    # -- one WebSocket --------------------------------------------------------------------------

    async def serve(self, websocket: WebSocket) -> None:
        """The ASGI WebSocket endpoint: one stream, from accept to close."""
        await websocket.accept()
        offered_token = websocket.headers.get("x-api-token")
        peer = f"{websocket.client.host}:{websocket.client.port}" if websocket.client else "?"
        outbox = _Outbox()
        self._outboxes.add(outbox)
        writer = asyncio.create_task(self._write(outbox, websocket, peer))
        connection = self.config.connection()
        call: StreamCall | None = None
        end = CallEnd("socket closed by the bridge", "remote")
        if self._stopped:
            outbox.close(_CLOSE_NORMAL, "line stopped")
        try:
            while outbox.closing is None:
                message = await self._receive(websocket, call is None)
                if message is None:
                    log.warning("stream from %s: no start within %s s; closing", peer,
                                self.config.start_timeout_s)
                    outbox.close(_CLOSE_POLICY, "no start message")
                    break
                if message["type"] == "websocket.disconnect":
                    end = CallEnd(f"socket closed by the bridge (code {message.get('code')})",
                                  "remote")
                    break
                data = message.get("text")
                if data is None:
                    data = message.get("bytes")
                if data is None:
                    continue
                for event in connection.receive(data):
                    call = await self._on_event(event, call, connection, outbox, peer,
                                                offered_token)
                if connection.stopped:
                    end = CallEnd("stream stopped by the bridge", "remote")
                    outbox.close(_CLOSE_NORMAL, "stream stopped")
        finally:
            if call is not None:
                self._release(call, end, _CLOSE_NORMAL)
            outbox.close(_CLOSE_NORMAL, "call ended")
            self._outboxes.discard(outbox)
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def _receive(self, websocket: WebSocket, awaiting_start: bool) -> Message | None:
        if not awaiting_start:
            return await websocket.receive()
        try:
            return await asyncio.wait_for(websocket.receive(), self.config.start_timeout_s)
        except TimeoutError:
            return None

    @staticmethod
    async def _write(outbox: _Outbox, websocket: WebSocket, peer: str) -> None:
        try:
            await outbox.write_to(websocket)
        except Exception as error:  # the bridge went away mid-send; the reader ends the call
            log.debug("stream to %s: socket write ended: %r", peer, error)

    async def _on_event(
        self,
        event: StreamEvent,
        call: StreamCall | None,
        connection: MediaStreamConnection,
        outbox: _Outbox,
        peer: str,
        offered_token: str | None,
    ) -> StreamCall | None:
        label = call.call_id if call is not None else f"from {peer}"
        if isinstance(event, StreamAudio):
            if call is not None:
                call._queue(InboundFrame(event.samples, event.lost))
        elif isinstance(event, StreamDtmf):
            if call is not None:
                call._queue(event.digit)
        elif isinstance(event, StreamMark):
            if call is not None:
                call._mark_played(event.name)
        elif isinstance(event, StreamStarted):
            if not self._authorised(event, offered_token):
                log.warning("stream from %s refused: missing or wrong token", peer)
                outbox.close(_CLOSE_POLICY, "unauthorised")
                return None
            return await self._admit(event, connection, outbox)
        elif isinstance(event, StreamRejected):
            self.rejected_messages += 1
            log.warning("stream %s: message ignored: %s", label, event.reason)
        elif isinstance(event, StreamRefused):
            log.warning("stream %s refused: %s", label, event.reason)
            outbox.close(_CLOSE_UNSUPPORTED, event.reason[:120])
        elif isinstance(event, StreamStopped):
            log.info("stream %s: stop received", label)
        return call

    async def _admit(
        self, started: StreamStarted, connection: MediaStreamConnection, outbox: _Outbox
    ) -> StreamCall | None:
        call = StreamCall(self, started, connection, outbox)
        verdict = await self._decide(call)
        if verdict is not True:
            log.info("stream call %s refused by policy (%s)", call.call_id, verdict)
            outbox.close(_CLOSE_POLICY, f"call refused ({verdict})")
            call._finish(CallEnd(f"refused by policy ({verdict})", "local"))
            return None
        if self.config.detect_inband:
            call.slot = self._detector.add_channel()
        self._calls[call.stream_sid] = call
        log.info("stream call %s taken: stream %s from %s to %s", call.call_id,
                 call.stream_sid, call.caller, call.callee)
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick_loop())
        self._answered.put(call)
        return call

    def _authorised(self, started: StreamStarted, offered_token: str | None) -> bool:
        expected = self.config.token
        if expected is None:
            return True
        offered = [offered_token, started.custom_parameters.get("token")]
        return any(
            hmac.compare_digest(candidate.encode(), expected.encode())
            for candidate in offered
            if isinstance(candidate, str)
        )

    async def _decide(self, call: StreamCall) -> bool | int:
        if self.policy is None:
            return True
        try:
            verdict = self.policy(call)
            if inspect.isawaitable(verdict):
                verdict = await verdict
        except Exception:  # a broken policy refuses this call only
            log.exception("stream call policy failed for %s", call.call_id)
            return 500
        if isinstance(verdict, bool | int):
            return verdict
        log.error("stream call policy returned %r; refusing %s", verdict, call.call_id)
        return 500

    def _release(self, call: StreamCall, end: CallEnd, close_code: int) -> None:
        if self._calls.get(call.stream_sid) is not call:
            return
        del self._calls[call.stream_sid]
        self._drain(call, time.monotonic())
        if call.slot is not None:
            self._detector.remove_channel(call.slot)
            call.slot = None
        log.info("stream call %s ended by %s: %s", call.call_id, end.by, end.reason)
        call._outbox.close(close_code, end.reason[:120])
        call._finish(end)

    # -- media ----------------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        pacer = Pacer(time.monotonic(), _TICK)
        while self._calls:
            previous = pacer.tick
            deadline = pacer.next_deadline(time.monotonic())
            self.late_ticks += max(0, pacer.tick - previous - 1)
            delay = deadline - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                self._tick(time.monotonic())
            except Exception:  # the media tick must survive anything one call does
                log.exception("media-stream tick failed")

    def _tick(self, now: float) -> None:
        calls = list(self._calls.values())
        self._process_inbound({call: call._take_batch(_MAX_ROUNDS) for call in calls}, now)
        for call in calls:
            try:
                call._media_tick(now)
            except Exception:
                log.exception("stream call %s: media tick failed", call.call_id)

    def _drain(self, call: StreamCall, now: float) -> None:
        """Judge what the bridge sent before the call ended (a dtmf message just before stop)."""
        try:
            self._process_inbound({call: call._take_batch(_MAX_QUEUED_FRAMES)}, now)
            call._accept(call._arbiter.poll(now * 1000 + call._arbiter.inband_hold_ms))
        except Exception:
            log.exception("stream call %s: final media failed", call.call_id)

    def _process_inbound(self, batches: dict[StreamCall, _Batch], now: float) -> None:
        rounds = max((len(batch.frames) for batch in batches.values()), default=0)
        for index in range(rounds + 1):
            for call, batch in batches.items():
                if index < len(batch.digits):
                    call._feed_digits(batch.digits[index], now)
            if index < rounds:
                self._detect(batches, index, now)

    def _detect(self, batches: dict[StreamCall, _Batch], index: int, now: float) -> None:
        """Round ``index`` of this tick: every call's ``index``-th queued frame, detected at once.

        A call with fewer frames gets a lost frame, which neither starts nor ends a press.
        """
        channels = self._detector.channels
        now_ms = now * 1000
        frames = np.zeros((channels, FRAME_SAMPLES), dtype=np.int16)
        lost = np.ones(channels, dtype=bool)
        times = np.full(channels, now_ms)
        by_slot: dict[int, StreamCall] = {}
        for call, batch in batches.items():
            if call.slot is None:
                continue
            by_slot[call.slot] = call
            if index < len(batch.frames):
                frame = batch.frames[index]
                frames[call.slot] = frame.samples
                lost[call.slot] = frame.lost
                # The newest frame is "now"; earlier ones of a backlog arrived before it.
                times[call.slot] = now_ms - (len(batch.frames) - 1 - index) * _FRAME_MS
        events: dict[int, list[KeyDown | KeyUp]] = {}
        if by_slot:
            for slot, event in self._detector.process(frames, times, lost):
                events.setdefault(slot, []).append(event)
        for call, batch in batches.items():
            if call.slot is not None and call.slot in events:
                call._feed_inband(events[call.slot], now)
            if index < len(batch.frames):
                call._deliver_frame(batch.frames[index])
