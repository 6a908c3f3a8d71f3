"""The call's timeline: every event delivered, action returned, delivery result, line fact and
caller step, with times — what expectations wait on and what failure messages print.

:class:`TimelineRecorder` is the engine's :class:`~voxflow.server.recorder.CallRecorder` with
one more duty: besides writing the call record (when it has a store) it appends each entry to
the :class:`Timeline` of the call it belongs to.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from voxflow.dispatch import DeliveryResult
from voxflow.engine.records import CallRecordStore
from voxflow.protocol import Action, BaseEvent, Session, to_wire
from voxflow.server.recorder import CallRecorder

__all__ = ["Timeline", "TimelineEntry", "TimelineRecorder", "describe_action"]

_TEXT_LIMIT = 70


def _short(text: str) -> str:
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "…"


def describe_action(action: Action) -> str:
    """A one-line human form of an action: ``speak "…"``, ``transfer → +49…``, ``hangup``."""
    wire = to_wire(action)
    if action.type == "speak":
        return f'speak "{_short(str(wire.get("text") or wire.get("ssml") or ""))}"'
    if action.type == "transfer":
        return f"transfer → {wire.get('target_phone_number')}"
    return action.type.replace("_", " ")


def _describe_event(wire: Mapping[str, Any]) -> str:
    kind = str(wire.get("type"))
    if kind == "dtmf_received":
        return f"dtmf_received {wire.get('digit')}"
    if kind == "assistant_speak":
        said = wire.get("text") or wire.get("ssml") or ""
        seconds = float(wire.get("duration_ms") or 0) / 1000
        return f'assistant_speak "{_short(str(said))}" ({seconds:.2f} s audio)'
    if kind == "user_speak":
        return f'user_speak "{_short(str(wire.get("text", "")))}"'
    return kind


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One step: ``kind`` is ``event`` (delivered to the assistant), ``action`` (returned by
    it), ``delivery`` (how handing an event over went), ``engine`` (a line fact or note of the
    engine) or ``caller`` (what the simulated caller did or received); ``at`` is seconds since
    the call started."""

    at: float
    kind: str
    name: str
    text: str
    data: Mapping[str, Any] = field(default_factory=dict)
    latency_ms: float | None = None
    model: Any = None

    def __str__(self) -> str:
        return f"{self.at:+8.3f} s  {self.kind:<8}  {self.text}"


class Timeline:
    """Entries of one call in the order they happened; awaitable for expectations."""

    def __init__(self, label: str = "") -> None:
        self.label = label
        self.started = time.monotonic()
        self.entries: list[TimelineEntry] = []
        self._changed = asyncio.Event()

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Any:
        return iter(list(self.entries))

    def add(self, kind: str, name: str, text: str, data: Mapping[str, Any] | None = None, *,
            latency_ms: float | None = None, model: Any = None) -> TimelineEntry:
        """Append an entry now and wake whoever waits."""
        entry = TimelineEntry(time.monotonic() - self.started, kind, name, text, dict(data or {}),
                              latency_ms, model)
        self.entries.append(entry)
        self._changed.set()
        return entry

    def adopt(self, other: Timeline) -> None:
        """Take ``other``'s entries (re-timed to this timeline's start) before our own."""
        shift = other.started - self.started
        moved = [dataclasses.replace(entry, at=entry.at + shift) for entry in other.entries]
        self.entries[:0] = moved
        self._changed.set()

    def find(self, match: Callable[[TimelineEntry], bool], start: int = 0) -> int | None:
        """Index of the first entry from ``start`` on that ``match``es, or None."""
        for index in range(start, len(self.entries)):
            if match(self.entries[index]):
                return index
        return None

    async def wait_for(self, match: Callable[[TimelineEntry], bool], start: int,
                       max_wait: float) -> int:
        """Index of the first matching entry from ``start`` on, waiting up to ``max_wait`` s
        for it; TimeoutError if none came."""
        deadline = time.monotonic() + max_wait
        while (found := self.find(match, start)) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                if (found := self.find(match, start)) is None:
                    raise
                return found
        return found

    def of(self, kind: str, name: str | None = None) -> list[TimelineEntry]:
        """Entries of one kind (and name)."""
        return [e for e in self.entries if e.kind == kind and (name is None or e.name == name)]

    def render(self, mark: int | None = None) -> str:
        """The timeline as text; ``mark`` puts a ``▶`` before the entry expectations start at."""
        lines = [f"timeline{f' ({self.label})' if self.label else ''}:"]
        for index, entry in enumerate(self.entries):
            lines.append(f"  {'▶' if index == mark else ' '} {entry}")
        if mark is not None and mark >= len(self.entries):
            lines.append("  ▶ (nothing after this point)")
        if not self.entries:
            lines.append("    (empty)")
        return "\n".join(lines)


class TimelineRecorder(CallRecorder):
    """Writes the call record (if ``store`` is set) and each call's :class:`Timeline`.

    A timeline registered with :meth:`watch` under the line's call id (the SIP Call-ID) is
    bound to the session when the engine starts the call; other calls get their own timeline.
    """

    def __init__(self, store: CallRecordStore | None, transport: str) -> None:
        super().__init__(store, transport)
        self.timelines: dict[str, Timeline] = {}
        self.sessions: dict[str, Session] = {}
        self._waiting: dict[str, Timeline] = {}
        self._started: dict[str, asyncio.Event] = {}

    def watch(self, line_call_id: str, timeline: Timeline) -> None:
        """Route the call with this line call id to ``timeline`` (from its start, even when
        the engine started it before the caller learnt its id)."""
        session = self.sessions.get(line_call_id)
        if session is None:
            self._waiting[line_call_id] = timeline
            return
        earlier = self.timelines.get(session.id)
        if earlier is not None and earlier is not timeline:
            timeline.adopt(earlier)
        self.timelines[session.id] = timeline

    async def session_for(self, line_call_id: str, max_wait: float) -> Session:
        """The session the engine gave the call with this line call id."""
        started = self._started.setdefault(line_call_id, asyncio.Event())
        await asyncio.wait_for(started.wait(), max_wait)
        return self.sessions[line_call_id]

    def call_started(self, session: Session, sip_call_id: str) -> None:
        timeline = self._waiting.pop(sip_call_id, None)
        if timeline is None:
            timeline = Timeline(session.id)
        self.timelines[session.id] = timeline
        self.sessions[sip_call_id] = session
        self._started.setdefault(sip_call_id, asyncio.Event()).set()
        super().call_started(session, sip_call_id)

    def event(self, event: BaseEvent) -> None:
        super().event(event)
        timeline = self.timelines.get(event.session.id)
        if timeline is not None:
            wire = to_wire(event)
            wire.pop("session", None)
            timeline.add("event", str(wire["type"]), _describe_event(wire), wire, model=event)

    def actions(self, session_id: str, actions: Sequence[Action]) -> None:
        super().actions(session_id, actions)
        timeline = self.timelines.get(session_id)
        if timeline is not None:
            for action in actions:
                timeline.add("action", action.type, describe_action(action), to_wire(action),
                             model=action)

    def delivery(self, result: DeliveryResult) -> None:
        super().delivery(result)
        timeline = self.timelines.get(result.session_id)
        if timeline is None:
            return
        what = result.event_type or "push"
        outcome = result.outcome.value
        error = f": {result.error}" if result.error else ""
        timeline.add("delivery", what,
                     f"{what} handed over: {outcome} in {result.latency_ms:.1f} ms{error}",
                     {"outcome": outcome, "error": result.error},
                     latency_ms=result.latency_ms, model=result)

    def note(self, session_id: str, level: str, message: str) -> None:
        super().note(session_id, level, message)
        timeline = self.timelines.get(session_id)
        if timeline is not None:
            timeline.add("engine", f"note.{level}", f"{level}: {message}", {"reason": message})

    def line(self, session_id: str, what: str, payload: Mapping[str, Any] | None = None) -> None:
        super().line(session_id, what, payload)
        timeline = self.timelines.get(session_id)
        if timeline is None:
            return
        data = dict(payload or {})
        if what == "key":
            text = f"key {data.get('digit')} via {data.get('source')}"
        elif what == "transfer":
            text = f"transfer → {data.get('target_phone_number')} ({data.get('uri')})"
        elif what == "transfer_result":
            text = f"transfer {'succeeded' if data.get('success') else 'failed'}: " \
                   f"{data.get('reason')}"
        elif what == "answered":
            text = f"call answered (line call id {data.get('sip_call_id')})"
        else:
            details = ", ".join(f"{k}={v}" for k, v in data.items())
            text = f"{what}{f' ({details})' if details else ''}"
        timeline.add("engine", what, text, data)

    def call_ended(self, session_id: str, reason: str) -> None:
        super().call_ended(session_id, reason)
        timeline = self.timelines.get(session_id)
        if timeline is not None:
            timeline.add("engine", "ended", f"call over: {reason}", {"reason": reason})
