"""``voxflow demo``: a scripted call against an assistant, shown as a timeline.

No phone line is involved yet: the demo builds the events a caller would cause (the call is
answered, keys are pressed, the call ends) and hands them to ``assistant.handle``, exactly as
the engine's in-process dispatch will. Call time is simulated; handler latency is measured.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from voxflow.errors import HandlerError
from voxflow.protocol import (
    DTMF_DIGITS,
    Action,
    DtmfReceivedEvent,
    Event,
    Session,
    SessionEndEvent,
    SessionStartEvent,
    SpeakAction,
    TransferAction,
)
from voxflow.sdk import Assistant

# Simulated seconds between the caller's steps: long enough to have heard a short prompt.
STEP_S = 3.0


@dataclass(frozen=True, slots=True)
class Turn:
    """One line of the timeline: what happened at ``at_s`` and how the assistant answered."""

    at_s: float
    who: str
    what: str
    actions: tuple[Action, ...]
    latency_ms: float | None
    failed: str | None = None


def describe(action: Action) -> str:
    """A short human-readable form of one action."""
    if isinstance(action, SpeakAction):
        return f'speak "{action.text if action.text is not None else action.ssml}"'
    if isinstance(action, TransferAction):
        return f"transfer → {action.target_phone_number}"
    return action.type.replace("_", " ")


def _ends_call(actions: Sequence[Action]) -> bool:
    return any(action.type in ("transfer", "hangup") for action in actions)


def _answer(assistant: Assistant, event: Event, at_s: float, who: str, what: str) -> Turn:
    started = time.perf_counter()
    try:
        actions = assistant.handle_sync(event)
    except HandlerError as exc:
        return Turn(at_s, who, what, (), None, failed=str(exc))
    latency_ms = (time.perf_counter() - started) * 1000
    return Turn(at_s, who, what, tuple(actions), latency_ms)


def scripted_call(assistant: Assistant, keys: str) -> list[Turn]:
    """Answer a call, press ``keys`` one by one, and end the call (early on transfer/hang-up)."""
    unknown = sorted(set(keys) - set(DTMF_DIGITS))
    if unknown:
        raise ValueError(f"keys: {''.join(unknown)!r} are not keypad keys (0-9, *, #)")
    session = Session(id=str(uuid.uuid4()), account_id="demo", phone_number="+4921100000",
                      from_phone_number="+4917012345678", to_phone_number="+4921100000")
    turns = [_answer(assistant, SessionStartEvent(session=session), 0.0, "line",
                     "session_start")]
    for index, key in enumerate(keys, start=1):
        if _ends_call(turns[-1].actions):
            break
        turns.append(_answer(assistant, DtmfReceivedEvent(session=session, digit=key),
                             index * STEP_S, "caller", f"dtmf_received {key}"))
    turns.append(_answer(assistant, SessionEndEvent(session=session), turns[-1].at_s, "line",
                         "session_end"))
    return turns


def render(turns: Sequence[Turn]) -> Table:
    """The timeline as a rich table."""
    table = Table(title="voxflow demo: scripted call", title_justify="left")
    table.add_column("call time", justify="right")
    table.add_column("who", no_wrap=True)
    table.add_column("event", no_wrap=True)
    table.add_column("assistant answered")
    table.add_column("handler", justify="right")
    for turn in turns:
        if turn.failed is not None:
            answer = f"[red]error: {turn.failed}[/red]"
        else:
            answer = "\n".join(describe(action) for action in turn.actions) or "[dim]no action"
        latency = "-" if turn.latency_ms is None else f"{turn.latency_ms:.2f} ms"
        table.add_row(f"{turn.at_s:4.1f} s", turn.who, turn.what, answer, latency)
    return table


def run_demo(assistant: Assistant, keys: str, console: Console) -> list[Turn]:
    """Run the scripted call and print its timeline and outcome."""
    turns = scripted_call(assistant, keys)
    console.print(render(turns))
    final = [action for turn in turns for action in turn.actions]
    transfers = [a for a in final if isinstance(a, TransferAction)]
    if transfers:
        target = transfers[-1].target_phone_number
        console.print(f"Outcome: the caller was transferred to {target}.")
    elif any(action.type == "hangup" for action in final):
        console.print("Outcome: the assistant hung up.")
    else:
        console.print("Outcome: the caller hung up.")
    return turns
