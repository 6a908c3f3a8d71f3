"""Test your assistant with real calls: a call simulator, a softphone and pytest helpers.

``async with simulate_call("examples.ivr_menu_sdk:assistant") as call:`` places one call
through the engine (``line="sim"``: in process; ``line="sip"``: real SIP/RTP on 127.0.0.1);
``call.press("1")``, ``await call.expect_transfer("+49211100200")``. See ``docs/testing.md``.
"""

from voxflow.testing.simulator import AssistantTarget, SimulatedCall, TransferSeen, simulate_call
from voxflow.testing.softphone import PhoneCall, PhoneEvent, Softphone
from voxflow.testing.timeline import Timeline, TimelineEntry

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
