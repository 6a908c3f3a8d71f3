"""20 simultaneous calls over real UDP, each pressing its own 8-key sequence (RFC 4733): every
session's ``dtmf_received`` events are exactly its caller's keys, in order."""

from __future__ import annotations

import asyncio
import gc
import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from assistant_peers import running_webhook_server
from peers import free_port_block
from sip_caller import CallerFleet

from voxflow.protocol import DTMF_DIGITS
from voxflow.server.app import VoxflowApp

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]

CALLS = 20
KEYS_PER_CALL = 8


def sequences(seed: int = 5) -> list[str]:
    rng = random.Random(seed)
    made: set[str] = set()
    while len(made) < CALLS:
        made.add("".join(rng.choice(sorted(DTMF_DIGITS)) for _ in range(KEYS_PER_CALL)))
    return sorted(made)


async def test_twenty_calls_get_exactly_their_own_keys_in_order(
    make_engine: Callable[..., VoxflowApp],
) -> None:
    wanted = sequences()
    with running_webhook_server() as webhook:
        async with make_engine(webhook=f"{webhook.url}/no-content") as app:
            fleet = await CallerFleet(free_port_block(2 * CALLS)).start()
            try:
                host, port = app.line.address
                calls = await asyncio.gather(*(
                    fleet.dial(f"sip:0049211555@{host}:{port}", f"49301000{index:02d}")
                    for index in range(CALLS)
                ))
                for step in range(KEYS_PER_CALL):
                    for call, keys in zip(calls, wanted, strict=True):
                        call.press(keys[step], duration_ms=80)
                    await asyncio.sleep(0.2)
                expected = CALLS * KEYS_PER_CALL
                for _ in range(250):
                    if len(webhook.requests("no-content")) >= expected + CALLS:
                        break
                    await asyncio.sleep(0.02)
            finally:
                await fleet.close()

    bodies: list[dict[str, Any]] = [json.loads(r.body) for r in webhook.requests("no-content")]
    digits: dict[str, str] = {}
    callers: dict[str, str] = {}
    for event in bodies:
        session = event["session"]
        callers[session["id"]] = session["from_phone_number"]
        if event["type"] == "dtmf_received":
            digits[session["id"]] = digits.get(session["id"], "") + event["digit"]
    assert len(callers) == CALLS
    by_caller = {callers[sid]: keys for sid, keys in digits.items()}
    assert by_caller == {f"+49301000{i:02d}": keys for i, keys in enumerate(wanted)}
    ends = [e["session"]["id"] for e in bodies if e["type"] == "session_end"]
    assert sorted(ends) == sorted(callers)


async def test_startup_objects_are_kept_out_of_the_cyclic_collector(
    make_engine: Callable[..., VoxflowApp],
) -> None:
    # Full collections walking every module and schema paused all calls' media for 20-40 ms.
    with running_webhook_server() as webhook:
        async with make_engine(webhook=f"{webhook.url}/no-content") as app:
            assert gc.get_freeze_count() > 10_000
            assert app.line.calls == []
