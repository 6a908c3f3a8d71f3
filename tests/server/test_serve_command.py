"""``voxflow serve`` as a user runs it (a subprocess), with both documented flag forms, and
``voxflow calls`` / ``voxflow calls show ID`` reading what it recorded."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from peers import HOST, Baresip, free_port_block, free_sip_port
from websockets.asyncio.client import ClientConnection, connect

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]

REPO = Path(__file__).resolve().parents[2]
VOXFLOW = Path(sys.executable).parent / "voxflow"
READY = re.compile(r"voxflow ready: sip:voxflow@127\.0\.0\.1:(\d+), assistant (.+)")


class ServeProcess:
    """``voxflow serve ...`` with its stderr collected by a reader thread."""

    def __init__(self, args: list[str]) -> None:
        env = {**os.environ, "COLUMNS": "200"}
        self.popen = subprocess.Popen([str(VOXFLOW), "serve", *args], cwd=REPO, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, pattern: re.Pattern[str], timeout: float = 15.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := pattern.search(line):
                    return found
            if self.popen.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern.pattern!r}; output:\n"
                             + "\n".join(self.lines[-40:]))

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(15)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            raise


@pytest.fixture
def serve() -> Iterator[Callable[..., ServeProcess]]:
    started: list[ServeProcess] = []

    def start(*args: str) -> ServeProcess:
        process = ServeProcess(list(args))
        started.append(process)
        return process

    yield start
    for process in started:
        if process.popen.poll() is None:
            process.popen.kill()
            process.popen.wait()


def common_flags(tmp_path: Path) -> tuple[list[str], int]:
    port = free_sip_port()
    base = free_port_block(20)
    return ["--sip-listen", f"{HOST}:{port}", "--rtp-ports", f"{base}-{base + 19}",
            "--records", str(tmp_path / "calls.sqlite3"), "--account-id", "acct-7"], port


def voxflow_cli(*args: str) -> str:
    done = subprocess.run([str(VOXFLOW), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=30, env={**os.environ, "COLUMNS": "250"})
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def test_serve_with_webhook_flag_transfers_on_key_one(
    serve: Callable[..., ServeProcess], flask_ivr: Any, baresip: Callable[..., Baresip],
    trunk: Any, tmp_path: Path,
) -> None:
    flags, port = common_flags(tmp_path)
    engine = serve("--webhook", flask_ivr.url, *flags, "--transfer-domain", trunk.uri)
    ready = await asyncio.to_thread(engine.wait_line, READY)
    assert int(ready.group(1)) == port and ready.group(2) == flask_ivr.url
    assert sum("voxflow ready" in line for line in engine.lines) == 1

    peer = baresip("caller", user="4930123456", answermode="auto")
    await asyncio.to_thread(peer.start)
    await asyncio.to_thread(peer.dial, f"sip:0049211555@{HOST}:{port}")
    await asyncio.to_thread(peer.wait_event, "CALL_ESTABLISHED")
    await asyncio.to_thread(flask_ivr.seen.wait_type, "assistant_speak", 15)
    await asyncio.to_thread(peer.send_digits, "1")
    transfer = await asyncio.to_thread(peer.wait_event, "TRANSFER", 10)
    assert "+49211100200@" in str(transfer)
    await asyncio.to_thread(flask_ivr.seen.wait_type, "session_end", 10)
    assert engine.stop() == 0
    assert any("voxflow stopped" in line for line in engine.lines)

    session = flask_ivr.seen.of()[0]["session"]
    assert session["account_id"] == "acct-7"
    listing = voxflow_cli("calls", "--records", str(tmp_path / "calls.sqlite3"))
    assert session["id"] in listing and "+4930123456" in listing
    timeline = voxflow_cli("calls", "show", session["id"], "--records",
                           str(tmp_path / "calls.sqlite3"))
    for step in ("session_start", "dtmf_received", "transfer", "session_end", "delivery"):
        assert step in timeline, timeline


async def test_serve_with_in_process_assistant_hangs_up_on_hash(
    serve: Callable[..., ServeProcess], baresip: Callable[..., Baresip], tmp_path: Path,
) -> None:
    flags, port = common_flags(tmp_path)
    engine = serve("--assistant", "examples.ivr_menu_sdk:assistant", *flags)
    ready = await asyncio.to_thread(engine.wait_line, READY)
    assert "in-process examples.ivr_menu_sdk:assistant" in ready.group(2)

    peer = baresip("caller", user="4930123456")
    await asyncio.to_thread(peer.start)
    await asyncio.to_thread(peer.dial, f"sip:0049211555@{HOST}:{port}")
    await asyncio.to_thread(peer.wait_event, "CALL_ESTABLISHED")
    await asyncio.sleep(2.0)  # the menu is playing
    await asyncio.to_thread(peer.send_digits, "#")
    await asyncio.to_thread(peer.wait_event, "CALL_CLOSED", 10)
    assert engine.stop() == 0

    records = str(tmp_path / "calls.sqlite3")
    listing = voxflow_cli("calls", "--records", records)
    call_id = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", listing)
    assert call_id is not None, listing
    timeline = voxflow_cli("calls", "show", call_id.group(0), "--records", records)
    assert "digit=#" in timeline and "text=Goodbye!" in timeline and "session_end" in timeline


def test_serve_names_a_bad_setting(tmp_path: Path) -> None:
    done = subprocess.run([str(VOXFLOW), "serve", "--webhook", "http://127.0.0.1:9/",
                           "--sip-listen", "nowhere"], cwd=REPO, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2
    assert "sip_listen 'nowhere'" in done.stdout + done.stderr


STREAMS_READY = re.compile(r"voxflow media streams: (ws://\S+)")


async def _open_stream(url: str, **parameters: str) -> ClientConnection:
    """A Media Streams bridge's first two messages; returns the open connection."""
    ws = await connect(url)
    await ws.send('{"event": "connected", "protocol": "Call", "version": "1.0.0"}')
    start = {"accountSid": "AC7", "streamSid": "MZ7", "callSid": "CA7", "tracks": ["inbound"],
             "customParameters": parameters,
             "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}
    await ws.send(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": "MZ7",
                              "start": start}))
    return ws


async def test_serve_stream_token_flag_keeps_strangers_off_the_media_stream_line(
    serve: Callable[..., ServeProcess], tmp_path: Path,
) -> None:
    flags, _ = common_flags(tmp_path)
    stream_port = free_sip_port()
    engine = serve("--assistant", "examples.ivr_menu_sdk:assistant", *flags,
                   "--stream-listen", f"{HOST}:{stream_port}", "--stream-token", "s3cret")
    url = (await asyncio.to_thread(engine.wait_line, STREAMS_READY)).group(1)

    stranger = await _open_stream(url)
    await asyncio.wait_for(stranger.wait_closed(), 10)
    assert (stranger.close_code, stranger.close_reason) == (1008, "unauthorised")

    bridge = await _open_stream(url, token="s3cret")
    first = json.loads(await asyncio.wait_for(bridge.recv(), 15))
    assert first["event"] == "media"  # the menu prompt comes back
    await bridge.close()
    assert engine.stop() == 0
