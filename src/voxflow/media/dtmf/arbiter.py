"""The per-call DTMF arbiter: one accepted press per real key press, whatever carried it.

Gateways often report one press twice: as RFC 4733 events plus leftover in-band tone, or as SIP
INFO plus RFC 4733. The arbiter sees the KeyDown/KeyUp of every source of one call and decides:

* Out-of-band presses (RFC 4733, SIP INFO, a media stream's own DTMF message) are accepted at
  once, unless the same key from a *different* source was accepted just before (overlapping, or
  ended less than ``duplicate_window_ms`` ago): then it is the same press and the first report
  wins. Each accepted press absorbs at most one twin per other source, so genuine repeats
  ("11") sent over two channels still count twice. Repeats from one source always pass.
* In-band presses are emitted at once when telephone-event was not negotiated. When it was,
  they are held for ``inband_hold_ms`` and dropped if an out-of-band report of the same key
  arrives meanwhile. Once any out-of-band press has been seen, in-band detection is ignored for
  the rest of the call (logged, not emitted).
* A-D pass only with ``allow_abcd``; dropped keys are logged.

Sans-IO: call :meth:`DtmfArbiter.poll` at :meth:`DtmfArbiter.next_deadline` to release held
in-band presses.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

from voxflow.media.dtmf.events import DtmfSource, KeyDown, KeyUp
from voxflow.media.dtmf.keys import ALL_KEYS, DIGITS

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DtmfPress:
    """A key press the engine should report (one ``dtmf_received``).

    ``at_ms`` is when the arbiter accepted it; ``onset_ms`` is the source's estimate of when the
    press began; ``source`` is the report that won.
    """

    key: str
    source: DtmfSource
    at_ms: float
    onset_ms: float


@dataclass(slots=True)
class _HeldInband:
    key: str
    onset_ms: float
    release_ms: float
    end_ms: float | None = None


@dataclass(slots=True)
class _Accepted:
    key: str
    source: DtmfSource
    end_ms: float | None
    absorbed: set[DtmfSource] = field(default_factory=set)


class DtmfArbiter:
    """Merges the DTMF reports of one call into exactly one :class:`DtmfPress` per key press."""

    def __init__(
        self,
        *,
        telephone_event_negotiated: bool = False,
        inband_hold_ms: float = 200.0,
        duplicate_window_ms: float = 250.0,
        allow_abcd: bool = False,
    ) -> None:
        self._telephone_event_negotiated = telephone_event_negotiated
        self.inband_hold_ms = inband_hold_ms
        self.duplicate_window_ms = duplicate_window_ms
        self.allowed_keys = ALL_KEYS if allow_abcd else DIGITS
        self._out_of_band_seen = False
        self._held: list[_HeldInband] = []
        self._accepted: deque[_Accepted] = deque(maxlen=64)

    @property
    def telephone_event_negotiated(self) -> bool:
        """Whether the current SDP negotiated telephone-event (RFC 4733)."""
        return self._telephone_event_negotiated

    @property
    def out_of_band_seen(self) -> bool:
        """True once any RFC 4733 / INFO / stream press arrived; in-band is ignored from then on."""
        return self._out_of_band_seen

    def renegotiate(self, telephone_event_negotiated: bool, now_ms: float) -> list[DtmfPress]:
        """Follow a re-INVITE; without telephone-event, held in-band presses are released now."""
        self._telephone_event_negotiated = telephone_event_negotiated
        if telephone_event_negotiated:
            return []
        held, self._held = self._held, []
        return [self._accept_held(press, now_ms) for press in held]

    def feed(self, event: KeyDown | KeyUp, now_ms: float) -> list[DtmfPress]:
        """Take one report from any source; return the presses accepted now (in order)."""
        presses = self.poll(now_ms)
        if isinstance(event, KeyUp):
            self._key_up(event, now_ms)
            return presses
        if event.key not in self.allowed_keys:
            logger.info("DTMF key %r from %s dropped (not enabled)", event.key, event.source)
            return presses
        if event.source is DtmfSource.INBAND:
            presses.extend(self._inband_down(event, now_ms))
        else:
            presses.extend(self._out_of_band_down(event, now_ms))
        return presses

    def poll(self, now_ms: float) -> list[DtmfPress]:
        """Release held in-band presses whose window passed without an out-of-band twin."""
        self._forget_old(now_ms)
        due = [press for press in self._held if press.release_ms <= now_ms]
        if not due:
            return []
        self._held = [press for press in self._held if press.release_ms > now_ms]
        return [self._accept_held(press, now_ms) for press in due]

    def next_deadline(self) -> float | None:
        """When :meth:`poll` must next be called (ms), or ``None`` when nothing is held."""
        return min((press.release_ms for press in self._held), default=None)

    # -- internals ------------------------------------------------------------------------------

    def _inband_down(self, event: KeyDown, now_ms: float) -> list[DtmfPress]:
        if self._out_of_band_seen:
            logger.info("in-band DTMF %r ignored: this call reports keys out of band", event.key)
            return []
        if self._telephone_event_negotiated:
            self._held.append(_HeldInband(event.key, event.onset_ms, now_ms + self.inband_hold_ms))
            return []
        return [self._accept(event.key, DtmfSource.INBAND, now_ms, event.onset_ms, None)]

    def _out_of_band_down(self, event: KeyDown, now_ms: float) -> list[DtmfPress]:
        self._out_of_band_seen = True
        twin = next((press for press in self._held if press.key == event.key), None)
        if twin is not None:
            self._held.remove(twin)
            logger.info(
                "in-band DTMF %r dropped: %s reported the same press", event.key, event.source
            )
        if self._absorbed_by_twin(event, now_ms):
            return []
        # Held in-band presses that began earlier were real presses without an out-of-band
        # twin; release them first so the call sees keys in the order they were pressed.
        earlier = [press for press in self._held if press.onset_ms <= event.onset_ms]
        self._held = [press for press in self._held if press.onset_ms > event.onset_ms]
        presses = [self._accept_held(press, now_ms) for press in earlier]
        presses.append(self._accept(event.key, event.source, now_ms, event.onset_ms, None))
        return presses

    def _absorbed_by_twin(self, event: KeyDown, now_ms: float) -> bool:
        for accepted in self._accepted:
            if (
                accepted.key == event.key
                and accepted.source is not event.source
                and event.source not in accepted.absorbed
                and (
                    accepted.end_ms is None or now_ms - accepted.end_ms <= self.duplicate_window_ms
                )
            ):
                accepted.absorbed.add(event.source)
                logger.info(
                    "DTMF %r from %s dropped: already reported by %s",
                    event.key,
                    event.source,
                    accepted.source,
                )
                return True
        return False

    def _key_up(self, event: KeyUp, now_ms: float) -> None:
        for accepted in self._accepted:
            if (
                accepted.key == event.key
                and accepted.source is event.source
                and accepted.end_ms is None
            ):
                accepted.end_ms = now_ms
                return
        if event.source is DtmfSource.INBAND:
            for held in self._held:
                if held.key == event.key and held.end_ms is None:
                    held.end_ms = now_ms
                    return

    def _accept_held(self, press: _HeldInband, now_ms: float) -> DtmfPress:
        return self._accept(press.key, DtmfSource.INBAND, now_ms, press.onset_ms, press.end_ms)

    def _accept(
        self, key: str, source: DtmfSource, now_ms: float, onset_ms: float, end_ms: float | None
    ) -> DtmfPress:
        self._accepted.append(_Accepted(key, source, end_ms))
        return DtmfPress(key, source, now_ms, onset_ms)

    def _forget_old(self, now_ms: float) -> None:
        while self._accepted:
            oldest = self._accepted[0]
            if oldest.end_ms is None or now_ms - oldest.end_ms <= self.duplicate_window_ms:
                return
            self._accepted.popleft()
