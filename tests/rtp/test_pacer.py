"""Pacer: deadlines from a fixed start, no drift, no bursts after a stall."""

from __future__ import annotations

import pytest

from voxflow.errors import ConfigError
from voxflow.rtp.pacer import Pacer


def test_deadlines_do_not_drift_when_each_wakeup_is_late() -> None:
    pacer = Pacer(start=100.0, interval=0.02)
    now = 100.0
    deadlines = []
    for _ in range(1000):
        deadline = pacer.next_deadline(now)
        deadlines.append(deadline)
        now = max(now, deadline) + 0.0007  # every wake-up 0.7 ms late, as asyncio is
    assert deadlines[0] == 100.0
    assert deadlines[-1] == pytest.approx(100.0 + 999 * 0.02)
    assert pacer.skipped == 0 and pacer.tick == 999


def test_a_stall_skips_ahead_instead_of_bursting() -> None:
    pacer = Pacer(start=0.0, interval=0.02, max_backlog=5)
    pacer.next_deadline(0.0)
    deadline = pacer.next_deadline(1.0)  # the loop stalled for a second
    assert 0.98 <= deadline <= 1.0
    assert pacer.tick == 50 and pacer.skipped == 49
    assert pacer.next_deadline(1.0) == pytest.approx(1.02)


def test_a_small_backlog_is_caught_up() -> None:
    pacer = Pacer(start=0.0, interval=0.02, max_backlog=5)
    pacer.next_deadline(0.0)
    assert [pacer.next_deadline(0.07) for _ in range(4)] == pytest.approx([0.02, 0.04, 0.06, 0.08])
    assert pacer.skipped == 0


def test_invalid_settings_are_named() -> None:
    with pytest.raises(ConfigError, match="interval"):
        Pacer(start=0.0, interval=0.0)
    with pytest.raises(ConfigError, match="max_backlog"):
        Pacer(start=0.0, max_backlog=0)
