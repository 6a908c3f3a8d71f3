"""Send deadlines for paced media, computed from a fixed monotonic start.

Deadline *k* is ``start + k * interval``. Sleeping until each deadline, instead of sleeping one
interval after each send, keeps timer lateness from accumulating into drift.
"""

from __future__ import annotations

import math

from voxflow.errors import ConfigError


class Pacer:
    """Deadlines ``start + k * interval``; falls forward instead of bursting a long backlog."""

    def __init__(self, start: float, interval: float = 0.02, max_backlog: int = 5) -> None:
        if interval <= 0:
            raise ConfigError(f"pacer interval must be positive, got {interval}")
        if max_backlog < 1:
            raise ConfigError(f"pacer max_backlog must be at least 1, got {max_backlog}")
        self._start = start
        self._interval = interval
        self._max_backlog = max_backlog
        self._tick = -1
        self.skipped = 0

    @property
    def tick(self) -> int:
        """Index of the deadline returned last (-1 before the first call)."""
        return self._tick

    @property
    def interval(self) -> float:
        """Seconds between deadlines."""
        return self._interval

    def deadline(self, tick: int) -> float:
        """The deadline of tick number ``tick``."""
        return self._start + tick * self._interval

    def next_deadline(self, now: float) -> float:
        """Advance to the next tick and return its deadline.

        If the caller has fallen more than ``max_backlog`` ticks behind ``now`` (a stalled event
        loop), the missed ticks are skipped (counted in :attr:`skipped`, visible as a jump in
        :attr:`tick`) rather than sent as a burst.
        """
        self._tick += 1
        behind = math.floor((now - self.deadline(self._tick)) / self._interval)
        if behind > self._max_backlog:
            self.skipped += behind
            self._tick += behind
        return self.deadline(self._tick)
