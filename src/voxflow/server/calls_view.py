"""Render call records for the terminal: the call list and one call's timeline (pure)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from voxflow.engine.records import CallSummary, RecordEntry

_OUTCOME_STYLES = {"ok": "green", "no_action": "green", "sent": "green", "buffered": "yellow"}
_PAYLOAD_CHARS = 80


def _clock(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(call: CallSummary) -> str:
    seconds = call.duration_s
    return "live" if seconds is None else f"{seconds:.1f} s"


def _summary(payload: Any) -> str:
    if payload is None:
        return ""
    if isinstance(payload, dict):
        # The fields a reader looks for first; the rest is noise in a one-line view.
        for key in ("text", "ssml", "digit", "error", "target_phone_number", "reason"):
            if payload.get(key) is not None:
                return f"{key}={payload[key]}"[:_PAYLOAD_CHARS]
        payload = {k: v for k, v in payload.items() if k not in ("type", "session", "session_id")}
        if not payload:
            return ""
    return json.dumps(payload, ensure_ascii=False)[:_PAYLOAD_CHARS]


def _outcome(outcome: str | None) -> Text:
    if outcome is None:
        return Text("")
    return Text(outcome, style=_OUTCOME_STYLES.get(outcome, "bold red"))


def calls_table(calls: Sequence[CallSummary], *, title: str = "Recent calls") -> Table:
    """A table of calls, one row each (times in UTC)."""
    table = Table(title=title)
    for column in ("call", "started (UTC)", "duration", "from", "to", "direction", "transport"):
        table.add_column(column, no_wrap=column == "call")
    table.add_column("end reason")
    table.add_column("entries", justify="right")
    for call in calls:
        table.add_row(
            call.call_id,
            _clock(call.started_at),
            _duration(call),
            call.from_number,
            call.to_number,
            call.direction,
            call.transport,
            call.end_reason or "",
            str(call.entry_count),
        )
    return table


def call_timeline(call: CallSummary, entries: Sequence[RecordEntry]) -> Table:
    """One call's timeline: offset from the first entry, kind, type, outcome, latency, detail."""
    title = (
        f"Call {call.call_id}: {call.from_number or '?'} → {call.to_number or '?'} "
        f"({call.direction or 'unknown'}, {_duration(call)}"
        f"{', ' + call.end_reason if call.end_reason else ''})"
    )
    table = Table(title=title)
    table.add_column("at", justify="right", no_wrap=True)
    table.add_column("kind")
    table.add_column("type")
    table.add_column("outcome")
    table.add_column("latency", justify="right")
    table.add_column("detail")
    origin = entries[0].monotonic if entries else 0.0
    for entry in entries:
        detail = _summary(entry.payload)
        table.add_row(
            f"+{entry.monotonic - origin:.3f} s",
            entry.kind,
            entry.type,
            _outcome(entry.outcome),
            "" if entry.latency_ms is None else f"{entry.latency_ms:.0f} ms",
            f"{detail} (masked)" if entry.secret else detail,
        )
    return table
