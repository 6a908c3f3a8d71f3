"""What a failing expectation tells the user: what was expected, and the whole timeline."""

from __future__ import annotations

import pytest

from voxflow.testing import simulate_call

IVR = "examples.ivr_menu_sdk:assistant"


async def test_a_wrong_transfer_shows_the_timeline() -> None:
    async with simulate_call(IVR) as call:
        await call.expect_speak(contains="sales")
        call.press("1")
        with pytest.raises(AssertionError) as failure:
            await call.expect_transfer("+49999", timeout=0.5)
    message = str(failure.value)
    assert message.startswith("expect_transfer('+49999'): not seen within 0.5 s (sim line)")
    assert "event     session_start" in message
    assert "press 1 (rfc4733)" in message
    assert "event     dtmf_received 1" in message
    assert "action    transfer → +49211100200" in message
    assert "transfer reached the caller → +49211100200" in message
    assert "▶" in message  # where the expectation started looking


async def test_expectations_are_matched_in_order() -> None:
    async with simulate_call(IVR) as call:
        await call.expect_speak(contains="sales")
        call.press("#")
        await call.expect_hangup()
        # The menu was spoken before the hang-up: looking for it after that point fails.
        with pytest.raises(AssertionError, match=r"expect_speak\(contains='sales'\)"):
            await call.expect_speak(contains="sales", timeout=0.2)


async def test_a_missing_event_names_the_caller_step_before_it() -> None:
    async with simulate_call("examples.confirm_sdk:assistant") as call:
        await call.expect_speak(contains="confirm")
        call.press("9")
        with pytest.raises(AssertionError) as failure:
            await call.expect_event("user_speak", timeout=0.3)
    assert "dtmf_received" in str(failure.value)
    assert 'user_speak' in str(failure.value)


async def test_a_broken_caller_step_is_reported() -> None:
    async with simulate_call(IVR) as call:
        await call.expect_speak(contains="sales")
        with pytest.raises(ValueError, match="not rfc4733, info or inband"):
            call.press("1", method="smoke-signal")  # type: ignore[arg-type]
