import json
import logging
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from voxflow.engine.records import (
    MASK,
    CallRecordStore,
    EntryKind,
    default_records_path,
    mask_payload,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CallRecordStore]:
    records = CallRecordStore(tmp_path / "calls.sqlite3", flush_interval_s=0.01)
    yield records
    records.close()


def record_short_call(store: CallRecordStore, call_id: str, started_at: float) -> None:
    store.start_call(
        call_id,
        from_number="+4930123",
        to_number="+4940456",
        direction="inbound",
        transport="sip",
        started_at=started_at,
    )
    store.add_entry(call_id, EntryKind.EVENT, "session_start", {"type": "session_start"})
    store.add_entry(
        call_id,
        EntryKind.DELIVERY,
        "session_start",
        {"error": None},
        latency_ms=42.5,
        outcome="ok",
    )
    store.add_entry(call_id, EntryKind.ACTION, "speak", {"type": "speak", "text": "Hi"})
    store.end_call(call_id, "hangup_by_assistant", ended_at=started_at + 12.5)


def test_round_trip(store: CallRecordStore) -> None:
    record_short_call(store, "call-1", 1_700_000_000.0)
    assert store.flush()
    [summary] = store.recent_calls()
    assert summary.call_id == "call-1"
    assert summary.from_number == "+4930123"
    assert summary.end_reason == "hangup_by_assistant"
    assert summary.duration_s == 12.5
    assert summary.entry_count == 3
    timeline = store.timeline("call-1")
    assert [(e.kind, e.type) for e in timeline] == [
        ("event", "session_start"),
        ("delivery", "session_start"),
        ("action", "speak"),
    ]
    assert timeline[1].latency_ms == 42.5 and timeline[1].outcome == "ok"
    assert timeline[2].payload == {"type": "speak", "text": "Hi"}
    assert timeline[0].monotonic <= timeline[2].monotonic
    assert store.call("call-1") == summary
    assert store.call("nope") is None
    journal = sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "wal"


def test_filters_and_newest_first(store: CallRecordStore) -> None:
    for index in range(5):
        record_short_call(store, f"call-{index}", 1_700_000_000.0 + index)
    store.start_call("out-1", to_number="+111", direction="outbound", started_at=1_700_000_100.0)
    assert store.flush()
    assert [c.call_id for c in store.recent_calls(limit=3)] == ["out-1", "call-4", "call-3"]
    assert [c.call_id for c in store.recent_calls(direction="outbound")] == ["out-1"]
    assert [c.call_id for c in store.recent_calls(number="+111")] == ["out-1"]
    assert len(store.recent_calls(since=1_700_000_003.0)) == 3
    assert len(store.recent_calls(end_reason="hangup_by_assistant")) == 5
    assert store.recent_calls(end_reason="transfer") == []


def test_secret_entries_are_stored_masked(store: CallRecordStore) -> None:
    store.start_call("pin")
    event = {"type": "dtmf_received", "digit": "7", "session": {"id": "pin"}}
    store.add_entry("pin", EntryKind.EVENT, "dtmf_received", event, secret=True)
    assert store.flush()
    [entry] = store.timeline("pin")
    assert entry.secret
    assert entry.payload == {"type": "dtmf_received", "digit": MASK, "session": {"id": "pin"}}
    raw = store.path.read_bytes() + Path(f"{store.path}-wal").read_bytes()
    assert b'"digit": "7"' not in raw
    assert mask_payload({"a": [{"text": "1234"}]}) == {"a": [{"text": MASK}]}


def test_concurrent_calls_keep_their_own_order(store: CallRecordStore) -> None:
    def run_call(index: int) -> None:
        call_id = f"c{index}"
        store.start_call(call_id, started_at=float(index))
        for step in range(50):
            store.add_entry(call_id, EntryKind.LINE, f"step-{step}")
        store.end_call(call_id, "caller_hangup")

    threads = [threading.Thread(target=run_call, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.flush()
    assert len(store.recent_calls(limit=100)) == 8
    for index in range(8):
        assert [e.type for e in store.timeline(f"c{index}")] == [f"step-{s}" for s in range(50)]


def test_locked_database_delays_but_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "calls.sqlite3"
    store = CallRecordStore(path, flush_interval_s=0.01, retry_interval_s=0.02, busy_timeout_s=0.01)
    store.start_call("before")
    assert store.flush()
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    with caplog.at_level(logging.ERROR):
        record_short_call(store, "during-lock", 1_700_000_000.0)  # returns at once
        assert not store.flush(timeout_s=0.2)
        assert store.pending_count == 5
    assert "database is locked" in caplog.text
    locker.execute("COMMIT")
    locker.close()
    assert store.flush()
    assert len(store.timeline("during-lock")) == 3
    assert store.call("during-lock") is not None
    store.close()


def test_unwritable_location_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A regular file where the directory should be: fails for every user, root included.
    blocker = tmp_path / "records"
    blocker.write_text("not a directory")
    store = CallRecordStore(blocker / "calls.sqlite3", flush_interval_s=0.01, retry_interval_s=0.02)
    with caplog.at_level(logging.ERROR):
        record_short_call(store, "lost?", 1_700_000_000.0)
        assert not store.flush(timeout_s=0.2)
    assert "cannot write to" in caplog.text and "keeping 5 record(s) in memory" in caplog.text
    assert store.recent_calls() == []
    blocker.unlink()  # the operator fixes the location: the kept records land
    assert store.flush()
    assert [c.call_id for c in store.recent_calls()] == ["lost?"]
    assert store.close()


def test_default_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_records_path() == tmp_path / "voxflow" / "calls.sqlite3"


DISK_FULL_SCRIPT = """
import json, logging, os, resource, signal, sys
from voxflow.engine.records import CallRecordStore, EntryKind

logging.basicConfig(level=logging.ERROR)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large write fails (EFBIG), not the process
path = sys.argv[1]
store = CallRecordStore(path, flush_interval_s=0.01, retry_interval_s=0.05)
store.start_call("before")
assert store.flush()
largest = max(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (largest + 16384, hard))  # the disk is now "full"
store.start_call("during")
for index in range(200):  # about 400 KB of entries: far past what fits
    store.add_entry("during", EntryKind.EVENT, "dtmf_received", {"pad": "x" * 2000, "i": index})
written_while_full = store.flush(timeout_s=1.0)
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # space is freed
written_after = store.flush(timeout_s=10.0)
print(json.dumps({"while_full": written_while_full, "after": written_after,
                  "entries": len(store.timeline("during"))}))
store.close()
"""


def test_disk_full_keeps_records_in_memory_and_writes_them_later(tmp_path: Path) -> None:
    # A real "disk full": the writer process may not grow any file past a size limit
    # (RLIMIT_FSIZE), so SQLite's writes fail as on a full file system.
    script = tmp_path / "disk_full.py"
    script.write_text(DISK_FULL_SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "calls.sqlite3")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"while_full": False, "after": True, "entries": 200}
    assert "call records: cannot write" in done.stderr
