"""The Media Streams WebSocket protocol, sans-IO: one :class:`MediaStreamConnection` per socket.

The protocol is Twilio's Media Streams (bidirectional form), also spoken by carriers and
SIP-to-WebSocket bridges: JSON text messages, each ``{"event": ..., "sequenceNumber": "<n>",
"streamSid": ..., "<event>": {...}}``.

Inbound (bridge → us)
    ``connected`` (no sequence number), ``start`` (stream and call ids, ``tracks``,
    ``mediaFormat``, ``customParameters``), ``media`` (base64 G.711 ``payload``, ``track``,
    ``chunk``, ``timestamp``), ``dtmf`` (``digit``), ``mark`` (the echo of a mark we sent, once
    the audio before it has played or was cleared) and ``stop``.
    :meth:`MediaStreamConnection.receive` turns each into events. Messages are handled in
    ``sequenceNumber`` order: an early one waits (at most ``reorder_depth`` messages) for the
    gap to fill, a duplicate or late one is dropped; messages without a sequence number are
    handled on arrival. Inbound audio comes out re-framed into 20 ms frames; a gap in the
    ``chunk`` numbers becomes frames flagged ``lost`` (silence), so DTMF detection neither
    starts nor ends a press across missing audio. Only the ``inbound`` track is the caller;
    ``outbound``-track media (a bridge echoing our side) is counted and ignored.
Errors
    A malformed message (bad JSON, a missing or mistyped field, bad base64, a message that does
    not fit the stream's state) becomes a :class:`StreamRejected` event naming the problem; the
    connection carries on. A ``start`` with a media format other than 8 kHz mono G.711
    (``audio/x-mulaw``, also ``audio/x-alaw``) becomes :class:`StreamRefused`: the stream cannot
    be used and the adapter should close the socket.
Outbound (us → bridge)
    :meth:`MediaStreamConnection.send_audio` encodes int16 audio with the stream's law and
    returns ``media`` messages of ``outbound_chunk_ms`` each (the remainder waits for more audio
    or :meth:`~MediaStreamConnection.flush`); :meth:`~MediaStreamConnection.mark` and
    :meth:`~MediaStreamConnection.clear` build ``mark`` and ``clear``. ``clear`` tells the bridge
    to drop the audio it has buffered but not played; it is how a cut (barge-in) reaches the
    caller's ear at once instead of after the bridge's buffer has drained.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from voxflow.errors import ConfigError, VoxflowError
from voxflow.media.dtmf import ALL_KEYS
from voxflow.media.g711 import Codec

__all__ = [
    "SUPPORTED_ENCODINGS",
    "MediaFormat",
    "MediaStreamConnection",
    "StreamAudio",
    "StreamConnected",
    "StreamDtmf",
    "StreamError",
    "StreamEvent",
    "StreamMark",
    "StreamMessageError",
    "StreamRefused",
    "StreamRejected",
    "StreamStarted",
    "StreamStats",
    "StreamStopped",
]

SAMPLE_RATE: Final = 8000
FRAME_SAMPLES: Final = 160
FRAME_MS: Final = 20
SUPPORTED_ENCODINGS: Final = {"audio/x-mulaw": Codec.PCMU, "audio/x-alaw": Codec.PCMA}
_INBOUND_TRACK: Final = "inbound"
_OUTBOUND_TRACK: Final = "outbound"
_MAX_TEXT: Final = 1 << 20  # a 20 ms chunk is ~250 bytes; a megabyte is far beyond any real one


class StreamError(VoxflowError):
    """A media stream could not do what was asked (not started yet, not supported on streams)."""


class StreamMessageError(StreamError, ValueError):
    """A Media Streams message could not be used; the message says which field and why."""


# -- events ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaFormat:
    """The stream's audio format, as announced in ``start``."""

    encoding: str
    sample_rate: int
    channels: int

    @property
    def codec(self) -> Codec:
        """The G.711 law (only valid for a supported format)."""
        return SUPPORTED_ENCODINGS[self.encoding]


@dataclass(frozen=True, slots=True)
class StreamConnected:
    """The bridge said hello (``connected``)."""

    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class StreamStarted:
    """The stream began: who it is for and how its audio is encoded."""

    stream_sid: str
    call_sid: str
    account_sid: str
    custom_parameters: dict[str, str]
    media_format: MediaFormat
    tracks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StreamAudio:
    """20 ms of the caller's audio (8 kHz int16).

    ``timestamp`` is the frame's first sample in ms since the stream started, counted from the
    audio received (gaps included); ``chunk`` is the ``chunk`` number of the message that
    completed the frame (0 when the bridge sends none); ``lost`` marks silence standing in for
    missing chunks.
    """

    samples: npt.NDArray[np.int16]
    timestamp: int
    chunk: int
    lost: bool = False


@dataclass(frozen=True, slots=True)
class StreamDtmf:
    """The bridge reported a key press (``dtmf``)."""

    digit: str


@dataclass(frozen=True, slots=True)
class StreamMark:
    """A mark we sent came back: the audio sent before it has played (or was cleared)."""

    name: str


@dataclass(frozen=True, slots=True)
class StreamStopped:
    """The bridge ended the stream (``stop``)."""

    call_sid: str


@dataclass(frozen=True, slots=True)
class StreamRejected:
    """A message was ignored; ``reason`` says what was wrong with it."""

    reason: str


@dataclass(frozen=True, slots=True)
class StreamRefused:
    """The stream cannot be used (e.g. an unsupported media format); close the socket."""

    reason: str


StreamEvent = (
    StreamConnected
    | StreamStarted
    | StreamAudio
    | StreamDtmf
    | StreamMark
    | StreamStopped
    | StreamRejected
    | StreamRefused
)


@dataclass(slots=True)
class StreamStats:
    """Counters since the connection was created."""

    messages: int = 0
    rejected: int = 0
    duplicates: int = 0
    skipped_sequence_numbers: int = 0
    lost_frames: int = 0
    outbound_track_chunks: int = 0
    sent_messages: int = 0


class _State(enum.Enum):
    AWAITING_START = "awaiting start"
    STREAMING = "streaming"
    STOPPED = "stopped"
    REFUSED = "refused"


# -- field validation --------------------------------------------------------------------------


def _object(message: dict[str, Any], key: str, *, required: bool = True) -> dict[str, Any]:
    value = message.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise StreamMessageError(f"{key}: expected an object, got {_describe(value)}")
    return value


def _text(obj: dict[str, Any], key: str, where: str, *, default: str | None = None) -> str:
    value = obj.get(key)
    if value is None and default is not None:
        return default
    if not isinstance(value, str):
        raise StreamMessageError(f"{where}.{key}: expected a string, got {_describe(value)}")
    return value


def _count(obj: dict[str, Any], key: str, where: str) -> int | None:
    """A non-negative integer sent as a decimal string (as the protocol does) or a number."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    raise StreamMessageError(
        f"{where}.{key}: expected a non-negative integer (decimal string), got {_describe(value)}"
    )


def _describe(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _decode_envelope(data: str | bytes) -> dict[str, Any]:
    if len(data) > _MAX_TEXT:
        raise StreamMessageError(f"message of {len(data)} bytes is too large (limit {_MAX_TEXT})")
    try:
        message = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise StreamMessageError(f"message is not JSON: {error}") from None
    if not isinstance(message, dict):
        raise StreamMessageError(f"message is not a JSON object: {_describe(message)}")
    return message


# -- the connection ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Inbound:
    """Re-framing state of the caller's audio."""

    pending: npt.NDArray[np.int16] = field(default_factory=lambda: np.zeros(0, np.int16))
    samples_out: int = 0
    last_chunk: int | None = None
    last_chunk_samples: int = FRAME_SAMPLES


class MediaStreamConnection:
    """One Media Streams WebSocket, as a state machine; see the module docstring.

    ``outbound_chunk_ms`` (a multiple of 20) sizes the ``media`` messages we send;
    ``reorder_depth`` is how many early messages wait for a missing sequence number before
    the gap is given up; ``max_gap_ms`` caps the silence inserted for missing chunks.
    """

    def __init__(
        self,
        *,
        outbound_chunk_ms: int = 20,
        reorder_depth: int = 32,
        max_gap_ms: int = 1000,
    ) -> None:
        if outbound_chunk_ms <= 0 or outbound_chunk_ms % FRAME_MS or outbound_chunk_ms > 10_000:
            raise ConfigError(
                f"outbound_chunk_ms must be a multiple of {FRAME_MS} up to 10000, "
                f"got {outbound_chunk_ms}"
            )
        if reorder_depth < 0:
            raise ConfigError(f"reorder_depth must not be negative, got {reorder_depth}")
        if max_gap_ms < 0:
            raise ConfigError(f"max_gap_ms must not be negative, got {max_gap_ms}")
        self._chunk_samples = outbound_chunk_ms * SAMPLE_RATE // 1000
        self._reorder_depth = reorder_depth
        self._max_gap_frames = max_gap_ms // FRAME_MS
        self._state = _State.AWAITING_START
        self._started: StreamStarted | None = None
        self._next_seq: int | None = None
        self._held: dict[int, dict[str, Any]] = {}
        self._inbound = _Inbound()
        self._outbound = np.zeros(0, np.int16)
        self.pending_marks: list[str] = []
        self.stats = StreamStats()

    @property
    def started(self) -> StreamStarted | None:
        """The ``start`` message's content once the stream has started."""
        return self._started

    @property
    def stream_sid(self) -> str | None:
        """The stream's id once started."""
        return self._started.stream_sid if self._started is not None else None

    @property
    def stopped(self) -> bool:
        """Whether the stream is over (``stop`` received or refused)."""
        return self._state in (_State.STOPPED, _State.REFUSED)

    # -- inbound ---------------------------------------------------------------------------------

    def receive(self, data: str | bytes) -> list[StreamEvent]:
        """Take one WebSocket message; return what it (and messages it unblocked) mean."""
        self.stats.messages += 1
        try:
            message = _decode_envelope(data)
            seq = _count(message, "sequenceNumber", "message")
        except StreamMessageError as error:
            return self._rejected(error)
        if seq is None:
            return self._handle(message)
        if self._next_seq is None:
            self._next_seq = seq
        if seq < self._next_seq or seq in self._held:
            self.stats.duplicates += 1
            return []
        self._held[seq] = message
        events: list[StreamEvent] = []
        while self._held:
            if self._next_seq in self._held:
                events.extend(self._handle(self._held.pop(self._next_seq)))
                self._next_seq += 1
            elif len(self._held) > self._reorder_depth:
                # The missing message is not coming (a real gap): give it up.
                first = min(self._held)
                self.stats.skipped_sequence_numbers += first - self._next_seq
                self._next_seq = first
            else:
                break
        return events

    def _rejected(self, error: StreamMessageError) -> list[StreamEvent]:
        self.stats.rejected += 1
        return [StreamRejected(str(error))]

    def _handle(self, message: dict[str, Any]) -> list[StreamEvent]:
        # Checked here, not on arrival, so a message without a usable event still takes its
        # place in the sequence and does not stall the ones after it.
        try:
            event = _text(message, "event", "message")
        except StreamMessageError as error:
            return self._rejected(error)
        handler = _HANDLERS.get(event)
        try:
            if handler is None:
                raise StreamMessageError(f"unknown event {_describe(event)} ignored")
            if self._state is _State.STOPPED or self._state is _State.REFUSED:
                raise StreamMessageError(f"{event!r} after the stream ended ignored")
            self._check_stream_sid(message, event)
            return handler(self, message)
        except StreamMessageError as error:
            return self._rejected(StreamMessageError(f"{event}: {error}"))

    def _check_stream_sid(self, message: dict[str, Any], event: str) -> None:
        sid = message.get("streamSid")
        if sid is None or self._started is None or event == "start":
            return
        if sid != self._started.stream_sid:
            raise StreamMessageError(
                f"streamSid {_describe(sid)} is not this stream's "
                f"({self._started.stream_sid!r})"
            )

    def _require_streaming(self) -> None:
        if self._state is not _State.STREAMING:
            raise StreamMessageError(f"not allowed while {self._state.value}")

    def _on_connected(self, message: dict[str, Any]) -> list[StreamEvent]:
        if self._state is not _State.AWAITING_START:
            raise StreamMessageError("not allowed after start")
        protocol = _text(message, "protocol", "connected", default="")
        version = _text(message, "version", "connected", default="")
        return [StreamConnected(protocol, version)]

    def _on_start(self, message: dict[str, Any]) -> list[StreamEvent]:
        if self._state is not _State.AWAITING_START:
            raise StreamMessageError("the stream has already started")
        start = _object(message, "start")
        sid = start.get("streamSid", message.get("streamSid"))
        if not isinstance(sid, str) or not sid:
            raise StreamMessageError(f"start.streamSid: expected a non-empty string, got "
                                     f"{_describe(sid)}")
        tracks = start.get("tracks", [_INBOUND_TRACK])
        if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
            raise StreamMessageError(f"start.tracks: expected a list of strings, got "
                                     f"{_describe(tracks)}")
        media_format = self._media_format(_object(start, "mediaFormat"))
        started = StreamStarted(
            stream_sid=sid,
            call_sid=_text(start, "callSid", "start", default=""),
            account_sid=_text(start, "accountSid", "start", default=""),
            custom_parameters=self._parameters(_object(start, "customParameters", required=False)),
            media_format=media_format,
            tracks=tuple(tracks),
        )
        problem = self._unsupported(media_format, started.tracks)
        if problem is not None:
            self._state = _State.REFUSED
            return [StreamRefused(problem)]
        self._started = started
        self._state = _State.STREAMING
        return [started]

    @staticmethod
    def _media_format(obj: dict[str, Any]) -> MediaFormat:
        encoding = _text(obj, "encoding", "start.mediaFormat")
        rate = _count(obj, "sampleRate", "start.mediaFormat")
        channels = _count(obj, "channels", "start.mediaFormat")
        if rate is None:
            raise StreamMessageError("start.mediaFormat.sampleRate: missing")
        return MediaFormat(encoding.lower(), rate, 1 if channels is None else channels)

    @staticmethod
    def _unsupported(media_format: MediaFormat, tracks: tuple[str, ...]) -> str | None:
        if media_format.encoding not in SUPPORTED_ENCODINGS:
            return (
                f"media format {media_format.encoding!r} is not supported "
                f"(use one of {', '.join(SUPPORTED_ENCODINGS)})"
            )
        if media_format.sample_rate != SAMPLE_RATE or media_format.channels != 1:
            return (
                f"media format {media_format.sample_rate} Hz x {media_format.channels} channels "
                f"is not supported (G.711 streams are 8000 Hz mono)"
            )
        if tracks and _INBOUND_TRACK not in tracks:
            return f"the stream carries no inbound track (tracks {list(tracks)})"
        return None

    @staticmethod
    def _parameters(obj: dict[str, Any]) -> dict[str, str]:
        parameters: dict[str, str] = {}
        for key, value in obj.items():
            if isinstance(value, str):
                parameters[key] = value
            elif isinstance(value, int | float) and not isinstance(value, bool):
                parameters[key] = str(value)
            else:
                raise StreamMessageError(
                    f"start.customParameters.{key}: expected a string, got {_describe(value)}"
                )
        return parameters

    def _on_media(self, message: dict[str, Any]) -> list[StreamEvent]:
        self._require_streaming()
        media = _object(message, "media")
        track = _text(media, "track", "media", default=_INBOUND_TRACK)
        if track not in (_INBOUND_TRACK, _OUTBOUND_TRACK):
            raise StreamMessageError(f"media.track: unknown track {track!r}")
        chunk = _count(media, "chunk", "media")
        _count(media, "timestamp", "media")  # validated; frame times come from the audio itself
        payload = _text(media, "payload", "media")
        try:
            codes = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise StreamMessageError("media.payload: not valid base64") from None
        if not codes:
            raise StreamMessageError("media.payload: empty")
        if track == _OUTBOUND_TRACK:
            self.stats.outbound_track_chunks += 1
            return []
        inbound = self._inbound
        events: list[StreamEvent] = []
        if chunk is not None and inbound.last_chunk is not None:
            if chunk <= inbound.last_chunk:
                self.stats.duplicates += 1
                return []
            events.extend(self._fill_gap(chunk - inbound.last_chunk - 1, chunk))
        if chunk is not None:
            inbound.last_chunk = chunk
        inbound.last_chunk_samples = len(codes)
        assert self._started is not None
        samples = self._started.media_format.codec.decode_codes(codes)
        inbound.pending = np.concatenate([inbound.pending, samples])
        while inbound.pending.size >= FRAME_SAMPLES:
            frame, inbound.pending = (
                inbound.pending[:FRAME_SAMPLES],
                inbound.pending[FRAME_SAMPLES:],
            )
            events.append(self._frame(frame, chunk or 0, lost=False))
        return events

    def _fill_gap(self, missing_chunks: int, chunk: int) -> list[StreamEvent]:
        if missing_chunks <= 0:
            return []
        inbound = self._inbound
        missing = missing_chunks * inbound.last_chunk_samples
        # A partial frame next to missing audio is not trustworthy either: it goes out as lost.
        frames = min(-(-(inbound.pending.size + missing) // FRAME_SAMPLES), self._max_gap_frames)
        inbound.pending = inbound.pending[:0]
        silence = np.zeros(FRAME_SAMPLES, np.int16)
        self.stats.lost_frames += frames
        return [self._frame(silence, chunk, lost=True) for _ in range(frames)]

    def _frame(self, samples: npt.NDArray[np.int16], chunk: int, *, lost: bool) -> StreamAudio:
        inbound = self._inbound
        timestamp = inbound.samples_out * 1000 // SAMPLE_RATE
        inbound.samples_out += FRAME_SAMPLES
        return StreamAudio(samples, timestamp, chunk, lost)

    def _on_dtmf(self, message: dict[str, Any]) -> list[StreamEvent]:
        self._require_streaming()
        digit = _text(_object(message, "dtmf"), "digit", "dtmf").upper()
        if digit not in ALL_KEYS:
            raise StreamMessageError(f"dtmf.digit: {digit!r} is not a key (0-9, *, #, A-D)")
        return [StreamDtmf(digit)]

    def _on_mark(self, message: dict[str, Any]) -> list[StreamEvent]:
        self._require_streaming()
        name = _text(_object(message, "mark"), "name", "mark")
        if name in self.pending_marks:
            self.pending_marks.remove(name)
        return [StreamMark(name)]

    def _on_stop(self, message: dict[str, Any]) -> list[StreamEvent]:
        stop = _object(message, "stop", required=False)
        call_sid = _text(stop, "callSid", "stop", default="")
        self._state = _State.STOPPED
        self._inbound.pending = self._inbound.pending[:0]  # less than one frame: not worth it
        return [StreamStopped(call_sid)]

    # -- outbound --------------------------------------------------------------------------------

    def send_audio(self, samples: npt.ArrayLike) -> list[str]:
        """Queue int16 audio (8 kHz); return the ``media`` messages now complete."""
        audio = np.asarray(samples)
        if audio.dtype != np.int16 or audio.ndim != 1:
            raise StreamError(f"send_audio expects 1-D int16 audio, got {audio.dtype}"
                              f"{list(audio.shape)}")
        self._outbound = np.concatenate([self._outbound, audio])
        size = self._chunk_samples
        complete = self._outbound.size - self._outbound.size % size
        if complete == 0:
            return []
        chunks, self._outbound = self._outbound[:complete], self._outbound[complete:]
        return [self._media_message(chunk) for chunk in chunks.reshape(-1, size)]

    def flush(self) -> list[str]:
        """The audio still waiting for a full chunk, as one shorter ``media`` message."""
        if self._outbound.size == 0:
            return []
        rest, self._outbound = self._outbound, self._outbound[:0]
        return [self._media_message(rest)]

    def mark(self, name: str) -> list[str]:
        """A ``mark`` after all audio given so far (flushed first); it comes back once played."""
        messages = self.flush()
        messages.append(self._message("mark", {"mark": {"name": name}}))
        self.pending_marks.append(name)
        return messages

    def clear(self) -> str:
        """A ``clear``: the bridge drops buffered audio; audio not yet sent is dropped here."""
        self._outbound = self._outbound[:0]
        return self._message("clear", {})

    def _media_message(self, samples: npt.NDArray[np.int16]) -> str:
        assert self._started is not None
        codes = self._started.media_format.codec.encode_samples(samples).tobytes()
        payload = base64.b64encode(codes).decode("ascii")
        return self._message("media", {"media": {"payload": payload}})

    def _message(self, event: str, body: dict[str, Any]) -> str:
        sid = self.stream_sid
        if sid is None or self._state is not _State.STREAMING:
            raise StreamError(f"cannot send {event!r}: the stream is {self._state.value}")
        self.stats.sent_messages += 1
        return json.dumps({"event": event, "streamSid": sid, **body}, separators=(",", ":"))


_HANDLERS: Final = {
    "connected": MediaStreamConnection._on_connected,
    "start": MediaStreamConnection._on_start,
    "media": MediaStreamConnection._on_media,
    "dtmf": MediaStreamConnection._on_dtmf,
    "mark": MediaStreamConnection._on_mark,
    "stop": MediaStreamConnection._on_stop,
}
