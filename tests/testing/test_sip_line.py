"""The same expectations over the real SIP/RTP line: the engine on 127.0.0.1, called by the
built-in softphone (keys by RFC 4733, SIP INFO and in-band tones; transfers by REFER)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from voxflow.testing import simulate_call

IVR = "examples.ivr_menu_sdk:assistant"


async def test_ivr_keys_by_info_and_rfc4733_transfer_by_refer() -> None:
    async with simulate_call(IVR, line="sip") as call:
        await call.expect_speak(contains="sales")
        call.press("9", method="info")
        await call.expect_speak(contains="sales")
        await call.expect_event("assistant_speak")
        call.press("1")
        transfer = await call.expect_transfer("+49211100200")
        assert transfer.uri.startswith("sip:+49211100200@127.0.0.1:")
        await call.expect_hangup()
        await call.expect_event("session_end")
        audio = call.recording()
    keys = [(e.data["digit"], e.data["source"]) for e in call.timeline.of("engine", "key")]
    assert keys == [("9", "sip_info"), ("1", "rfc4733")]
    assert audio.shape[1] == 2
    assert np.abs(audio[:, 1].astype(int)).max() > 1000  # the menu was heard by the caller


async def test_ivr_key_in_band_over_rtp() -> None:
    async with simulate_call(IVR, line="sip") as call:
        # After the menu: during it, the engine's echo guard may take a tone for an echo of
        # the prompt's own audio.
        await call.expect_event("assistant_speech_ended")
        call.press("2", method="inband")
        await call.expect_transfer("+49211100201", timeout=5)
        await call.expect_hangup()
    assert [e.data["source"] for e in call.timeline.of("engine", "key")] == ["inband"]


async def test_refused_transfer_and_unreachable_target_end_the_call() -> None:
    # The caller refuses the REFER (603), so the engine tries a bridged call to the target; with
    # no trunk the target route is the caller's own address, and the softphone refuses it too.
    async with simulate_call(IVR, line="sip", accept_transfer=False) as call:
        await call.expect_speak(contains="sales")
        call.press("1")
        transfer = await call.expect_transfer("+49211100200")
        assert not transfer.accepted
        await call.expect_hangup()
    results = call.timeline.of("engine", "transfer_result")
    assert len(results) == 1 and results[0].data["success"] is False
    assert "603" in results[0].data["reason"] and "486" in results[0].data["reason"]


async def test_flask_pin_entry_by_sip_info(flask_webhook: Callable[[str], str]) -> None:
    async with simulate_call(flask_webhook("pin_entry_flask"), line="sip") as call:
        await call.expect_speak(contains="PIN")
        call.press("1234#", method="info")
        await call.expect_speak(contains="correct")
        await call.expect_hangup()
    digits = "".join(str(e.data["digit"]) for e in call.timeline.of("engine", "key"))
    assert digits == "1234#"


async def test_caller_speech_reaches_the_line() -> None:
    async with simulate_call("examples.confirm_sdk:assistant", line="sip") as call:
        await call.expect_event("assistant_speak")
        call.say("yes please")
        await call.pause(1.5)
        call.press("1")
        await call.expect_speak(contains="confirmed")
        await call.expect_hangup()
        audio = call.recording()
    said = call.timeline.of("caller", "say")
    assert len(said) == 1 and "yes please" in said[0].text
    assert np.abs(audio[:, 0].astype(int)).max() > 1000  # the caller's voice went out
