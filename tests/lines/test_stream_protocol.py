"""The Media Streams protocol state machine: every message type, malformed input, ordering, and
what we send."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest

from voxflow.errors import ConfigError
from voxflow.lines.stream_protocol import (
    MediaStreamConnection,
    StreamAudio,
    StreamConnected,
    StreamDtmf,
    StreamError,
    StreamMark,
    StreamRefused,
    StreamRejected,
    StreamStarted,
    StreamStopped,
)
from voxflow.media.g711 import alaw_encode, ulaw_decode, ulaw_encode

SID = "MZ0123456789abcdef"


def start(seq: int = 1, **overrides: Any) -> str:
    body: dict[str, Any] = {
        "accountSid": "AC1",
        "streamSid": SID,
        "callSid": "CA1",
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"from": "+4930123", "to": "+4940555"},
    }
    body.update(overrides)
    return json.dumps({"event": "start", "sequenceNumber": str(seq), "start": body,
                       "streamSid": SID})


def media(seq: int, samples: np.ndarray, chunk: int, *, track: str = "inbound",
          law: Any = ulaw_encode) -> str:
    payload = base64.b64encode(law(samples).tobytes()).decode()
    return json.dumps({"event": "media", "sequenceNumber": str(seq), "streamSid": SID,
                       "media": {"track": track, "chunk": str(chunk),
                                 "timestamp": str((chunk - 1) * 20), "payload": payload}})


def message(event: str, seq: int, **body: Any) -> str:
    return json.dumps({"event": event, "sequenceNumber": str(seq), "streamSid": SID, **body})


def started(**kwargs: Any) -> MediaStreamConnection:
    connection = MediaStreamConnection(**kwargs)
    events = connection.receive(json.dumps({"event": "connected", "protocol": "Call",
                                            "version": "1.0.0"}))
    assert events == [StreamConnected("Call", "1.0.0")]
    [event] = connection.receive(start())
    assert isinstance(event, StreamStarted)
    return connection


def ramp(count: int, offset: int = 0) -> np.ndarray:
    # Values that survive µ-law exactly would need care; compare after a codec round trip.
    return ((np.arange(count) + offset) * 97 % 16000 - 8000).astype(np.int16)


def test_start_reports_stream_call_parameters_and_format() -> None:
    connection = MediaStreamConnection()
    [event] = connection.receive(start())
    assert isinstance(event, StreamStarted)
    assert (event.stream_sid, event.call_sid, event.account_sid) == (SID, "CA1", "AC1")
    assert event.custom_parameters == {"from": "+4930123", "to": "+4940555"}
    assert event.media_format.encoding == "audio/x-mulaw"
    assert (event.media_format.sample_rate, event.media_format.channels) == (8000, 1)
    assert event.tracks == ("inbound",)
    assert connection.stream_sid == SID


def test_media_is_reframed_into_20ms_frames_with_stream_timestamps() -> None:
    connection = started()
    audio = ramp(400)
    events = connection.receive(media(2, audio[:100], 1))
    assert events == []  # less than one frame so far
    events = connection.receive(media(3, audio[100:400], 2))
    assert [type(e) for e in events] == [StreamAudio, StreamAudio]
    frames = [e for e in events if isinstance(e, StreamAudio)]
    assert [f.timestamp for f in frames] == [0, 20]
    assert [f.chunk for f in frames] == [2, 2]
    expected = ulaw_decode(ulaw_encode(audio[:320]))
    np.testing.assert_array_equal(np.concatenate([f.samples for f in frames]), expected)
    assert not any(f.lost for f in frames)


def test_alaw_streams_are_decoded_with_their_law() -> None:
    connection = MediaStreamConnection()
    fmt = {"encoding": "audio/x-alaw", "sampleRate": 8000, "channels": 1}
    [event] = connection.receive(start(mediaFormat=fmt))
    assert isinstance(event, StreamStarted)
    audio = ramp(160)
    [frame] = connection.receive(media(2, audio, 1, law=alaw_encode))
    assert isinstance(frame, StreamAudio)
    assert np.abs(frame.samples.astype(int) - audio).max() < 600  # A-law step at this level


def test_dtmf_mark_and_stop() -> None:
    connection = started()
    assert connection.receive(message("dtmf", 2, dtmf={"track": "inbound_track",
                                                       "digit": "5"})) == [StreamDtmf("5")]
    assert connection.receive(message("dtmf", 3, dtmf={"digit": "#"})) == [StreamDtmf("#")]
    connection.mark("prompt-1")
    assert connection.pending_marks == ["prompt-1"]
    assert connection.receive(message("mark", 4, mark={"name": "prompt-1"})) == [
        StreamMark("prompt-1")
    ]
    assert connection.pending_marks == []
    stop = message("stop", 5, stop={"accountSid": "AC1", "callSid": "CA1"})
    assert connection.receive(stop) == [StreamStopped("CA1")]
    assert connection.stopped
    [late] = connection.receive(message("dtmf", 6, dtmf={"digit": "1"}))
    assert isinstance(late, StreamRejected) and "after the stream ended" in late.reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"sequenceNumber": "2"}', "message.event: expected a string"),
        ('{"event": "media", "sequenceNumber": "x2"}', "sequenceNumber: expected a non-negative"),
        ('{"event": "bogus", "sequenceNumber": "2"}', "unknown event 'bogus'"),
        ('{"event": "media", "sequenceNumber": "2"}', "media: media: expected an object"),
        ('{"event": "media", "sequenceNumber": "2", "media": {"payload": "%%%"}}',
         "media.payload: not valid base64"),
        ('{"event": "media", "sequenceNumber": "2", "media": {"payload": ""}}',
         "media.payload: empty"),
        ('{"event": "media", "sequenceNumber": "2", "media": {"payload": "AA==", '
         '"track": "sideways"}}', "unknown track 'sideways'"),
        ('{"event": "media", "sequenceNumber": "2", "media": {"payload": "AA==", '
         '"chunk": -3}}', "media.chunk: expected a non-negative integer"),
        ('{"event": "dtmf", "sequenceNumber": "2", "dtmf": {"digit": "x"}}',
         "'X' is not a key"),
        ('{"event": "dtmf", "sequenceNumber": "2", "dtmf": {"digit": 5}}',
         "dtmf.digit: expected a string"),
        ('{"event": "mark", "sequenceNumber": "2", "mark": {}}', "mark.name: expected a string"),
        ('{"event": "start", "sequenceNumber": "2", "start": {}}', "already started"),
        ('{"event": "connected", "protocol": "Call"}', "not allowed after start"),
        ('{"event": "dtmf", "sequenceNumber": "2", "streamSid": "MZother", '
         '"dtmf": {"digit": "1"}}', "is not this stream's"),
    ],
)
def test_malformed_messages_are_rejected_with_a_clear_reason(text: str, expected: str) -> None:
    connection = started()
    [event] = connection.receive(text)
    assert isinstance(event, StreamRejected)
    assert expected in event.reason
    # ... and the stream carries on.
    next_seq = 3 if '"sequenceNumber": "2"' in text else 2
    assert connection.receive(message("dtmf", next_seq, dtmf={"digit": "7"})) == [StreamDtmf("7")]
    assert connection.stats.rejected == 1


def test_media_before_start_is_rejected() -> None:
    connection = MediaStreamConnection()
    [event] = connection.receive(media(1, ramp(160), 1))
    assert isinstance(event, StreamRejected) and "awaiting start" in event.reason


@pytest.mark.parametrize(
    ("fmt", "tracks", "expected"),
    [
        ({"encoding": "audio/l16", "sampleRate": 16000, "channels": 1}, ["inbound"],
         "'audio/l16' is not supported"),
        ({"encoding": "audio/x-mulaw", "sampleRate": 16000, "channels": 1}, ["inbound"],
         "16000 Hz x 1 channels is not supported"),
        ({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 2}, ["inbound"],
         "8000 Hz x 2 channels"),
        ({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}, ["outbound"],
         "no inbound track"),
    ],
)
def test_unsupported_media_formats_refuse_the_stream(
    fmt: dict[str, Any], tracks: list[str], expected: str
) -> None:
    connection = MediaStreamConnection()
    [event] = connection.receive(start(mediaFormat=fmt, tracks=tracks))
    assert isinstance(event, StreamRefused)
    assert expected in event.reason
    assert connection.stopped
    [after] = connection.receive(media(2, ramp(160), 1))
    assert isinstance(after, StreamRejected)


def test_messages_are_handled_in_sequence_order_and_duplicates_dropped() -> None:
    connection = started()
    assert connection.receive(message("dtmf", 4, dtmf={"digit": "3"})) == []  # waits for 2, 3
    assert connection.receive(message("dtmf", 3, dtmf={"digit": "2"})) == []
    assert connection.receive(message("dtmf", 2, dtmf={"digit": "1"})) == [
        StreamDtmf("1"), StreamDtmf("2"), StreamDtmf("3")
    ]
    assert connection.receive(message("dtmf", 3, dtmf={"digit": "2"})) == []
    assert connection.receive(message("dtmf", 4, dtmf={"digit": "3"})) == []
    assert connection.stats.duplicates == 2
    assert connection.receive(message("dtmf", 5, dtmf={"digit": "4"})) == [StreamDtmf("4")]


def test_a_sequence_gap_that_never_fills_is_given_up() -> None:
    connection = started(reorder_depth=2)
    # 2 is lost for good; 3, 4 wait; the third early message exceeds the depth.
    assert connection.receive(message("dtmf", 3, dtmf={"digit": "1"})) == []
    assert connection.receive(message("dtmf", 4, dtmf={"digit": "2"})) == []
    assert connection.receive(message("dtmf", 5, dtmf={"digit": "3"})) == [
        StreamDtmf("1"), StreamDtmf("2"), StreamDtmf("3")
    ]
    assert connection.stats.skipped_sequence_numbers == 1
    assert connection.receive(message("dtmf", 2, dtmf={"digit": "9"})) == []  # too late


def test_missing_chunks_become_lost_frames_and_repeated_chunks_are_dropped() -> None:
    connection = started()
    first = connection.receive(media(2, ramp(160), 1))
    assert len(first) == 1
    # chunks 2 and 3 (20 ms each) never come
    events = connection.receive(media(3, ramp(160, 7), 4))
    audio = [e for e in events if isinstance(e, StreamAudio)]
    assert [e.lost for e in audio] == [True, True, False]
    assert [e.timestamp for e in audio] == [20, 40, 60]
    assert not audio[0].samples.any()
    assert connection.stats.lost_frames == 2
    assert connection.receive(media(4, ramp(160), 4)) == []  # same chunk again
    assert connection.stats.duplicates == 1


def test_outbound_track_media_is_ignored() -> None:
    connection = started()
    assert connection.receive(media(2, ramp(160), 1, track="outbound")) == []
    assert connection.stats.outbound_track_chunks == 1


def test_outbound_audio_is_chunked_base64_mulaw() -> None:
    connection = started(outbound_chunk_ms=40)
    audio = ramp(500)
    assert connection.send_audio(audio[:160]) == []  # half a chunk
    messages = connection.send_audio(audio[160:])
    assert len(messages) == 1
    rest = connection.flush()
    assert len(rest) == 1
    decoded = []
    for text in messages + rest:
        parsed = json.loads(text)
        assert parsed["event"] == "media" and parsed["streamSid"] == SID
        decoded.append(np.frombuffer(base64.b64decode(parsed["media"]["payload"]), np.uint8))
    assert [d.size for d in decoded] == [320, 180]
    np.testing.assert_array_equal(np.concatenate(decoded), ulaw_encode(audio))
    assert connection.flush() == []


def test_mark_follows_pending_audio_and_clear_drops_unsent_audio() -> None:
    connection = started(outbound_chunk_ms=100)
    connection.send_audio(ramp(160))
    texts = connection.mark("end-of-prompt")
    assert [json.loads(t)["event"] for t in texts] == ["media", "mark"]
    assert json.loads(texts[1])["mark"] == {"name": "end-of-prompt"}
    connection.send_audio(ramp(160))
    assert json.loads(connection.clear()) == {"event": "clear", "streamSid": SID}
    assert connection.flush() == []  # the unsent audio went with the clear


def test_sending_before_start_or_bad_audio_raises_a_clear_error() -> None:
    connection = MediaStreamConnection()
    with pytest.raises(StreamError, match="cannot send 'clear': the stream is awaiting start"):
        connection.clear()
    with pytest.raises(StreamError, match="1-D int16"):
        started().send_audio(np.zeros(160, dtype=np.float32))


@pytest.mark.parametrize("kwargs", [{"outbound_chunk_ms": 30}, {"outbound_chunk_ms": 0},
                                    {"reorder_depth": -1}, {"max_gap_ms": -5}])
def test_bad_settings_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        MediaStreamConnection(**kwargs)
