"""Shared fixtures: real SIP peers that are always stopped (by PID) after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
from peers import Baresip, Kamailio, Linphonec, Sipp


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
