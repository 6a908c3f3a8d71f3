"""The plain Flask keypad examples (no voxflow imports), served by werkzeug, as webhook URLs."""

from __future__ import annotations

from collections.abc import Callable

from voxflow.testing import simulate_call


async def test_flask_ivr_transfers_to_sales(flask_webhook: Callable[[str], str]) -> None:
    async with simulate_call(flask_webhook("ivr_menu_flask")) as call:
        await call.expect_speak(contains="sales")
        call.press("9")
        await call.expect_speak(contains="sales")
        call.press("1")
        await call.expect_transfer("+49211100200")
        await call.expect_hangup()
    deliveries = call.timeline.of("delivery", "dtmf_received")
    assert [d.data["outcome"] for d in deliveries] == ["ok", "ok"]
    assert all(d.latency_ms is not None and d.latency_ms > 0 for d in deliveries)


async def test_flask_ivr_hash_hangs_up(flask_webhook: Callable[[str], str]) -> None:
    async with simulate_call(flask_webhook("ivr_menu_flask")) as call:
        await call.expect_speak(contains="hash key")
        call.press("#")
        await call.expect_speak(contains="Goodbye")
        await call.expect_hangup()


async def test_flask_pin_entry(flask_webhook: Callable[[str], str]) -> None:
    async with simulate_call(flask_webhook("pin_entry_flask")) as call:
        await call.expect_speak(contains="PIN")
        call.press("0000#")
        await call.expect_speak(contains="not correct")
        call.press("1234#")
        await call.expect_speak(contains="correct")
        await call.expect_hangup()


async def test_flask_confirmation(flask_webhook: Callable[[str], str]) -> None:
    async with simulate_call(flask_webhook("confirm_flask")) as call:
        await call.expect_speak(contains="Press 1 to confirm")
        call.press("2")
        await call.expect_speak(contains="cancelled")
        await call.expect_hangup()
