"""pytest plugin (registered through the ``pytest11`` entry point): the ``voxflow_call`` fixture.

``voxflow_call(assistant, **options)`` is :func:`~voxflow.testing.simulate_call` with the
suite's defaults: the line comes from ``--voxflow-line`` (or the ``voxflow_line`` ini setting,
default ``sim``), so the same tests can be run once more over real SIP/RTP::

    async def test_sales(voxflow_call):
        async with voxflow_call("examples.ivr_menu_sdk:assistant") as call:
            await call.expect_speak(contains="sales")
            call.press("1")
            await call.expect_transfer("+49211100200")
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the engine is imported when a test asks for a call, not at pytest start-up
    from voxflow.testing.simulator import AssistantTarget, SimulatedCall

CallFactory = Callable[..., "AbstractAsyncContextManager[SimulatedCall]"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--voxflow-line`` and the ``voxflow_line`` ini setting."""
    group = parser.getgroup("voxflow")
    group.addoption("--voxflow-line", choices=("sim", "sip"), default=None,
                    help="line for voxflow_call: sim (in-process, default) or sip (SIP/RTP)")
    parser.addini("voxflow_line", "default line for voxflow_call: sim or sip", default="sim")


@pytest.fixture
def voxflow_call(request: pytest.FixtureRequest) -> CallFactory:
    """``async with voxflow_call(assistant, **options) as call`` → a :class:`SimulatedCall`."""
    default_line = request.config.getoption("--voxflow-line") or request.config.getini(
        "voxflow_line")

    def open_call(assistant: AssistantTarget, **options: Any) -> \
            AbstractAsyncContextManager[SimulatedCall]:
        from voxflow.testing.simulator import simulate_call

        options.setdefault("line", default_line)
        return simulate_call(assistant, **options)

    return open_call
