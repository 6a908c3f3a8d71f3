"""Faults lose nothing: an assistant WebSocket that drops mid-call, a lossy and jittery caller
stream, a caller hanging up during a slow webhook answer or a transfer, SIGTERM with a live
call, a locked records database, and PIN digits kept out of the records.

Everything is real: the engine on 127.0.0.1, callers from the built-in softphone or the sans-IO
fleet of ``benchmarks/sip_caller.py``, webhooks under werkzeug, a ``websockets`` server, a
``voxflow serve`` subprocess and a second SQLite connection.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from peers import HOST, free_port_block
from sip_caller import CallerFleet
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request as WsRequest
from websockets.http11 import Response as WsResponse
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from voxflow.dispatch import InProcessDispatcher
from voxflow.engine.records import MASK, CallRecordStore
from voxflow.errors import SipStateError
from voxflow.server.app import VoxflowApp
from voxflow.server.config import ServeSettings
from voxflow.testing.softphone import PhoneCall, Softphone

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
Behaviour = Callable[[dict[str, Any]], tuple[float, Any]]
"""event → (seconds to wait before answering, JSON answer or None for 204)."""


# -- a webhook whose answers the test decides ---------------------------------------------------


@dataclass
class Hook:
    """A werkzeug webhook: every event it got (in arrival order) and its URL."""

    url: str
    events: list[dict[str, Any]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        with self.changed:
            return [e for e in self.events if e.get("type") == kind]

    def digits(self) -> str:
        return "".join(e["digit"] for e in self.of_type("dtmf_received"))

    async def wait(self, predicate: Callable[[Hook], bool], within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"webhook saw {[e.get('type') for e in self.events]}")
            await asyncio.sleep(0.02)


@pytest.fixture
def hook_factory() -> Iterator[Callable[[Behaviour], Hook]]:
    servers: list[Any] = []

    def start(behaviour: Behaviour) -> Hook:
        hook = Hook("")

        @Request.application
        def app(request: Request) -> Response:
            event = json.loads(request.get_data())
            with hook.changed:
                hook.events.append(event)
            delay, answer = behaviour(event)
            time.sleep(delay)
            if answer is None:
                return Response(status=204)
            return Response(json.dumps(answer), content_type="application/json")

        server = make_server(HOST, 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        hook.url = f"http://{HOST}:{server.server_port}/"
        return hook

    yield start
    for server in servers:
        server.shutdown()


def quiet(event: dict[str, Any]) -> tuple[float, Any]:
    return 0.0, None


def engine(tmp_path: Path, **options: Any) -> VoxflowApp:
    """A keys-only engine (no recogniser to load) writing records to ``tmp_path``."""
    base = free_port_block(40)
    settings = ServeSettings.model_validate({
        "sip_listen": f"{HOST}:0", "rtp_ports": f"{base}-{base + 39}", "listen": False,
        "account_id": "account-123", "records": str(tmp_path / "calls.sqlite3"), **options})
    return VoxflowApp(settings, records=CallRecordStore(settings.records,
                                                       flush_interval_s=0.05,
                                                       retry_interval_s=0.2))


def target(app: VoxflowApp) -> str:
    host, port = app.line.address
    return f"sip:0049211555@{host}:{port}"


async def press_all(call: PhoneCall, keys: str, gap_s: float = 0.25) -> None:
    for key in keys:
        call.press(key)
        await asyncio.sleep(gap_s)


# -- WebSocket assistant dropping mid-call --------------------------------------------------------


async def test_websocket_drop_mid_call_delivers_the_key_after_reconnect_once_in_order(
        tmp_path: Path) -> None:
    received: list[tuple[int, dict[str, Any]]] = []
    connections = 0
    down = asyncio.Event()

    def refuse_while_down(connection: ServerConnection, request: WsRequest) -> WsResponse | None:
        return connection.respond(503, "down\n") if down.is_set() else None

    async def assistant(connection: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        mine = connections
        async for frame in connection:
            event = json.loads(frame)
            received.append((mine, event))
            if event["type"] == "session_start":
                await connection.send(json.dumps({
                    "type": "speak", "session_id": event["session"]["id"],
                    "text": "Hello, press some keys."}))
            elif event["type"] == "dtmf_received" and event["digit"] == "1":
                down.set()  # the assistant goes away right after the first key
                await connection.close()
                return

    def digits() -> list[tuple[int, str]]:
        return [(n, e["digit"]) for n, e in received if e["type"] == "dtmf_received"]

    async with serve(assistant, HOST, 0, process_request=refuse_while_down) as server:
        port = server.sockets[0].getsockname()[1]
        async with engine(tmp_path, websocket=f"ws://{HOST}:{port}/") as app, Softphone() as phone:
            call = await phone.dial(target(app))
            for _ in range(200):
                if any(e["type"] == "assistant_speak" for _, e in received):
                    break
                await asyncio.sleep(0.02)
            call.press("1")
            for _ in range(200):
                if down.is_set():
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)  # the engine has noticed the drop
            await press_all(call, "23")  # while nobody listens
            assert digits() == [(1, "1")]
            await asyncio.sleep(0.5)
            down.clear()
            for _ in range(300):
                if len(digits()) >= 3:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.5)  # room for a duplicate to show up
            got = digits()
            call.hangup()
            await call.wait_ended(5)
    assert [d for _, d in got] == ["1", "2", "3"], got
    assert got[1][0] > 1 and got[2][0] > 1  # delivered over a new connection
    assert connections >= 2


# -- RTP loss and jitter --------------------------------------------------------------------------


class LossyJitterySocket:
    """The caller's RTP socket on a bad network: drops ``loss`` of the datagrams and delays the
    rest by 0-30 ms (±15 ms around the mean, so packets overtake each other); seeded."""

    def __init__(self, sock: socket.socket, loss: float, seed: int) -> None:
        self._sock = sock
        self._loss = loss
        self._rng = random.Random(seed)
        self.sent = self.dropped = 0

    def sendto(self, data: bytes, address: tuple[str, int]) -> None:
        self.sent += 1
        if self._rng.random() < self._loss:
            self.dropped += 1
            return
        delay = self._rng.uniform(0.0, 0.030)
        asyncio.get_running_loop().call_later(delay, self._sock.sendto, data, address)

    def close(self) -> None:
        self._sock.close()


async def test_rtp_loss_and_jitter_every_key_exactly_once(
        tmp_path: Path, hook_factory: Callable[[Behaviour], Hook]) -> None:
    hook = hook_factory(quiet)
    keys = "0123456789*#" * 2
    async with engine(tmp_path, webhook=hook.url) as app:
        fleet = await CallerFleet(free_port_block(20)).start()
        try:
            call = await fleet.dial(target(app), "4930111222")
            lossy = LossyJitterySocket(call.rtp, loss=0.05, seed=8)
            call.rtp = lossy  # type: ignore[assignment]  # duck-typed: sendto and close
            await hook.wait(lambda h: bool(h.of_type("session_start")))
            start = time.time() + 0.2
            for index, key in enumerate(keys):
                fleet.schedule(start + index * 0.25, call, key, 100.0)
            await hook.wait(lambda h: len(h.of_type("dtmf_received")) >= len(keys), 20)
            await asyncio.sleep(0.5)  # a duplicate would arrive by now
        finally:
            await fleet.close()
    assert hook.digits() == keys
    assert lossy.dropped > 0 and lossy.dropped / lossy.sent < 0.1, (lossy.dropped, lossy.sent)


# -- the caller hangs up while the assistant is busy ----------------------------------------------


async def test_hangup_while_webhook_answers_gives_one_session_end(
        tmp_path: Path, hook_factory: Callable[[Behaviour], Hook]) -> None:
    def slow_start(event: dict[str, Any]) -> tuple[float, Any]:
        if event["type"] == "session_start":
            return 1.5, {"type": "speak", "session_id": event["session"]["id"],
                         "text": "Sorry for the wait."}
        return 0.0, None

    hook = hook_factory(slow_start)
    async with engine(tmp_path, webhook=hook.url) as app, Softphone() as phone:
        call = await phone.dial(target(app))
        await hook.wait(lambda h: bool(h.of_type("session_start")))
        call.hangup()  # the webhook is still thinking
        await call.wait_ended(5)
        await hook.wait(lambda h: bool(h.of_type("session_end")))
        await asyncio.sleep(2.0)  # the late answer arrives; nothing more may follow
        assert not app.calls
    assert len(hook.of_type("session_end")) == 1
    assert [e["type"] for e in hook.events] == ["session_start", "session_end"]
    app.records.flush()
    (record,) = app.records.recent_calls()
    assert record.end_reason and record.ended_at is not None
    timeline = app.records.timeline(record.call_id)
    assert [e.type for e in timeline if e.kind == "event"] == ["session_start", "session_end"]
    # The late speak is recorded as answered, and no prompt started on the ended call.
    assert [e.type for e in timeline if e.kind == "delivery"].count("session_start") == 1


async def test_hangup_during_transfer_gives_one_session_end(
        tmp_path: Path, hook_factory: Callable[[Behaviour], Hook]) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a target that never answers
    silent.bind((HOST, 0))
    silent.setblocking(False)
    silent_port = silent.getsockname()[1]

    def transfer(event: dict[str, Any]) -> tuple[float, Any]:
        if event["type"] == "session_start":
            return 0.0, {"type": "transfer", "session_id": event["session"]["id"],
                         "target_phone_number": f"sip:4921100200@{HOST}:{silent_port}",
                         "timeout": 10}
        return 0.0, None

    hook = hook_factory(transfer)
    try:
        async with engine(tmp_path, webhook=hook.url) as app, Softphone() as phone:
            # The phone refuses the REFER: the engine dials the target itself (bridged
            # transfer), and that call rings on and on.
            call = await phone.dial(target(app), accept_transfer=False)
            for _ in range(250):
                if call.refers:
                    break
                await asyncio.sleep(0.02)
            assert call.refers
            seen = b""
            for _ in range(150):
                try:
                    seen += silent.recv(65536)
                except BlockingIOError:
                    await asyncio.sleep(0.02)
                if b"INVITE" in seen:
                    break
            assert seen.startswith(b"INVITE"), seen[:80]
            call.hangup()  # during the transfer
            await call.wait_ended(5)
            await hook.wait(lambda h: bool(h.of_type("session_end")))
            await asyncio.sleep(1.0)
            assert not app.calls
    finally:
        silent.close()
    assert [e["type"] for e in hook.events] == ["session_start", "session_end"]
    app.records.flush()
    (record,) = app.records.recent_calls()
    assert record.end_reason and record.ended_at is not None
    lines = [e.type for e in app.records.timeline(record.call_id) if e.kind == "line"]
    assert "transfer" in lines and "transfer_bridge" in lines


# -- SIGTERM with a live call ---------------------------------------------------------------------

READY = re.compile(r"voxflow ready: sip:\S+@[\d.]+:(\d+)")


@dataclass
class ServeProcess:
    process: subprocess.Popen[str]
    port: int
    log: list[str]

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.log)


def start_serve(webhook: str, records: Path, grace_s: float) -> ServeProcess:
    base = free_port_block(20)
    env = {**os.environ, "VOXFLOW_SHUTDOWN_GRACE": str(grace_s), "VOXFLOW_LISTEN": "false"}
    process = subprocess.Popen(
        [sys.executable, "-m", "voxflow.server.cli", "serve", "--webhook", webhook,
         "--sip-listen", f"{HOST}:0", "--rtp-ports", f"{base}-{base + 19}",
         "--records", str(records), "--log-level", "INFO"],
        stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert process.stderr is not None
    stderr = process.stderr
    log: list[str] = []
    for line in stderr:
        log.append(line)
        if found := READY.search(line):
            threading.Thread(target=lambda: log.extend(stderr), daemon=True).start()
            return ServeProcess(process, int(found.group(1)), log)
    raise AssertionError("voxflow serve did not start: " + "".join(log))


async def test_sigterm_refuses_new_calls_lets_the_live_one_run_then_ends_it(
        tmp_path: Path, hook_factory: Callable[[Behaviour], Hook]) -> None:
    hook = hook_factory(quiet)
    records = tmp_path / "calls.sqlite3"
    serve_process = start_serve(hook.url, records, grace_s=3.0)
    uri = f"sip:0049211555@{HOST}:{serve_process.port}"
    try:
        async with Softphone() as phone:
            call = await phone.dial(uri)
            await hook.wait(lambda h: bool(h.of_type("session_start")))
            signalled = time.monotonic()
            serve_process.process.send_signal(signal.SIGTERM)
            for _ in range(200):
                if serve_process.saw("refusing new calls"):
                    break
                await asyncio.sleep(0.02)
            with pytest.raises(SipStateError, match="503"):
                await phone.dial(uri, max_wait=5)
            await press_all(call, "42")  # the live call still works during the grace period
            await hook.wait(lambda h: h.digits() == "42", 3)
            reason, by = await call.wait_ended(10)
            ended_after = time.monotonic() - signalled
        code = await asyncio.to_thread(serve_process.process.wait, 15)
    finally:
        if serve_process.process.poll() is None:
            serve_process.process.kill()
    assert code == 0, "".join(serve_process.log)
    assert by == "remote" and 2.5 < ended_after < 8, (reason, by, ended_after)
    assert len(hook.of_type("session_end")) == 1
    assert len(hook.of_type("session_start")) == 1  # the refused call never became a session
    session_id = hook.of_type("session_end")[0]["session"]["id"]
    shown = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "voxflow.server.cli", "calls", "show", session_id,
         "--records", str(records)],
        capture_output=True, text=True, timeout=30, cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"})
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "session_end" in shown.stdout and "dtmf_received" in shown.stdout


async def test_sigterm_exits_as_soon_as_the_live_call_finishes(
        tmp_path: Path, hook_factory: Callable[[Behaviour], Hook]) -> None:
    hook = hook_factory(quiet)
    serve_process = start_serve(hook.url, tmp_path / "calls.sqlite3", grace_s=30.0)
    try:
        async with Softphone() as phone:
            call = await phone.dial(f"sip:0049211555@{HOST}:{serve_process.port}")
            await hook.wait(lambda h: bool(h.of_type("session_start")))
            serve_process.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            assert serve_process.process.poll() is None  # waiting for the live call
            signalled = time.monotonic()
            call.hangup()
            await call.wait_ended(5)
        code = await asyncio.to_thread(serve_process.process.wait, 15)
        took = time.monotonic() - signalled
    finally:
        if serve_process.process.poll() is None:
            serve_process.process.kill()
    assert code == 0 and took < 10, (code, took)
    assert len(hook.of_type("session_end")) == 1


# -- the records database locked by someone else --------------------------------------------------


async def test_locked_records_database_call_continues_and_records_land_later(
        tmp_path: Path, hook_factory: Callable[[Behaviour], Hook],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    hook = hook_factory(quiet)
    path = tmp_path / "calls.sqlite3"
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("PRAGMA journal_mode=WAL")  # as the engine opens it: readers never wait
    blocker.execute("BEGIN EXCLUSIVE")  # another program holds the write lock
    try:
        async with engine(tmp_path, webhook=hook.url) as app, Softphone() as phone:
            call = await phone.dial(target(app))
            await press_all(call, "123")
            await hook.wait(lambda h: h.digits() == "123", 5)  # the call went on
            assert app.records.pending_count > 0  # held in memory, nothing written yet
            assert not app.records.recent_calls()
            for _ in range(150):  # logged once the writer's busy timeout ran out
                if any("call records: cannot write" in m for m in caplog.messages):
                    break
                await asyncio.sleep(0.02)
            assert any("database is locked" in m for m in caplog.messages)
            blocker.execute("COMMIT")
            assert await asyncio.to_thread(app.records.flush, 5.0)
            call.hangup()
            await call.wait_ended(5)
            await hook.wait(lambda h: bool(h.of_type("session_end")))
    finally:
        if blocker.in_transaction:
            blocker.execute("ROLLBACK")
        blocker.close()
    (record,) = app.records.recent_calls()
    timeline = app.records.timeline(record.call_id)
    assert [e.payload["digit"] for e in timeline if e.type == "key" and e.payload] == list("123")
    assert [e.type for e in timeline if e.kind == "event"][-1] == "session_end"
    assert any("writing to" in m and "again" in m for m in caplog.messages)


# -- PIN digits masked -----------------------------------------------------------------------------


def load_pin_example() -> Any:
    spec = importlib.util.spec_from_file_location("pin_entry_sdk", ROOT / "examples" /
                                                  "pin_entry_sdk.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_pin_digits_masked_in_records_and_logs(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    example = load_pin_example()
    base = free_port_block(40)
    settings = ServeSettings.model_validate({
        "sip_listen": f"{HOST}:0", "rtp_ports": f"{base}-{base + 39}", "listen": False,
        "assistant": "unused:assistant", "mask_digits_in_records": True,
        "records": str(tmp_path / "calls.sqlite3")})
    app = VoxflowApp(settings, dispatcher=InProcessDispatcher(example.assistant),
                     records=CallRecordStore(settings.records, flush_interval_s=0.05))
    async with app, Softphone() as phone:
        call = await phone.dial(target(app))
        await asyncio.sleep(0.5)
        await press_all(call, example.EXPECTED_PIN + "#", 0.3)
        _, by = await call.wait_ended(10)  # right PIN: thanks, goodbye, hang-up
    assert by == "remote"
    app.records.flush()
    (record,) = app.records.recent_calls()
    timeline = app.records.timeline(record.call_id)
    keys = [e for e in timeline
            if (e.kind, e.type) in (("line", "key"), ("event", "dtmf_received"))]
    assert len(keys) == 10 and all(e.secret and e.payload and e.payload["digit"] == MASK
                                   for e in keys)
    spoken = [e.payload["text"] for e in timeline
              if e.kind == "action" and e.type == "speak" and e.payload]
    assert any("PIN is correct" in text for text in spoken)  # the real PIN reached the assistant
    # The engine's and the assistant's logs (the softphone, the caller, logs its own keys).
    logged = [r.getMessage() for r in caplog.records if not r.getMessage().startswith("phone ")]
    assert sum(f"key {MASK} via rfc4733" in m for m in logged) == 5
    assert any("collected ****" in m for m in logged)  # the SDK collector's secret=True
    shown = re.compile(r"key [0-9*#] via|digit\W+[0-9*#]|(?<![0-9a-f.])1234(?![0-9a-f])")
    assert not [m for m in logged if shown.search(m)]
