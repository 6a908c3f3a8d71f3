"""The media-stream line end to end: a real uvicorn server on 127.0.0.1 and a Media Streams
client written with the ``websockets`` library from the protocol's public description
(connected → start → media … / dtmf → stop; we answer with media, mark and clear)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from voxflow.lines.calls import Call
from voxflow.lines.stream import StreamCall, StreamLine, StreamLineConfig
from voxflow.lines.stream_protocol import StreamError
from voxflow.media.dtmf import DtmfSource, generate_sequence
from voxflow.media.g711 import ulaw_decode, ulaw_encode
from voxflow.speech.espeak import EspeakProvider

FRAME = 160


@dataclass
class Received:
    """What the bridge side got from the line, with arrival times (monotonic seconds)."""

    media: list[tuple[float, np.ndarray]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)

    def audio(self) -> np.ndarray:
        return np.concatenate([samples for _, samples in self.media])


class MediaStreamsClient:
    """The bridge: sends a call's audio at real time, reads what the line sends back, and
    returns each mark once everything before it has arrived (as a bridge does once played)."""

    def __init__(self, ws: ClientConnection, stream_sid: str = "MZ42", echo: bool = False) -> None:
        self.ws = ws
        self.sid = stream_sid
        self.echo = echo  # send every media chunk back as caller audio, like a loud handset
        self.seq = 0
        self.chunk = 0
        self.received = Received()
        self.reader = asyncio.create_task(self._read())

    async def send(self, event: str, **body: Any) -> None:
        self.seq += 1
        await self.ws.send(json.dumps({"event": event, "sequenceNumber": str(self.seq),
                                       "streamSid": self.sid, **body}))

    async def open(self, **parameters: str) -> None:
        await self.ws.send(json.dumps({"event": "connected", "protocol": "Call",
                                       "version": "1.0.0"}))
        await self.send("start", start={
            "accountSid": "AC7", "streamSid": self.sid, "callSid": "CA42",
            "tracks": ["inbound"], "customParameters": parameters,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        })

    async def stream(self, script: list[np.ndarray | str], realtime: bool = True) -> None:
        """Frames (int16[160]) at real time (or as one burst); a str is a ``dtmf`` message."""
        loop = asyncio.get_running_loop()
        begin = loop.time()
        frames = 0
        for item in script:
            if isinstance(item, str):
                await self.send("dtmf", dtmf={"track": "inbound_track", "digit": item})
                continue
            if realtime:
                await asyncio.sleep(max(0.0, begin + frames * 0.02 - loop.time()))
            self.chunk += 1
            payload = base64.b64encode(ulaw_encode(item).tobytes()).decode()
            await self.send("media", media={"track": "inbound", "chunk": str(self.chunk),
                                            "timestamp": str(frames * 20), "payload": payload})
            frames += 1

    async def stop(self) -> None:
        await self.send("stop", stop={"accountSid": "AC7", "callSid": "CA42"})

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for text in self.ws:
                message = json.loads(text)
                assert message["streamSid"] == self.sid
                self.received.events.append(message["event"])
                if message["event"] == "media":
                    codes = base64.b64decode(message["media"]["payload"])
                    self.received.media.append((time.monotonic(), ulaw_decode(codes)))
                    if self.echo:
                        await self.stream([ulaw_decode(codes)])
                elif message["event"] == "mark":
                    self.received.marks.append(message["mark"]["name"])
                    await self.send("mark", mark=message["mark"])


@contextlib.asynccontextmanager
async def serving(line: StreamLine) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    server = uvicorn.Server(uvicorn.Config(line.asgi_app("/media-stream"), log_level="warning",
                                           lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}/media-stream"
    finally:
        await line.stop()
        server.should_exit = True
        await task
        sock.close()


@contextlib.asynccontextmanager
async def bridged_call(
    line: StreamLine, echo: bool = False, **parameters: str
) -> AsyncIterator[tuple[MediaStreamsClient, StreamCall]]:
    async with serving(line) as url, connect(url) as ws:
        client = MediaStreamsClient(ws, echo=echo)
        await client.open(**parameters)
        call = await line.next_call(max_wait=5)
        yield client, call
        client.reader.cancel()


def frames_of(samples: np.ndarray) -> list[np.ndarray]:
    padded = np.concatenate([samples, np.zeros(-samples.size % FRAME, np.int16)])
    return list(padded.reshape(-1, FRAME))


def silence(ms: int) -> list[np.ndarray]:
    return frames_of(np.zeros(ms * 8, np.int16))


def tone(hz: float, seconds: float, amplitude: float = 8000) -> np.ndarray:
    t = np.arange(int(8000 * seconds)) / 8000
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


async def collect_presses(call: StreamCall) -> list[tuple[str, DtmfSource]]:
    return [(press.key, press.source) async for press in call.presses()]


async def collect_frames(call: StreamCall) -> list[np.ndarray]:
    return [frame.samples async for frame in call.frames() if not frame.lost]


async def eventually(check: Callable[[], bool], max_wait: float = 3.0) -> None:
    deadline = time.monotonic() + max_wait
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_recorded_call_reports_every_key_exactly_once_in_order() -> None:
    speech = await EspeakProvider().synthesize_text("please enter your number", 1.0, "en",
                                                    "en", 8000)
    script: list[np.ndarray | str] = [
        *silence(200),
        *frames_of(generate_sequence("12", on_ms=80, off_ms=80, seed=1)),  # in-band only
        *frames_of(speech),  # must not turn into digits
        *frames_of(generate_sequence("5", on_ms=100, off_ms=60, seed=2)),
        "5",  # the same press again, as the bridge's own dtmf message
        *silence(300),
        "#",  # message only
        *silence(200),
        "9",
        *silence(200),
        "*",  # pressed just before the bridge stops the stream: still reported
    ]
    line = StreamLine()
    async with bridged_call(line, **{"from": "+4930111", "to": "+4940222"}) as (client, call):
        assert (call.call_id, call.caller, call.callee) == ("CA42", "+4930111", "+4940222")
        presses = asyncio.create_task(collect_presses(call))
        await client.stream(script)
        await client.stop()
        end = await asyncio.wait_for(call.wait_ended(), 5)
        keys = await asyncio.wait_for(presses, 5)
    assert keys == [
        ("1", DtmfSource.INBAND),
        ("2", DtmfSource.INBAND),
        ("5", DtmfSource.INBAND),
        ("#", DtmfSource.STREAM),
        ("9", DtmfSource.STREAM),
        ("*", DtmfSource.STREAM),
    ]
    assert (end.by, end.reason) == ("remote", "stream stopped by the bridge")
    assert call.stats["rejected"] == 0


async def test_a_key_whose_message_comes_first_is_reported_once_as_a_stream_key() -> None:
    script: list[np.ndarray | str] = [
        *silence(100),
        "7",  # the bridge reports the press as soon as the key goes down ...
        *frames_of(generate_sequence("7", on_ms=100, off_ms=100, seed=3)),  # ... tone follows
        *silence(200),
    ]
    async with bridged_call(StreamLine()) as (client, call):
        presses = asyncio.create_task(collect_presses(call))
        frames = asyncio.create_task(collect_frames(call))
        await client.stream(script)
        await client.ws.close()
        end = await asyncio.wait_for(call.wait_ended(), 5)
        assert await asyncio.wait_for(presses, 5) == [("7", DtmfSource.STREAM)]
        received = await asyncio.wait_for(frames, 5)
    assert end.by == "remote" and "socket closed" in end.reason
    sent = [item for item in script if not isinstance(item, str)]
    assert len(received) == len(sent)  # every frame, none invented
    np.testing.assert_array_equal(np.concatenate(received), ulaw_decode(ulaw_encode(
        np.concatenate(sent))))


async def test_the_echo_of_our_own_dtmf_tones_is_not_a_key() -> None:
    async with bridged_call(StreamLine(), echo=True) as (client, call):
        presses = asyncio.create_task(collect_presses(call))
        call.play(generate_sequence("48", on_ms=100, off_ms=100, level_dbm0=-8))
        await eventually(lambda: len(client.received.media) >= 20)  # 400 ms
        await asyncio.sleep(0.2)  # the echo of the last tone has been through the detector
        await client.stop()
        assert await asyncio.wait_for(presses, 3) == []
        assert call.stats["echo_suppressed"] == 2


async def test_audio_source_comes_back_as_real_time_media_and_marks_round_trip() -> None:
    async with bridged_call(StreamLine()) as (client, call):
        assert isinstance(call, Call)
        call.play(tone(1000, 0.6))
        await eventually(lambda: len(client.received.media) >= 30)
        call.send_mark("prompt-done")
        await call.wait_mark("prompt-done", max_wait=3)
    media = client.received.media
    assert len(media) == 30 and all(samples.size == FRAME for _, samples in media)
    audio = client.received.audio()
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    assert np.fft.rfftfreq(audio.size, 1 / 8000)[spectrum.argmax()] == pytest.approx(1000, abs=20)
    span = media[-1][0] - media[0][0]
    assert 0.45 < span < 0.8  # 29 intervals of 20 ms: real time, not a burst
    assert client.received.marks == ["prompt-done"]


@pytest.mark.parametrize("automatic", [False, True])
async def test_cut_playback_sends_clear_and_no_more_media(automatic: bool) -> None:
    line = StreamLine(StreamLineConfig(clear_on_source_stop=automatic))
    async with bridged_call(line) as (client, call):
        call.play(tone(1000, 2.0))
        await eventually(lambda: len(client.received.media) >= 5)
        call.set_audio_source(None)
        if not automatic:
            call.stop_playback()
        await eventually(lambda: "clear" in client.received.events)
        sent_before_clear = client.received.events.index("clear")
        await asyncio.sleep(0.1)
        assert client.received.events[sent_before_clear + 1 :] == []
        assert len(client.received.media) < 20


async def test_hangup_closes_the_socket() -> None:
    async with bridged_call(StreamLine()) as (client, call):
        call.hangup()
        assert call.end is not None and call.end.by == "local"
        await asyncio.wait_for(client.ws.wait_closed(), 3)
        assert client.ws.close_code == 1000
        call.hangup()  # idempotent
        assert await call.wait_ended() == call.end
        assert [press async for press in call.presses()] == []


async def test_what_a_stream_cannot_do_is_said_clearly() -> None:
    async with bridged_call(StreamLine()) as (_, call):
        with pytest.raises(StreamError, match="not supported on media streams"):
            call.send_dtmf("1")
        outcome = await call.transfer("+4930999")
        assert not outcome.success and "cannot transfer" in outcome.reason


async def test_malformed_messages_are_ignored_and_the_call_goes_on() -> None:
    line = StreamLine()
    async with bridged_call(line) as (client, call):
        presses = asyncio.create_task(collect_presses(call))
        await client.ws.send("this is not json")
        await client.ws.send(b"\xff\xfe binary junk")
        await client.send("dtmf", dtmf={"digit": "Z"})
        await client.send("dtmf", dtmf={"digit": "3"})
        await eventually(lambda: bool(call.key_log))
        await client.stop()
        assert await asyncio.wait_for(presses, 3) == [("3", DtmfSource.STREAM)]
    assert line.rejected_messages == 3


@pytest.mark.parametrize(
    ("policy", "start_format", "code"),
    [
        (lambda call: call.caller != "+4930666", None, 1008),
        (None, {"encoding": "audio/l16", "sampleRate": 16000, "channels": 1}, 1003),
    ],
)
async def test_refused_streams_are_closed_with_a_reason(
    policy: Callable[[StreamCall], bool | Awaitable[bool]] | None,
    start_format: dict[str, Any] | None,
    code: int,
) -> None:
    line = StreamLine(policy=policy)
    async with serving(line) as url, connect(url) as ws:
        client = MediaStreamsClient(ws)
        if start_format is None:
            await client.open(**{"from": "+4930666"})
        else:
            await client.send("start", start={"streamSid": "MZ42", "mediaFormat": start_format})
        await asyncio.wait_for(ws.wait_closed(), 3)
        assert ws.close_code == code
        assert ws.close_reason
        assert line.calls == []
        with pytest.raises(TimeoutError):
            await line.next_call(max_wait=0.05)


async def test_a_burst_of_backlogged_audio_is_caught_up_with_its_keys_in_order() -> None:
    # After a stall a bridge may deliver seconds of audio at once; nothing may be lost or merged.
    script: list[np.ndarray | str] = [
        *silence(100),
        *frames_of(generate_sequence("3303", on_ms=60, off_ms=60, seed=4)),
        "6",
        *silence(100),
    ]
    async with bridged_call(StreamLine()) as (client, call):
        presses = asyncio.create_task(collect_presses(call))
        await client.stream(script, realtime=False)
        await eventually(lambda: len(call.key_log) == 5)
        await client.stop()
        assert await asyncio.wait_for(presses, 3) == [
            ("3", DtmfSource.INBAND), ("3", DtmfSource.INBAND), ("0", DtmfSource.INBAND),
            ("3", DtmfSource.INBAND), ("6", DtmfSource.STREAM),
        ]
        assert call.stats["dropped_frames"] == 0


async def test_a_socket_that_never_starts_a_stream_is_closed() -> None:
    line = StreamLine(StreamLineConfig(start_timeout_s=0.2))
    async with serving(line) as url, connect(url) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await asyncio.wait_for(ws.wait_closed(), 3)
        assert (ws.close_code, ws.close_reason) == (1008, "no start message")
        assert line.calls == []


async def test_concurrent_calls_share_the_detector_but_keep_their_keys_apart() -> None:
    line = StreamLine()
    async with serving(line) as url, connect(url) as ws_a, connect(url) as ws_b:
        bridges = [MediaStreamsClient(ws_a, "MZa"), MediaStreamsClient(ws_b, "MZb")]
        calls = []
        for bridge, caller in zip(bridges, ("+491", "+492"), strict=True):
            await bridge.open(**{"from": caller})
            calls.append(await line.next_call(max_wait=5))
        assert [call.caller for call in calls] == ["+491", "+492"]
        presses = [asyncio.create_task(collect_presses(call)) for call in calls]
        await asyncio.gather(
            bridges[0].stream([*silence(60), *frames_of(generate_sequence("147", seed=5))]),
            bridges[1].stream([*silence(100), *frames_of(generate_sequence("2580", seed=6))]),
        )
        await asyncio.sleep(0.1)
        for bridge in bridges:
            await bridge.stop()
            bridge.reader.cancel()
        keys = [[key for key, _ in await asyncio.wait_for(task, 3)] for task in presses]
    assert keys == [["1", "4", "7"], ["2", "5", "8", "0"]]


@pytest.mark.parametrize(
    ("headers", "parameters", "taken"),
    [
        ({}, {}, False),
        ({"X-API-TOKEN": "wrong"}, {"token": "also wrong"}, False),
        ({"X-API-TOKEN": "s3cret"}, {}, True),  # a bridge that can send headers
        ({}, {"token": "s3cret"}, True),  # Twilio: a <Parameter> in the start message
    ],
)
async def test_a_configured_token_keeps_strangers_out(
    headers: dict[str, str], parameters: dict[str, str], taken: bool
) -> None:
    line = StreamLine(StreamLineConfig(token="s3cret"))
    async with serving(line) as url, connect(url, additional_headers=headers) as ws:
        client = MediaStreamsClient(ws)
        await client.open(**parameters)
        if taken:
            call = await line.next_call(max_wait=3)
            assert call.stream_sid == "MZ42"
        else:
            await asyncio.wait_for(ws.wait_closed(), 3)
            assert ws.close_code == 1008 and ws.close_reason == "unauthorised"
            assert line.calls == []
