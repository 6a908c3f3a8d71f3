"""A media-stream call as a full voxflow session: the plain Flask IVR webhook, the engine with
``stream_listen`` on a free loopback port, and the Media Streams test client streaming a
recorded call (µ-law audio with an in-band key, ``dtmf`` messages for the others)."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from websockets.asyncio.client import connect

from voxflow.media.dtmf import generate_sequence
from voxflow.server.app import VoxflowApp


def _stream_line_tests() -> Any:
    """The line's tests module, for its Media Streams client (tests are not a package)."""
    path = Path(__file__).resolve().parents[1] / "lines" / "test_stream_line.py"
    spec = importlib.util.spec_from_file_location("stream_line_tests", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


_client_module = _stream_line_tests()
MediaStreamsClient = _client_module.MediaStreamsClient
frames_of = _client_module.frames_of
silence = _client_module.silence

SPEECH_RMS = 300.0  # a 20 ms frame above this carries speech (about -40 dBFS)
PROMPT_FRAMES = 25  # half a second of prompt heard before the caller presses a key


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def loud_frames_since_last_clear(client: Any) -> int:
    """Media messages with speech energy received after the last ``clear`` (the prompt now)."""
    events = client.received.events
    start = len(events) - events[::-1].index("clear") if "clear" in events else 0
    media_before = events[:start].count("media")
    return sum(rms(samples) > SPEECH_RMS for _, samples in client.received.media[media_before:])


async def stream_silence_until(client: Any, done: Callable[[], bool],
                               max_wait: float = 15.0) -> None:
    """The recording goes on (silence, at real time) until ``done()``."""
    deadline = asyncio.get_running_loop().time() + max_wait
    while not done():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await client.stream(silence(100))


async def press_during_prompt(client: Any, key: list[np.ndarray | str]) -> None:
    """Wait until the menu is audibly playing, press ``key``, then stream on until the engine
    cut the prompt with ``clear``."""
    await stream_silence_until(client, lambda: loud_frames_since_last_clear(client)
                               >= PROMPT_FRAMES)
    clears = client.received.events.count("clear")
    await client.stream(key)
    await stream_silence_until(client, lambda: client.received.events.count("clear") > clears)


async def test_stream_call_delivers_each_key_once_and_speaks_the_menu_as_media(
    flask_ivr: Any, make_engine: Callable[..., VoxflowApp]
) -> None:
    seen = flask_ivr.seen
    app = make_engine(webhook=flask_ivr.url, listen=False,
                      stream_listen=f"127.0.0.1:{free_tcp_port()}")
    async with app:
        assert app.stream_server is not None
        async with connect(app.stream_server.url) as ws:
            client = MediaStreamsClient(ws)
            await client.open(**{"from": "+4930123456", "to": "+49211555"})
            await asyncio.to_thread(seen.wait_type, "session_start", 10)
            # "4" in-band (a DTMF tone in the caller's audio) and reported again as a dtmf
            # message by the bridge: one press.
            await press_during_prompt(client, [
                *frames_of(generate_sequence("4", on_ms=100, off_ms=60, seed=7)), "4"])
            await press_during_prompt(client, ["7"])  # message only
            await press_during_prompt(client, ["3"])
            await client.stop()
            await asyncio.to_thread(seen.wait_type, "session_end", 10)
            client.reader.cancel()
    assert app.calls == {}  # the runner finished once session_end was handed over

    events = seen.of()
    types = [event["type"] for event in events]
    assert types[0] == "session_start"
    session = events[0]["session"]
    assert (session["from_phone_number"], session["to_phone_number"]) == (
        "+4930123456", "+49211555")
    assert {event["session"]["id"] for event in events} == {session["id"]}
    assert [e["digit"] for e in events if e["type"] == "dtmf_received"] == ["4", "7", "3"]
    assert types.count("session_end") == 1 and types[-1] == "session_end"
    assert types.count("assistant_speak") == 4  # the menu, then again after each key

    received = client.received.events
    assert received.count("clear") == 3  # one per key pressed during the prompt
    first_clear = received.index("clear")
    menu = np.concatenate([s for _, s in client.received.media[:received[:first_clear]
                                                               .count("media")]])
    frames = menu[: menu.size // 160 * 160].reshape(-1, 160)
    loud = [rms(frame) > SPEECH_RMS for frame in frames]
    assert sum(loud) >= PROMPT_FRAMES  # the menu was heard as speech before the first key
    assert rms(menu) > SPEECH_RMS
