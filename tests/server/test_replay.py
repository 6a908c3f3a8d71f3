"""``voxflow replay``: record a real call through the engine (simulated line, seed IVR webhook),
then replay it with the real command against the same webhook and against a changed one."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from peers import HOST
from werkzeug.serving import make_server

from voxflow.engine.records import CallRecordStore, EntryKind
from voxflow.media.dtmf import DtmfSource
from voxflow.sdk import Assistant, Menu, hangup, speak, transfer
from voxflow.server.app import VoxflowApp
from voxflow.server.replay import recorded_exchanges

MENU_TEXT = ("Welcome to the demo company. Press 1 for sales, press 2 for support, "
             "or press the hash key to end the call.")


def run_replay(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "220", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run([sys.executable, "-m", "voxflow.server.cli", "replay", *args],
                          capture_output=True, text=True, timeout=60, env=env, check=False)


@pytest.fixture
def changed_ivr() -> Iterator[str]:
    """The seed IVR with one change: key 2 now goes to another support number."""
    menu = Menu(
        speak(MENU_TEXT, user_input_timeout_seconds=8),
        {"1": transfer("+49211100200"), "2": transfer("+49211100299"),
         "#": [speak("Goodbye!"), hangup()]},
    )
    assistant = Assistant(on_session_start=menu, on_dtmf_received=menu,
                          on_user_input_timeout=menu)
    server = make_server(HOST, 0, assistant.flask_app("/"), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{HOST}:{server.server_port}/"
    server.shutdown()
    thread.join(5)


async def record_call(app: VoxflowApp, seen: Any, keys: str) -> str:
    """One simulated call: wait for the menu, press ``keys``, wait until the call is over."""
    loop = asyncio.get_running_loop()
    call_id = app.start_simulated_call()
    deadline = loop.time() + 15
    while "assistant_speak" not in seen.types(call_id):
        assert loop.time() < deadline, f"no menu prompt; webhook saw {seen.types(call_id)}"
        await asyncio.sleep(0.02)
    for key in keys:
        app.simulated[call_id].press(key, DtmfSource.STREAM)
    while call_id in app.calls:
        assert loop.time() < deadline, f"call did not end; webhook saw {seen.types(call_id)}"
        await asyncio.sleep(0.02)
    return call_id


async def test_replay_same_webhook_is_identical_and_changed_webhook_differs(
    make_engine: Callable[..., VoxflowApp], flask_ivr: Any, changed_ivr: str, tmp_path: Path
) -> None:
    app = make_engine(webhook=flask_ivr.url)
    async with app:
        call_id = await record_call(app, flask_ivr.seen, "2")
    records = str(app.records.path)

    same = await asyncio.to_thread(run_replay, call_id, "--webhook", flask_ivr.url,
                                   "--records", records)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "dtmf_received digit=2" in same.stdout
    assert "transfer +49211100201" in same.stdout
    assert "answered as recorded" in same.stdout
    assert "DIFFERENT" not in same.stdout
    # The replay reached the webhook again with the recorded session: a second key press 2.
    presses = [e for e in flask_ivr.seen.of(call_id) if e["type"] == "dtmf_received"]
    assert [e["digit"] for e in presses] == ["2", "2"]
    assert presses[1]["session"] == {**presses[0]["session"], "account_id": ""}

    changed = await asyncio.to_thread(run_replay, call_id, "--webhook", changed_ivr,
                                      "--records", records, "--account-id", "account-123")
    assert changed.returncode == 1, changed.stdout + changed.stderr
    out = changed.stdout
    assert "DIFFERENT" in out
    assert "1 of" in out and "answered differently" in out
    removed = [line for line in out.splitlines() if line.startswith("-") and "target" in line]
    added = [line for line in out.splitlines() if line.startswith("+") and "target" in line]
    assert removed and "+49211100201" in removed[0]
    assert added and "+49211100299" in added[0]


def test_replay_of_an_unknown_call_says_so(tmp_path: Path) -> None:
    store = CallRecordStore(tmp_path / "calls.sqlite3")
    store.start_call("known", from_number="+491", to_number="+492", direction="inbound")
    store.close()
    result = run_replay("missing", "--webhook", "http://127.0.0.1:9/",
                        "--records", str(tmp_path / "calls.sqlite3"))
    assert result.returncode == 2
    assert "no call 'missing'" in result.stdout


def test_answers_are_matched_to_events_by_delivery_order(tmp_path: Path) -> None:
    # A key pressed while session_start is still being answered: both events are recorded
    # before either answer, and each answer must still go with its own event.
    store = CallRecordStore(tmp_path / "calls.sqlite3")
    store.start_call("c1", from_number="+491", to_number="+492", direction="inbound")
    store.add_entry("c1", EntryKind.EVENT, "session_start", {"type": "session_start"})
    store.add_entry("c1", EntryKind.EVENT, "dtmf_received", {"type": "dtmf_received",
                                                             "digit": "2"})
    store.add_entry("c1", EntryKind.DELIVERY, "session_start", None, outcome="ok",
                    latency_ms=5.0)
    store.add_entry("c1", EntryKind.ACTION, "speak", {"type": "speak", "session_id": "c1",
                                                      "text": "menu"})
    store.add_entry("c1", EntryKind.DELIVERY, "dtmf_received", None, outcome="ok",
                    latency_ms=4.0)
    store.add_entry("c1", EntryKind.ACTION, "transfer", {
        "type": "transfer", "session_id": "c1", "target_phone_number": "+49211100201"})
    store.add_entry("c1", EntryKind.EVENT, "session_end", {"type": "session_end"})
    assert store.flush()
    call = store.call("c1")
    assert call is not None
    exchanges = recorded_exchanges(store, call, "acct")
    store.close()
    assert [x.event_type for x in exchanges] == ["session_start", "dtmf_received", "session_end"]
    assert [[a["type"] for a in x.recorded_actions] for x in exchanges] == [
        ["speak"], ["transfer"], []]
    assert exchanges[2].recorded_outcome is None  # its delivery never got recorded
    assert exchanges[1].event["session"] == {
        "id": "c1", "account_id": "acct", "phone_number": "+492", "direction": "inbound",
        "from_phone_number": "+491", "to_phone_number": "+492"}
