from rich.console import Console
from rich.table import Table

from voxflow.engine.records import CallSummary, RecordEntry
from voxflow.server.calls_view import call_timeline, calls_table

CALL = CallSummary(
    call_id="550e8400-e29b-41d4-a716-446655440000",
    started_at=1_700_000_000.0,
    ended_at=1_700_000_012.5,
    from_number="+4930123",
    to_number="+4940456",
    direction="inbound",
    end_reason="hangup_by_assistant",
    transport="sip",
    entry_count=3,
)


def render(table: Table) -> str:
    console = Console(width=160, record=True, color_system=None)
    console.print(table)
    return console.export_text()


def entry(
    seq: int,
    at: float,
    kind: str,
    type_: str,
    payload: object,
    *,
    latency_ms: float | None = None,
    outcome: str | None = None,
    secret: bool = False,
) -> RecordEntry:
    return RecordEntry(
        CALL.call_id, seq, at, 0.0, kind, type_, payload, latency_ms, outcome, secret
    )


def test_calls_table_lists_each_call() -> None:
    live = CallSummary("live-call", 1_700_000_100.0, None, "+1", "+2", "outbound", None, "ws")
    text = render(calls_table([CALL, live]))
    assert CALL.call_id in text
    assert "2023-11-14 22:13:20" in text
    assert "12.5 s" in text and "hangup_by_assistant" in text
    assert "live-call" in text and "live" in text


def test_timeline_shows_offsets_outcomes_and_latency() -> None:
    entries = [
        entry(1, 100.0, "event", "session_start", {"type": "session_start"}),
        entry(2, 100.25, "delivery", "session_start", None, latency_ms=240.4, outcome="timeout"),
        entry(3, 101.5, "event", "dtmf_received", {"digit": "***"}, secret=True),
        entry(4, 102.0, "action", "speak", {"type": "speak", "text": "Sorry, goodbye"}),
    ]
    text = render(call_timeline(CALL, entries))
    assert "+4930123 → +4940456" in text
    assert "+0.000 s" in text and "+0.250 s" in text and "+2.000 s" in text
    assert "timeout" in text and "240 ms" in text
    assert "digit=*** (masked)" in text
    assert "text=Sorry, goodbye" in text
