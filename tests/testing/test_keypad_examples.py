"""PIN entry and confirmation examples through voxflow.testing on the simulated line."""

from __future__ import annotations

PIN = "examples.pin_entry_sdk:assistant"
CONFIRM = "examples.confirm_sdk:assistant"


async def test_right_pin_thanks_and_hangs_up(voxflow_call) -> None:
    async with voxflow_call(PIN) as call:
        await call.expect_speak(contains="four digit PIN")
        call.press("1234#")
        assert "PIN is correct" in await call.expect_speak(contains="correct")
        await call.expect_hangup()
    assert [a.type for a in call.actions][-2:] == ["speak", "hangup"]


async def test_wrong_pin_asks_again_and_keeps_the_call(voxflow_call) -> None:
    async with voxflow_call(PIN) as call:
        await call.expect_speak(contains="four digit PIN")
        call.press("9999#")
        said = await call.expect_speak(contains="not correct")
        assert said.endswith("then press the hash key.")
        call.press("1234#")
        await call.expect_speak(contains="PIN is correct")
        await call.expect_hangup()


async def test_short_pin_is_refused(voxflow_call) -> None:
    async with voxflow_call(PIN) as call:
        await call.expect_speak(contains="four digit PIN")
        call.press("12#")
        await call.expect_speak(contains="less than four digits")
        assert call.ended_by is None  # still waiting for the PIN


async def test_one_confirms_the_appointment(voxflow_call) -> None:
    async with voxflow_call(CONFIRM) as call:
        await call.expect_speak(contains="Press 1 to confirm")
        call.press("1")
        await call.expect_speak(contains="is confirmed")
        await call.expect_hangup()


async def test_two_cancels_the_appointment(voxflow_call) -> None:
    async with voxflow_call(CONFIRM) as call:
        await call.expect_speak(contains="Press 1 to confirm")
        call.press("2")
        await call.expect_speak(contains="has been cancelled")
        await call.expect_hangup()


async def test_another_key_asks_again(voxflow_call) -> None:
    async with voxflow_call(CONFIRM) as call:
        await call.expect_speak(contains="Press 1 to confirm")
        call.press("5")
        await call.expect_speak(contains="did not get that")
        call.press("1")
        await call.expect_speak(contains="is confirmed")
        await call.expect_hangup()
