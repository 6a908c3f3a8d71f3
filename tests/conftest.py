"""Shared fixtures: real SIP peers that are always stopped (by PID) after the test.

Property tests run under a Hypothesis profile chosen by ``VOXFLOW_HYPOTHESIS``:

* ``repeatable`` (default, used by the test command and CI): a fixed set of 200 examples per
  test, the same on every run, so a red build always means a change broke something;
* ``explore``: 20,000 fresh random examples per test, for hunting new counter-examples
  (``VOXFLOW_HYPOTHESIS=explore pytest tests -k "survive or roundtrip or hostile"``); whatever
  it finds becomes an ``@example`` regression.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from peers import Baresip, Kamailio, Linphonec, Sipp

settings.register_profile(
    "repeatable", max_examples=200, deadline=None, derandomize=True, database=None
)
settings.register_profile(
    "explore",
    max_examples=20_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("VOXFLOW_HYPOTHESIS", "repeatable"))


class _Closable(Protocol):
    def close(self) -> None: ...


PeerT = TypeVar("PeerT", bound=_Closable)


def _factory(tmp_path: Path, kind: Callable[..., PeerT]) -> Iterator[Callable[..., PeerT]]:
    made: list[PeerT] = []

    def make(name: str, **options: Any) -> PeerT:
        peer = kind(tmp_path / name, **options)
        made.append(peer)
        return peer

    yield make
    for peer in reversed(made):
        peer.close()


@pytest.fixture
def baresip(tmp_path: Path) -> Iterator[Callable[..., Baresip]]:
    """``baresip("a", answermode="auto")`` → a configured, not yet started :class:`Baresip`."""
    yield from _factory(tmp_path, Baresip)


@pytest.fixture
def linphonec(tmp_path: Path) -> Iterator[Callable[..., Linphonec]]:
    """``linphonec("l", dtmf="info")`` → a configured, not yet started :class:`Linphonec`."""
    yield from _factory(tmp_path, Linphonec)


@pytest.fixture
def kamailio(tmp_path: Path) -> Iterator[Callable[..., Kamailio]]:
    """``kamailio("k", user=..., password=...)`` → a not yet started registrar."""
    yield from _factory(tmp_path, Kamailio)


@pytest.fixture
def sipp(tmp_path: Path) -> Iterator[Callable[..., Sipp]]:
    """``sipp("uas", builtin="uas")`` → a :class:`Sipp` (``.serve()`` or ``.run(target)``)."""
    yield from _factory(tmp_path, Sipp)
