"""Call records: every event, action and delivery of every call, kept in SQLite.

Recording must never slow down or break a call. Writers only append to an in-memory list under
a lock; one background thread writes batches to SQLite (WAL mode, so readers such as
``voxflow calls`` never block it). When a write fails (database locked, disk full, directory
not writable) the error is logged once, the records stay in memory and the batch is retried,
so nothing is lost while the process lives.

Default location: ``$XDG_DATA_HOME/voxflow/calls.sqlite3`` (``~/.local/share/voxflow/...``).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_id     TEXT PRIMARY KEY,
    started_at  REAL NOT NULL,
    ended_at    REAL,
    from_number TEXT NOT NULL DEFAULT '',
    to_number   TEXT NOT NULL DEFAULT '',
    direction   TEXT NOT NULL DEFAULT '',
    end_reason  TEXT,
    transport   TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS entries (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id    TEXT NOT NULL,
    monotonic  REAL NOT NULL,
    wall       REAL NOT NULL,
    kind       TEXT NOT NULL,
    type       TEXT NOT NULL,
    payload    TEXT,
    latency_ms REAL,
    outcome    TEXT,
    secret     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS entries_by_call ON entries (call_id, seq);
CREATE INDEX IF NOT EXISTS calls_by_start ON calls (started_at);
"""

#: Payload keys whose values a secret entry hides (a PIN typed or spoken, an SMS text).
SECRET_KEYS = frozenset({"digit", "text", "ssml", "message"})
MASK = "***"


def default_records_path() -> Path:
    """Where call records live unless configured otherwise."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "voxflow" / "calls.sqlite3"


def mask_payload(payload: Mapping[str, Any], keys: Collection[str] = SECRET_KEYS) -> dict[str, Any]:
    """A copy of ``payload`` with the values of ``keys`` replaced, at any depth.

    The mask has a fixed length so it does not reveal how many digits a PIN has.
    """

    def hide(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: MASK if k in keys else hide(v) for k, v in value.items()}
        if isinstance(value, list):
            return [hide(item) for item in value]
        return value

    masked: dict[str, Any] = hide(payload)
    return masked


class EntryKind(StrEnum):
    """What an entry of a call's timeline records."""

    EVENT = "event"
    ACTION = "action"
    DELIVERY = "delivery"
    LINE = "line"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class CallSummary:
    """One row of the call list; times are unix seconds."""

    call_id: str
    started_at: float
    ended_at: float | None
    from_number: str
    to_number: str
    direction: str
    end_reason: str | None
    transport: str
    entry_count: int = 0

    @property
    def duration_s(self) -> float | None:
        """Call length, once the call has ended."""
        return None if self.ended_at is None else self.ended_at - self.started_at


@dataclass(frozen=True, slots=True)
class RecordEntry:
    """One step of a call's timeline."""

    call_id: str
    seq: int
    monotonic: float
    wall: float
    kind: str
    type: str
    payload: Any
    latency_ms: float | None
    outcome: str | None
    secret: bool


_Write = tuple[str, tuple[Any, ...]]
_START = (
    "INSERT OR IGNORE INTO calls"
    " (call_id, started_at, from_number, to_number, direction, transport)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_ENTRY = (
    "INSERT INTO entries"
    " (call_id, monotonic, wall, kind, type, payload, latency_ms, outcome, secret)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_END = "UPDATE calls SET ended_at = ?, end_reason = ? WHERE call_id = ?"


class CallRecordStore:
    """Append-only call records with a background writer; thread-safe, never raises on write.

    ``start_call``/``add_entry``/``end_call`` return at once. ``flush`` waits for the writer
    (for shutdown and tests). Queries read what has reached the database.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        flush_interval_s: float = 0.2,
        retry_interval_s: float = 1.0,
        busy_timeout_s: float = 1.0,
        masker: Callable[[Mapping[str, Any]], dict[str, Any]] = mask_payload,
    ) -> None:
        self.path = Path(path) if path is not None else default_records_path()
        self._flush_interval_s = flush_interval_s
        self._retry_interval_s = retry_interval_s
        self._busy_timeout_s = busy_timeout_s
        self._masker = masker
        self._pending: deque[_Write] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._failing_since: str | None = None
        self._connection: sqlite3.Connection | None = None
        self._thread = threading.Thread(target=self._write_loop, name="call-records", daemon=True)
        self._thread.start()

    # -- writing (any thread, never blocks on I/O) --------------------------------------------

    def _enqueue(self, sql: str, params: tuple[Any, ...]) -> None:
        with self._cond:
            self._pending.append((sql, params))
            self._cond.notify_all()

    def start_call(
        self,
        call_id: str,
        *,
        from_number: str = "",
        to_number: str = "",
        direction: str = "",
        transport: str = "",
        started_at: float | None = None,
    ) -> None:
        """Open a call's record."""
        started = time.time() if started_at is None else started_at
        self._enqueue(_START, (call_id, started, from_number, to_number, direction, transport))

    def add_entry(
        self,
        call_id: str,
        kind: EntryKind | str,
        entry_type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        latency_ms: float | None = None,
        outcome: str | None = None,
        secret: bool = False,
        wall: float | None = None,
        monotonic: float | None = None,
    ) -> None:
        """Append one step to a call's timeline; ``secret`` entries are masked before storing."""
        if payload is not None and secret:
            payload = self._masker(payload)
        text = None if payload is None else json.dumps(payload, default=str, ensure_ascii=False)
        self._enqueue(
            _ENTRY,
            (
                call_id,
                time.monotonic() if monotonic is None else monotonic,
                time.time() if wall is None else wall,
                str(kind),
                entry_type,
                text,
                latency_ms,
                outcome,
                int(secret),
            ),
        )

    def end_call(self, call_id: str, reason: str, *, ended_at: float | None = None) -> None:
        """Close a call's record with why it ended."""
        self._enqueue(_END, (time.time() if ended_at is None else ended_at, reason, call_id))

    @property
    def pending_count(self) -> int:
        """Records not yet in the database."""
        with self._cond:
            return len(self._pending)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything recorded so far is in the database; False on timeout."""
        with self._cond:
            self._cond.notify_all()
            return self._cond.wait_for(lambda: not self._pending, timeout_s)

    def close(self, timeout_s: float = 5.0) -> bool:
        """Write what is pending (up to ``timeout_s``), stop the writer; False if some is lost."""
        written = self.flush(timeout_s)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
        if not written:
            logger.error(
                "call records: %d record(s) could not be written to %s before shutdown",
                self.pending_count,
                self.path,
            )
        return written

    # -- the writer thread ---------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._stopping, self._flush_interval_s)
                if self._stopping and not self._pending:
                    break
                batch = list(self._pending)
            if not batch:
                continue
            if self._write(batch):
                with self._cond:
                    for _ in batch:
                        self._pending.popleft()
                    self._cond.notify_all()
            else:
                with self._cond:
                    if self._stopping:
                        break
                    self._cond.wait(self._retry_interval_s)
        if self._connection is not None:
            self._connection.close()

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=self._busy_timeout_s)
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.executescript(_SCHEMA)
            except sqlite3.Error:
                connection.close()
                raise
            self._connection = connection
        return self._connection

    def _write(self, batch: list[_Write]) -> bool:
        try:
            connection = self._connect()
            with connection:
                for sql, params in batch:
                    connection.execute(sql, params)
        except (sqlite3.Error, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if reason != self._failing_since:
                logger.error(
                    "call records: cannot write to %s (%s); keeping %d record(s) in memory and "
                    "retrying every %g s",
                    self.path,
                    reason,
                    len(batch),
                    self._retry_interval_s,
                )
                self._failing_since = reason
            if self._connection is not None:  # reopened on retry: the cause may be gone then
                self._connection.close()
                self._connection = None
            return False
        if self._failing_since is not None:
            logger.info("call records: writing to %s again", self.path)
            self._failing_since = None
        return True

    # -- queries (any thread) --------------------------------------------------------------------

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if not self.path.exists():
            return []
        connection = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows: list[tuple[Any, ...]] = connection.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        finally:
            connection.close()
        return rows

    def recent_calls(
        self,
        limit: int = 50,
        *,
        number: str | None = None,
        direction: str | None = None,
        end_reason: str | None = None,
        since: float | None = None,
    ) -> list[CallSummary]:
        """Newest calls first; ``number`` matches caller or callee."""
        where: list[str] = []
        params: list[object] = []
        if number is not None:
            where.append("(from_number = ? OR to_number = ?)")
            params += [number, number]
        if direction is not None:
            where.append("direction = ?")
            params.append(direction)
        if end_reason is not None:
            where.append("end_reason = ?")
            params.append(end_reason)
        if since is not None:
            where.append("started_at >= ?")
            params.append(since)
        condition = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._read(
            "SELECT c.call_id, c.started_at, c.ended_at, c.from_number, c.to_number, c.direction,"
            " c.end_reason, c.transport,"
            " (SELECT COUNT(*) FROM entries e WHERE e.call_id = c.call_id)"
            f" FROM calls c {condition} ORDER BY c.started_at DESC, c.rowid DESC LIMIT ?",
            (*params, limit),
        )
        return [CallSummary(*row) for row in rows]

    def call(self, call_id: str) -> CallSummary | None:
        """One call's summary, or None if it is unknown."""
        rows = self._read(
            "SELECT call_id, started_at, ended_at, from_number, to_number, direction, end_reason,"
            " transport, (SELECT COUNT(*) FROM entries e WHERE e.call_id = calls.call_id)"
            " FROM calls WHERE call_id = ?",
            (call_id,),
        )
        return CallSummary(*rows[0]) if rows else None

    def timeline(self, call_id: str) -> list[RecordEntry]:
        """Every entry of one call, in the order it was recorded."""
        rows = self._read(
            "SELECT call_id, seq, monotonic, wall, kind, type, payload, latency_ms, outcome, secret"
            " FROM entries WHERE call_id = ? ORDER BY seq",
            (call_id,),
        )
        return [
            RecordEntry(
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                None if row[6] is None else json.loads(row[6]),
                row[7],
                row[8],
                bool(row[9]),
            )
            for row in rows
        ]
