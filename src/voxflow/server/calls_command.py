"""``voxflow calls`` and ``voxflow calls show ID``: read the call records, print with rich."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from voxflow.engine.records import CallRecordStore, default_records_path
from voxflow.server.calls_view import call_timeline, calls_table


def _store(path: Path | None) -> CallRecordStore:
    return CallRecordStore(path or default_records_path())


def list_calls(console: Console, path: Path | None, limit: int) -> int:
    """Print the newest calls; the exit code."""
    store = _store(path)
    try:
        calls = store.recent_calls(limit)
    finally:
        store.close()
    if not calls:
        console.print(f"no calls recorded in {store.path}")
        return 0
    console.print(calls_table(calls))
    return 0


def show_call(console: Console, path: Path | None, call_id: str) -> int:
    """Print one call's timeline; exit code 1 when the call is unknown."""
    store = _store(path)
    try:
        call = store.call(call_id)
        entries = store.timeline(call_id) if call is not None else []
    finally:
        store.close()
    if call is None:
        console.print(f"[red]no call {call_id!r} in {store.path}[/red]")
        return 1
    console.print(call_timeline(call, entries))
    return 0
