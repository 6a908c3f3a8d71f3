"""Test your assistant with real calls: a call simulator, a softphone and pytest helpers.

``async with simulate_call("examples.ivr_menu_sdk:assistant") as call:`` places one call
through the engine (``line="sim"``: in process; ``line="sip"``: real SIP/RTP on 127.0.0.1);
``call.press("1")``, ``await call.expect_transfer("+49211100200")``. See ``docs/testing.md``.

Names are imported on first use: the pytest plugin lives in this package and is loaded by every
pytest run, which should not pay for (or depend on) the whole engine until a test places a call.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voxflow.testing.simulator import (
        AssistantTarget,
        SimulatedCall,
        TransferSeen,
        simulate_call,
    )
    from voxflow.testing.softphone import PhoneCall, PhoneEvent, Softphone
    from voxflow.testing.timeline import Timeline, TimelineEntry

_HOMES = {
    "AssistantTarget": "simulator",
    "SimulatedCall": "simulator",
    "TransferSeen": "simulator",
    "simulate_call": "simulator",
    "PhoneCall": "softphone",
    "PhoneEvent": "softphone",
    "Softphone": "softphone",
    "Timeline": "timeline",
    "TimelineEntry": "timeline",
}

__all__ = [
    "AssistantTarget",
    "PhoneCall",
    "PhoneEvent",
    "SimulatedCall",
    "Softphone",
    "Timeline",
    "TimelineEntry",
    "TransferSeen",
    "simulate_call",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'voxflow.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(f"voxflow.testing.{home}"), name)
