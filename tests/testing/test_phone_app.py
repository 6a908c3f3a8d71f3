"""The terminal softphone driven by Textual's pilot against the real engine on 127.0.0.1."""

from __future__ import annotations

import time
import wave
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Static

from voxflow.sdk import load_assistant
from voxflow.testing.phone_app import PhoneApp

IVR = "examples.ivr_menu_sdk:assistant"


async def _until(pilot: Pilot[None], app: PhoneApp, what: str,
                 seen: Callable[[list[str]], bool], max_wait: float = 10.0) -> list[str]:
    """Let the app run until ``seen(log lines)``; fail showing the log if it never is."""
    deadline = time.monotonic() + max_wait
    while not seen(app.log_lines):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not in the log\n" + "\n".join(app.log_lines))
        await pilot.pause(0.05)
    return app.log_lines


def _phone(tmp_path: Path) -> PhoneApp:
    return PhoneApp(assistant=load_assistant(IVR), assistant_label=IVR,
                    wav=tmp_path / "call.wav", sound=False)


async def test_dial_press_1_shows_the_transfer(tmp_path: Path) -> None:
    app = _phone(tmp_path)
    async with app.run_test() as pilot:
        await _until(pilot, app, "the menu", lambda lines: any(
            line.startswith("assistant says:") and "sales" in line for line in lines))
        assert app.state == "connected"
        await pilot.press("1")
        lines = await _until(pilot, app, "the REFER", lambda lines: any(
            "REFER to sip:+49211100200@" in line for line in lines))
        assert "you pressed 1 (sent by RFC 4733)" in lines
        assert "voxflow heard key 1 via rfc4733" in lines
        assert "assistant: transfer → +49211100200" in lines
        # After the transfer voxflow ends the call; the audio is written then.
        await _until(pilot, app, "the end", lambda lines: any(
            line.startswith("call audio") for line in lines))
        assert app.state == "ended"
        await pilot.press("q")
    assert app.call is not None
    with wave.open(str(tmp_path / "call.wav"), "rb") as wav:
        # The whole call, both directions: as many frames as the phone recorded.
        assert wav.getnchannels() == 2
        assert wav.getnframes() == app.call.stereo().shape[0] > 0


async def test_method_switch_info_press_and_hang_up(tmp_path: Path) -> None:
    app = _phone(tmp_path)
    async with app.run_test() as pilot:
        await _until(pilot, app, "the menu", lambda lines: any(
            line.startswith("assistant says:") for line in lines))
        await pilot.press("m")
        assert app.method == "info"
        assert "DTMF method: SIP INFO" in str(app.query_one("#state", Static).render())
        await pilot.press("9")  # 9 repeats the menu: the call stays up
        lines = await _until(pilot, app, "the INFO key at the engine", lambda lines: any(
            line == "voxflow heard key 9 via sip_info" for line in lines))
        assert "you pressed 9 (sent by SIP INFO)" in lines
        assert "voxflow → assistant: dtmf_received 9" in lines
        # s opens the sentence input: typed digits are text there, not DTMF.
        await pilot.press("s", *"press 2", "enter")
        lines = await _until(pilot, app, "the spoken sentence", lambda lines: any(
            line.startswith('you say: "press 2"') for line in lines))
        assert not any(line.startswith("you pressed 2") for line in lines)
        # The speech goes out as the caller's audio (queued, sent frame by frame).
        assert app.call is not None
        deadline = time.monotonic() + 5.0
        while max(int(abs(f.astype(int)).max()) for f in app.call.sent) < 1000:
            assert time.monotonic() < deadline, "the sentence's audio was never sent"
            await pilot.pause(0.05)
        await pilot.press("h")
        lines = await _until(pilot, app, "the hang-up", lambda lines: any(
            line.startswith("call ended by local") for line in lines))
        assert app.state == "ended"
        assert app.call is not None and not app.call.live
        await pilot.press("q")
    assert app.wav_written == tmp_path / "call.wav" and app.wav_written.exists()
