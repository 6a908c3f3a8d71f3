"""``voxflow demo``: one real phone call against an assistant, shown as a timeline.

The engine starts on a free 127.0.0.1 port with the assistant in process; the built-in
softphone (:mod:`voxflow.testing.softphone`) calls it over SIP/RTP, waits for the first prompt,
presses the keys (alternately by RFC 4733 and SIP INFO, so both sources show) and accepts a
transfer. The timeline shows each prompt with its audio length, each key with the source it
travelled by, each action, and latencies; the call's audio (caller left, voxflow right) goes to
a stereo WAV file. No sound card is needed.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

from voxflow.protocol import DTMF_DIGITS
from voxflow.sdk import Assistant
from voxflow.testing import SimulatedCall, TimelineEntry, simulate_call
from voxflow.testing.softphone import KeyMethod

# How long the caller listens to a prompt before pressing: long enough to hear it start.
LISTEN_S = 1.0
WAIT_S = 15.0
_METHODS: tuple[KeyMethod, ...] = ("rfc4733", "info")
_METHOD_LABELS = {"rfc4733": "RFC 4733", "info": "SIP INFO", "inband": "in-band"}


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What the demo call did: its timeline entries, how it ended, and where the audio is."""

    entries: tuple[TimelineEntry, ...]
    outcome: str
    wav: Path
    audio_seconds: float


def check_keys(keys: str) -> None:
    """ValueError naming the characters that are not keypad keys."""
    unknown = sorted(set(keys) - set(DTMF_DIGITS))
    if unknown:
        raise ValueError(f"keys: {''.join(unknown)!r} are not keypad keys (0-9, *, #)")


def default_wav_path() -> Path:
    """A fresh file in the temporary directory (the demo must not litter the checkout)."""
    return Path(tempfile.gettempdir()) / f"voxflow-demo-{time.strftime('%Y%m%d-%H%M%S')}.wav"


def write_stereo_wav(path: Path, stereo: npt.NDArray[np.int16], rate: int = 8000) -> None:
    """16-bit PCM WAV with two channels (caller left, voxflow right)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.ascontiguousarray(stereo, dtype="<i2").tobytes())


async def _next(call: SimulatedCall, start: int, *names: str) -> TimelineEntry | None:
    """The first event named ``names`` from ``start`` on, or None once the call is over."""

    def match(entry: TimelineEntry) -> bool:
        return (entry.kind == "event" and entry.name in names) or (
            entry.kind == "caller" and entry.name == "ended")

    index = await call.timeline.wait_for(match, start, WAIT_S)
    entry = call.timeline.entries[index]
    return None if entry.kind == "caller" else entry


async def demo_call(assistant: Assistant, keys: str, wav: Path) -> DemoResult:
    """Place the call, press ``keys`` (one per prompt), wait for the end, write the audio."""
    check_keys(keys)
    async with simulate_call(assistant, line="sip", caller="+4930123456",
                             callee="+4921100000", timeout=WAIT_S) as call:
        prompt = await _next(call, 0, "assistant_speak")
        for index, key in enumerate(keys):
            if prompt is None or call.ended_by is not None:
                break
            await asyncio.sleep(LISTEN_S)
            start = len(call.timeline)
            call.press(key, _METHODS[index % len(_METHODS)])
            await call.pause(0)
            # Whatever the assistant does next: a new prompt, or the end of the call.
            prompt = await _next(call, start, "assistant_speak", "session_end")
            if prompt is not None and prompt.name == "session_end":
                prompt = None
        if call.ended_by is None:
            # Out of keys: hear the last prompt out (a goodbye is followed by the assistant's
            # own hang-up), then hang up if the assistant did not.
            await _next(call, len(call.timeline) - 1 if prompt is None else
                        call.timeline.entries.index(prompt), "assistant_speech_ended")
            await asyncio.sleep(0.5)
        if call.ended_by is None:
            call.hang_up()
        await call.expect_event("session_end")
        stereo = call.recording()
    write_stereo_wav(wav, stereo)
    if call.transfers:
        outcome = f"the caller was transferred to {call.transfers[-1].number}."
    elif call.ended_by == "voxflow":
        outcome = "the assistant hung up."
    else:
        outcome = "the caller hung up."
    return DemoResult(tuple(call.timeline), outcome, wav, stereo.shape[0] / 8000)


def _rows(entries: Sequence[TimelineEntry]) -> list[tuple[str, str, str, str]]:
    """(time, who, what, latency) for the entries worth showing."""
    rows: list[tuple[str, str, str, str]] = []
    last_press: TimelineEntry | None = None
    last_key: TimelineEntry | None = None
    for index, entry in enumerate(entries):
        at = f"{entry.at:6.3f} s"
        latency = ""
        if entry.kind == "caller" and entry.name == "press":
            last_press = entry
            method = str(entry.data.get("method"))
            rows.append((at, "caller", f"presses {entry.data.get('key')} "
                         f"(sends it by {_METHOD_LABELS.get(method, method)})", ""))
        elif entry.kind == "engine" and entry.name == "key":
            last_key = entry
            if last_press is not None:
                latency = f"{(entry.at - last_press.at) * 1000:.1f} ms after the press"
            rows.append((at, "voxflow", f"heard key {entry.data.get('digit')} via "
                         f"{entry.data.get('source')}", latency))
        elif entry.kind == "event":
            delivery = next((e for e in entries[index:] if e.kind == "delivery"
                             and e.name == entry.name), None)
            if delivery is not None and delivery.latency_ms is not None:
                latency = f"assistant answered in {delivery.latency_ms:.1f} ms"
            if entry.name == "dtmf_received" and last_key is not None:
                latency = (f"{(entry.at - last_key.at) * 1000:.1f} ms after the key; "
                           + latency).strip("; ")
            rows.append((at, "voxflow → assistant", entry.text, latency))
        elif entry.kind == "action":
            rows.append((at, "assistant → voxflow", entry.text, ""))
        elif entry.kind == "caller" and entry.name == "transfer":
            if last_press is not None:
                latency = f"{(entry.at - last_press.at) * 1000:.1f} ms after the press"
            rows.append((at, "caller", f"received REFER → {entry.data.get('number')}", latency))
        elif entry.kind == "caller" and entry.name in ("answered", "ended", "hangup"):
            rows.append((at, "caller", entry.text, ""))
        elif entry.kind == "engine" and entry.name == "transfer_result":
            rows.append((at, "voxflow", entry.text, ""))
    return rows


def render(result: DemoResult) -> Table:
    """The call's timeline as a rich table."""
    table = Table(title="voxflow demo: a real SIP/RTP call on 127.0.0.1", title_justify="left")
    table.add_column("call time", justify="right", no_wrap=True)
    table.add_column("who", no_wrap=True)
    table.add_column("what")
    table.add_column("latency")
    for row in _rows(result.entries):
        table.add_row(*row)
    return table


def run_demo(assistant: Assistant, keys: str, console: Console,
             wav: Path | None = None) -> DemoResult:
    """Run the demo call and print its timeline, outcome and where the audio went."""
    check_keys(keys)
    console.print("Calling the assistant from the built-in softphone over SIP/RTP on 127.0.0.1 …")
    result = asyncio.run(demo_call(assistant, keys, wav or default_wav_path()))
    console.print(render(result))
    console.print(f"Outcome: {result.outcome}")
    console.print(f"Call audio ({result.audio_seconds:.1f} s, stereo: caller left, voxflow "
                  f"right): {result.wav}", soft_wrap=True)
    return result
