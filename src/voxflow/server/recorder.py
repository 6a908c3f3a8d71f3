"""What goes into the call record: events, actions, delivery results, notes and line facts."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from voxflow.dispatch import DeliveryResult
from voxflow.engine.records import CallRecordStore, EntryKind
from voxflow.protocol import Action, BaseEvent, Session, to_wire


class CallRecorder:
    """Writes one engine's calls to a :class:`CallRecordStore` (or nowhere when it is None)."""

    mask_digits = False
    """Store every key press masked (``mask_digits_in_records``): keys and dtmf_received."""

    def __init__(self, store: CallRecordStore | None, transport: str) -> None:
        self.store = store
        self.transport = transport

    def call_started(self, session: Session, sip_call_id: str) -> None:
        """Open the record; the SIP Call-ID is kept for matching with SIP traces."""
        if self.store is None:
            return
        self.store.start_call(
            session.id,
            from_number=session.from_phone_number,
            to_number=session.to_phone_number,
            direction=str(session.direction.value),
            transport=self.transport,
        )
        self.line(session.id, "answered", {"sip_call_id": sip_call_id})

    def event(self, event: BaseEvent) -> None:
        """An event handed to the assistant."""
        if self.store is not None:
            wire = to_wire(event)
            wire.pop("session", None)  # the same on every event; the call row has it
            secret = self.mask_digits and wire["type"] == "dtmf_received"
            self.store.add_entry(event.session.id, EntryKind.EVENT, str(wire["type"]), wire,
                                 secret=secret)

    def actions(self, session_id: str, actions: Sequence[Action]) -> None:
        """Actions the assistant returned, in order."""
        if self.store is not None:
            for action in actions:
                self.store.add_entry(session_id, EntryKind.ACTION, action.type, to_wire(action))

    def delivery(self, result: DeliveryResult) -> None:
        """How handing one event over went (latency, outcome, error)."""
        if self.store is None:
            return
        payload = {"error": result.error} if result.error else {}
        if result.status is not None:
            payload["status"] = str(result.status)
        self.store.add_entry(
            result.session_id,
            EntryKind.DELIVERY,
            result.event_type or "push",
            payload or None,
            latency_ms=result.latency_ms,
            outcome=result.outcome.value,
        )

    def note(self, session_id: str, level: str, message: str) -> None:
        """Something the session decided (fallback, ignored action ...)."""
        if self.store is not None:
            kind = EntryKind.ERROR if level == "error" else EntryKind.LINE
            self.store.add_entry(session_id, kind, f"note.{level}", {"reason": message})

    def line(self, session_id: str, what: str, payload: Mapping[str, Any] | None = None) -> None:
        """A fact from the phone line (key press, transfer outcome, hang-up)."""
        if self.store is not None:
            secret = self.mask_digits and what == "key"
            self.store.add_entry(session_id, EntryKind.LINE, what, payload, secret=secret)

    def call_ended(self, session_id: str, reason: str) -> None:
        """Close the record."""
        if self.store is not None:
            self.store.end_call(session_id, reason, ended_at=time.time())
