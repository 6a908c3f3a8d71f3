"""``voxflow replay CALL_ID --webhook URL``: a recorded call as a regression test.

The stored call's events are POSTed again, in their recorded order and one at a time (as the
engine delivers them), with the engine's own body and headers
(:class:`~voxflow.dispatch.webhook.WebhookDispatcher`). The actions the assistant answers now are
compared with the recorded ones, event by event.

Which actions answered which event: the engine records an event when it hands it over, the
delivery result when the answer comes back, and then the actions of that answer. Deliveries of
one call are serial, so the n-th delivery answers the n-th event, and the actions recorded after
a delivery belong to it.

Decisions: answers to ``session_end`` and ``user_speech_started`` are ignored on both sides (the
engine ignores them too); an event recorded masked (a secret entry) cannot be sent again as it
was, so it is skipped with a warning; a delivery that fails now but did not fail then counts as a
difference even when neither carried actions.
"""

from __future__ import annotations

import difflib
import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from voxflow.dispatch import DeliveryOutcome, WebhookDispatcher
from voxflow.dispatch.ordering import UNANSWERED_EVENTS
from voxflow.engine.records import CallRecordStore, CallSummary, EntryKind
from voxflow.errors import ProtocolError
from voxflow.protocol import parse_event, to_wire

__all__ = [
    "Exchange", "ReplayResult", "recorded_exchanges", "render_replay", "replay_call", "run_replay",
]


@dataclass
class Exchange:
    """One recorded event, the actions that answered it then, and what answers it now."""

    event: dict[str, Any]
    recorded_actions: list[dict[str, Any]] = field(default_factory=list)
    recorded_outcome: str | None = None
    masked: bool = False
    actions_now: list[dict[str, Any]] = field(default_factory=list)
    outcome_now: str | None = None
    error_now: str | None = None

    @property
    def event_type(self) -> str:
        """The event's ``type``."""
        return str(self.event.get("type", "?"))

    @property
    def replayed(self) -> bool:
        """False when the event could not be sent again (masked in the record)."""
        return not self.masked

    @property
    def differs(self) -> bool:
        """True when the assistant answers this event differently now."""
        if self.masked:
            return False
        if self.event_type in UNANSWERED_EVENTS:
            return _failed(self.outcome_now) and not _failed(self.recorded_outcome)
        if self.actions_now != self.recorded_actions:
            return True
        return _failed(self.outcome_now) and not _failed(self.recorded_outcome)


@dataclass
class ReplayResult:
    """Every exchange of a replayed call."""

    call: CallSummary
    exchanges: list[Exchange]

    @property
    def differences(self) -> int:
        """How many events were answered differently."""
        return sum(exchange.differs for exchange in self.exchanges)


def _failed(outcome: str | None) -> bool:
    if outcome is None:
        return False
    try:
        return DeliveryOutcome(outcome).failed
    except ValueError:
        return True


def session_object(call: CallSummary, account_id: str) -> dict[str, Any]:
    """The ``session`` object the engine sent: the call row has all of it but ``account_id``."""
    inbound = call.direction != "outbound"
    return {
        "id": call.call_id,
        "account_id": account_id,
        "phone_number": call.to_number if inbound else call.from_number,
        "direction": call.direction or "inbound",
        "from_phone_number": call.from_number,
        "to_phone_number": call.to_number,
    }


def recorded_exchanges(store: CallRecordStore, call: CallSummary,
                       account_id: str = "") -> list[Exchange]:
    """The call's events in order, each with the actions recorded as its answer."""
    session = session_object(call, account_id)
    exchanges: list[Exchange] = []
    awaiting: deque[Exchange] = deque()
    answering: Exchange | None = None
    for entry in store.timeline(call.call_id):
        if entry.kind == EntryKind.EVENT and isinstance(entry.payload, dict):
            exchange = Exchange({**entry.payload, "session": session}, masked=entry.secret)
            exchanges.append(exchange)
            awaiting.append(exchange)
        elif entry.kind == EntryKind.DELIVERY:
            if entry.type == "push" or not awaiting:
                answering = None  # a pushed WebSocket message answers no particular event
                continue
            answering = awaiting.popleft()
            answering.recorded_outcome = entry.outcome
        elif (entry.kind == EntryKind.ACTION and answering is not None
              and isinstance(entry.payload, dict)):
            answering.recorded_actions.append(entry.payload)
    return exchanges


async def replay_call(
    store: CallRecordStore,
    call_id: str,
    webhook: str,
    *,
    account_id: str = "",
    api_token: str | None = None,
    signing_secret: str | None = None,
    timeout_s: float = 5.0,
) -> ReplayResult | None:
    """POST the stored call's events to ``webhook`` in order; None when the call is unknown."""
    call = store.call(call_id)
    if call is None:
        return None
    exchanges = recorded_exchanges(store, call, account_id)
    dispatcher = WebhookDispatcher(webhook, timeout_s=timeout_s, api_token=api_token,
                                   signing_secret=signing_secret)
    try:
        for exchange in exchanges:
            if exchange.masked:
                continue
            try:
                event = parse_event(exchange.event)
            except ProtocolError as exc:
                exchange.outcome_now = "invalid_event"
                exchange.error_now = f"the recorded event does not parse: {exc}"
                continue
            result = await dispatcher.deliver(event)
            exchange.outcome_now = result.outcome.value
            exchange.error_now = result.error
            if exchange.event_type not in UNANSWERED_EVENTS:
                exchange.actions_now = [to_wire(action) for action in result.actions]
    finally:
        await dispatcher.aclose()
    return ReplayResult(call, exchanges)


# -- output --------------------------------------------------------------------------------------


def _event_label(event: dict[str, Any]) -> str:
    detail = next((f"{key}={event[key]}" for key in ("digit", "text", "ssml", "reason")
                   if event.get(key) is not None), "")
    return f"{event.get('type')} {detail}".strip()


def _actions_label(actions: Sequence[dict[str, Any]]) -> str:
    if not actions:
        return "—"
    parts = []
    for action in actions:
        detail = next((f" {action[key]}" for key in ("target_phone_number", "text", "ssml")
                       if action.get(key) is not None), "")
        parts.append(f"{action.get('type')}{detail}"[:60])
    return "\n".join(parts)


def _canonical(actions: Sequence[dict[str, Any]]) -> list[str]:
    return json.dumps(list(actions), indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def render_replay(console: Console, result: ReplayResult, webhook: str) -> None:
    """A table of every event (recorded vs now) and a unified diff for each difference."""
    table = Table(title=f"Replay of call {result.call.call_id} against {webhook}")
    table.add_column("#", justify="right")
    table.add_column("event")
    table.add_column("recorded actions")
    table.add_column("actions now")
    table.add_column("")
    for number, exchange in enumerate(result.exchanges, 1):
        if exchange.masked:
            verdict = Text("skipped (masked)", style="yellow")
        elif exchange.differs:
            verdict = Text("DIFFERENT", style="bold red")
        else:
            verdict = Text("same", style="green")
        now = _actions_label(exchange.actions_now)
        if exchange.outcome_now not in (None, "ok", "no_action"):
            now = f"{now}\n({exchange.outcome_now})"
        table.add_row(str(number), _event_label(exchange.event),
                      _actions_label(exchange.recorded_actions), now, verdict)
    console.print(table)
    for number, exchange in enumerate(result.exchanges, 1):
        if not exchange.differs:
            continue
        console.print(Text(f"#{number} {_event_label(exchange.event)}", style="bold"))
        if exchange.error_now:
            console.print(Text(f"  now: {exchange.error_now}", style="red"))
        diff = difflib.unified_diff(_canonical(exchange.recorded_actions),
                                    _canonical(exchange.actions_now),
                                    "recorded", "now", lineterm="", n=2)
        for line in diff:
            style = ("red" if line.startswith("-") else "green" if line.startswith("+")
                     else "dim")
            console.print(Text(line, style=style))
    if result.differences:
        console.print(Text(f"{result.differences} of {len(result.exchanges)} event(s) answered "
                           "differently", style="bold red"))
    else:
        console.print(Text(f"all {len(result.exchanges)} event(s) answered as recorded",
                           style="bold green"))


def run_replay(
    console: Console,
    records: str | None,
    call_id: str,
    webhook: str,
    **options: Any,
) -> int:
    """The ``voxflow replay`` command: the exit code (0 same, 1 different, 2 unknown call)."""
    import asyncio
    from pathlib import Path

    from voxflow.engine.records import default_records_path

    store = CallRecordStore(Path(records) if records else default_records_path())
    try:
        result = asyncio.run(replay_call(store, call_id, webhook, **options))
    finally:
        store.close()
    if result is None:
        console.print(Text(f"no call {call_id!r} in {store.path}", style="red"))
        return 2
    render_replay(console, result, webhook)
    return 1 if result.differences else 0
