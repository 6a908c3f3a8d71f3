"""The IVR example (examples/ivr_menu_sdk.py) through voxflow.testing on the simulated line."""

from __future__ import annotations

import pytest

from voxflow.testing import simulate_call

IVR = "examples.ivr_menu_sdk:assistant"


@pytest.mark.parametrize(("key", "number"), [("1", "+49211100200"), ("2", "+49211100201")])
async def test_key_transfers_to_its_department(voxflow_call, key: str, number: str) -> None:
    async with voxflow_call(IVR) as call:
        assert "sales" in await call.expect_speak(contains="sales")
        call.press(key)
        transfer = await call.expect_transfer(number)
        assert transfer.number == number and transfer.accepted
        await call.expect_hangup()
        await call.expect_event("session_end")
    assert [a.type for a in call.actions] == ["speak", "transfer"]
    assert [t.number for t in call.transfers] == [number]


async def test_nine_repeats_the_menu_then_one_transfers(voxflow_call) -> None:
    async with voxflow_call(IVR) as call:
        await call.expect_speak(contains="press 1 for sales")
        call.press("9")
        event = await call.expect_event("dtmf_received")
        assert event.digit == "9"  # type: ignore[union-attr]
        await call.expect_speak(contains="press 1 for sales")  # the menu, once more
        call.press("1")
        await call.expect_transfer("+49211100200")
        await call.expect_hangup()
    digits = [e.digit for e in call.events if e.type == "dtmf_received"]  # type: ignore[union-attr]
    assert digits == ["9", "1"]


async def test_hash_says_goodbye_and_hangs_up(voxflow_call) -> None:
    async with voxflow_call(IVR) as call:
        await call.expect_speak(contains="hash key")
        call.press("#")
        assert await call.expect_speak(contains="goodbye") == "Goodbye!"
        await call.expect_hangup()
        await call.expect_event("session_end")
    assert call.transfers == []
    assert call.ended_by == "voxflow"


async def test_an_assistant_object_and_keys_by_sip_info_and_inband() -> None:
    from examples.ivr_menu_sdk import assistant  # type: ignore[import-not-found]

    async with simulate_call(assistant) as call:
        await call.expect_speak(contains="sales")
        call.press("7", method="info")
        await call.expect_speak(contains="sales")
        call.press("2", method="inband")
        await call.expect_transfer("+49211100201")
    sources = [e.data["source"] for e in call.timeline.of("engine", "key")]
    assert sources == ["sip_info", "inband"]


async def test_the_prompt_is_played_on_the_line(voxflow_call) -> None:
    async with voxflow_call(IVR, line="sim") as call:
        await call.expect_event("assistant_speak")
        await call.pause(0.5)
        played = call.recording()
    assert played.shape[1] == 1
    assert played.size >= 8000  # at least a second of the menu was played (4x speed)
    assert abs(played.astype(int)).max() > 1000  # and it was speech, not silence
