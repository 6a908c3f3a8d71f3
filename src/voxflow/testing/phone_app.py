"""``voxflow call``: an interactive terminal softphone (a small Textual app).

It dials a SIP URI with the built-in :class:`~voxflow.testing.softphone.Softphone`. Without a
URI it first starts an engine in process on 127.0.0.1 with an assistant and dials that; then it
also taps the engine's recorder, so the log shows what the assistant says (the text of its
speak actions), the events it gets and the key sources the engine heard. Against a foreign URI
the phone hears audio only: the log shows the phone's own events and the level meter shows
how loud the far end is.

Keys: 0-9 ``*`` ``#`` send DTMF by the selected method (``m`` cycles RFC 4733 → SIP INFO →
in-band), ``s`` opens an input whose sentence is spoken (espeak) as the caller's voice, ``h``
hangs up, ``q`` quits. The call's audio (caller left, far end right) is written to a stereo
WAV file when the call ends; the far end is also played on a sound device when the optional
``sounddevice`` package imports and an output device exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import math
import random
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Header, Input, Log, Static

from voxflow.dispatch import EventHandler, InProcessDispatcher
from voxflow.errors import SipStateError
from voxflow.server.app import VoxflowApp
from voxflow.server.config import ServeSettings
from voxflow.server.demo import write_stereo_wav
from voxflow.speech import TtsRegistry, TtsService, TtsSettings
from voxflow.testing.softphone import KeyMethod, PhoneCall, PhoneEvent, Softphone
from voxflow.testing.timeline import Timeline, TimelineEntry, TimelineRecorder

__all__ = ["METHOD_LABELS", "LocalEngine", "PhoneApp", "default_call_wav"]

log = logging.getLogger(__name__)

METHODS: tuple[KeyMethod, ...] = ("rfc4733", "info", "inband")
METHOD_LABELS: dict[str, str] = {"rfc4733": "RFC 4733", "info": "SIP INFO", "inband": "in-band"}
_KEY_NAMES = {"asterisk": "*", "number_sign": "#"}
_METER_WIDTH = 30
_METER_FLOOR_DB = -60.0
_METER_FRAMES = 5  # 100 ms of audio: short enough to follow speech, long enough to be steady


def default_call_wav() -> Path:
    """A fresh file in the temporary directory (a call must not litter the working folder)."""
    return Path(tempfile.gettempdir()) / f"voxflow-call-{time.strftime('%Y%m%d-%H%M%S')}.wav"


def level_dbfs(frames: list[npt.NDArray[np.int16]]) -> float:
    """RMS level of ``frames`` in dBFS (floored at the meter's bottom)."""
    if not frames:
        return _METER_FLOOR_DB
    samples = np.concatenate(frames).astype(np.float64)
    rms = math.sqrt(float(np.mean(samples * samples))) if samples.size else 0.0
    if rms <= 0.0:
        return _METER_FLOOR_DB
    return max(_METER_FLOOR_DB, 20.0 * math.log10(rms / 32768.0))


def meter_bar(db: float) -> str:
    """A fixed-width bar for a level between the floor and 0 dBFS."""
    filled = round((db - _METER_FLOOR_DB) / -_METER_FLOOR_DB * _METER_WIDTH)
    filled = min(_METER_WIDTH, max(0, filled))
    return "█" * filled + "·" * (_METER_WIDTH - filled)


class _LiveTimeline(Timeline):
    """A timeline that also hands every entry to a listener as it arrives."""

    def __init__(self, listener: Callable[[TimelineEntry], None]) -> None:
        super().__init__("terminal softphone")
        self._listener = listener

    def add(self, kind: str, name: str, text: str, data: Mapping[str, Any] | None = None, *,
            latency_ms: float | None = None, model: Any = None) -> TimelineEntry:
        entry = super().add(kind, name, text, data, latency_ms=latency_ms, model=model)
        self._listener(entry)
        return entry

    def adopt(self, other: Timeline) -> None:
        # Entries the engine recorded before the phone knew its call id: show them too.
        super().adopt(other)
        for entry in list(self.entries):
            self._listener(entry)


class LocalEngine:
    """The engine in process on 127.0.0.1 with one assistant, its recorder tapped."""

    def __init__(self, assistant: EventHandler, label: str,
                 listener: Callable[[TimelineEntry], None], callee: str = "+4921100000") -> None:
        base = random.randrange(20000, 30000) & ~1  # a port range tests running side by side
        settings = ServeSettings.model_validate({
            "sip_listen": "127.0.0.1:0", "rtp_ports": f"{base}-{base + 199}",
            "assistant": label,
        })
        self.app = VoxflowApp(settings, dispatcher=InProcessDispatcher(assistant))
        self.recorder = TimelineRecorder(None, "sip")
        self.app.recorder = self.recorder
        self.timeline = _LiveTimeline(listener)
        self.callee = callee

    @property
    def uri(self) -> str:
        """Where to dial the engine."""
        host, port = self.app.line.address
        return f"sip:{self.callee}@{host}:{port}"

    def watch(self, call_id: str) -> None:
        """Show the engine's side of the call with this SIP Call-ID."""
        self.recorder.watch(call_id, self.timeline)

    async def __aenter__(self) -> LocalEngine:
        await self.app.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.app.stop(grace_s=3.0)


class _SoundOut:
    """Plays the far end on the default output device, if ``sounddevice`` has one."""

    def __init__(self) -> None:
        self._stream: Any = None
        try:
            # Optional and untyped: imported by name so the phone works (WAV only) without it.
            sd: Any = importlib.import_module("sounddevice")
            sd.query_devices(kind="output")  # raises when there is no output device
            self._stream = sd.OutputStream(samplerate=8000, channels=1, dtype="int16")
            self._stream.start()
        except Exception as exc:  # no PortAudio, no device, busy device: WAV only
            log.debug("no sound device, the call goes to WAV only: %s", exc)
            self._stream = None

    @property
    def available(self) -> bool:
        """Whether audio is played."""
        return self._stream is not None

    def play(self, frames: list[npt.NDArray[np.int16]]) -> None:
        """Queue frames without blocking the event loop (drops what does not fit)."""
        if self._stream is None or not frames:
            return
        samples = np.concatenate(frames)
        room = int(self._stream.write_available)
        if room > 0:
            self._stream.write(samples[:room].reshape(-1, 1))

    def close(self) -> None:
        """Stop and close the stream."""
        if self._stream is not None:
            with contextlib.suppress(Exception):
                self._stream.stop()
                self._stream.close()
            self._stream = None


class PhoneApp(App[None]):
    """The terminal softphone. ``target=None`` dials an engine started in process."""

    TITLE = "voxflow call"
    CSS = """
    #state { height: 1; padding: 0 1; background: $boost; }
    #meter { height: 2; padding: 0 1; }
    #sentence { display: none; }
    #sentence.open { display: block; }
    Log { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(key, f"press('{key}')", key, show=False) for key in "0123456789"),
        Binding("asterisk", "press('*')", "*", show=False),
        Binding("number_sign", "press('#')", "#", show=False),
        Binding("m", "cycle_method", "DTMF method"),
        Binding("s", "open_sentence", "say"),
        Binding("h", "hang_up", "hang up"),
        Binding("q", "quit_phone", "quit"),
        Binding("escape", "close_sentence", "cancel", show=False),
    ]

    def __init__(self, target: str | None = None, *, assistant: EventHandler | None = None,
                 assistant_label: str = "", wav: Path | None = None,
                 method: KeyMethod = "rfc4733", voice: str = "en-us",
                 sound: bool = True) -> None:
        super().__init__()
        if target is None and assistant is None:
            raise ValueError("PhoneApp: give a target URI or an assistant for a local engine")
        self.target = target
        self.assistant = assistant
        self.assistant_label = assistant_label or "in-process assistant"
        self.wav = wav or default_call_wav()
        self.method: KeyMethod = method
        self.state = "starting"
        self.call: PhoneCall | None = None
        self.wav_written: Path | None = None
        self._voice = voice
        self._tts: TtsService | None = None
        self._sound = _SoundOut() if sound else None
        self._quit = asyncio.Event()
        self._played = 0

    # -- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="state")
        yield Log(id="log", highlight=False)
        yield Static(id="meter")
        yield Input(placeholder="a sentence to say as the caller (Enter speaks, Esc cancels)",
                    id="sentence")
        yield Footer()

    def on_mount(self) -> None:
        self._show_state("starting")
        self._meter_tick()
        self.set_interval(0.1, self._meter_tick)
        self.run_worker(self._run_call(), name="call", exit_on_error=False)

    @property
    def log_lines(self) -> list[str]:
        """The call log, line by line."""
        return list(self.query_one("#log", Log).lines)

    def note(self, text: str) -> None:
        """Add a line to the call log."""
        self.query_one("#log", Log).write_line(text)

    def _show_state(self, state: str) -> None:
        self.state = state
        self.sub_title = state
        sound = "sound device" if self._sound and self._sound.available else "WAV"
        self.query_one("#state", Static).update(
            f"call: {state}   DTMF method: {METHOD_LABELS[self.method]}   audio: {sound}")

    def _meter_tick(self) -> None:
        call = self.call
        live = call is not None and call.live  # an ended call shows silence, not its last frame
        heard = call.heard[-_METER_FRAMES:] if call is not None and live else []
        sent = call.sent[-_METER_FRAMES:] if call is not None and live else []
        far, near = level_dbfs(list(heard)), level_dbfs(list(sent))
        self.query_one("#meter", Static).update(
            f"far end {meter_bar(far)} {far:6.1f} dBFS\n"
            f"you     {meter_bar(near)} {near:6.1f} dBFS")
        if call is not None and self._sound is not None:
            fresh = call.heard[self._played:]
            self._played = len(call.heard)
            self._sound.play(list(fresh))

    # -- the call --------------------------------------------------------------------------

    async def _run_call(self) -> None:
        try:
            async with contextlib.AsyncExitStack() as stack:
                engine: LocalEngine | None = None
                target = self.target
                if target is None:
                    assert self.assistant is not None
                    engine = await stack.enter_async_context(
                        LocalEngine(self.assistant, self.assistant_label, self._engine_entry))
                    target = engine.uri
                    self.note(f"engine started with {self.assistant_label}")
                phone = await stack.enter_async_context(Softphone())
                self._show_state(f"dialling {target}")
                call = await phone.dial(target)
                self.call = call
                if engine is not None:
                    engine.watch(call.call_id)
                call.subscribe(self._phone_event)
                codec = call.leg.media.codec.name if call.leg is not None else "audio"
                self.note(f"call answered ({codec})")
                self._show_state("connected")
                quit_wait = asyncio.ensure_future(self._quit.wait())
                ended: asyncio.Future[Any] = call.ended
                await asyncio.wait({quit_wait, ended}, return_when=asyncio.FIRST_COMPLETED)
                quit_wait.cancel()
                if not call.ended.done():
                    call.hangup()
                    with contextlib.suppress(TimeoutError):
                        await call.wait_ended(3.0)
                self._write_wav(call)
        except (SipStateError, OSError, ValueError) as exc:
            self.note(f"call failed: {exc}")
            self._show_state("failed")
        finally:
            if self._sound is not None:
                self._sound.close()

    def _write_wav(self, call: PhoneCall) -> None:
        stereo = call.stereo()
        write_stereo_wav(self.wav, stereo)
        self.wav_written = self.wav
        self.note(f"call audio ({stereo.shape[0] / 8000:.1f} s, caller left, far end right): "
                  f"{self.wav}")

    def _phone_event(self, event: PhoneEvent) -> None:
        detail = event.detail
        if event.kind == "key":
            method = detail.get("method", "")
            label = METHOD_LABELS.get(method, method)
            self.note(f"you pressed {detail.get('key')} (sent by {label})")
        elif event.kind == "refer":
            accepted = "accepted" if detail.get("accepted") == "true" else "refused"
            self.note(f"transferred: REFER to {detail.get('target')} ({accepted})")
        elif event.kind == "ended":
            self.note(f"call ended by {detail.get('by')} ({detail.get('reason')})")
            self._show_state("ended")

    def _engine_entry(self, entry: TimelineEntry) -> None:
        """What the local engine recorded: the assistant's words and actions, key sources."""
        if entry.kind == "action" and entry.name == "speak":
            said = entry.data.get("text") or entry.data.get("ssml") or ""
            self.note(f'assistant says: "{said}"')
        elif entry.kind == "action":
            self.note(f"assistant: {entry.text}")
        elif entry.kind == "event" and entry.name != "assistant_speak":
            self.note(f"voxflow → assistant: {entry.text}")
        elif entry.kind == "engine" and entry.name == "key":
            self.note(f"voxflow heard key {entry.data.get('digit')} via "
                      f"{entry.data.get('source')}")
        elif entry.kind == "engine" and entry.name in ("transfer", "transfer_result"):
            self.note(f"voxflow: {entry.text}")

    # -- actions ---------------------------------------------------------------------------

    def action_press(self, key: str) -> None:
        """Send ``key`` by the selected DTMF method."""
        key = _KEY_NAMES.get(key, key)
        if self.call is None or not self.call.live:
            self.note(f"key {key} not sent: no call")
            return
        self.call.press(key, self.method)  # logged through the phone's key event

    def action_cycle_method(self) -> None:
        """Next DTMF method: RFC 4733 → SIP INFO → in-band."""
        self.method = METHODS[(METHODS.index(self.method) + 1) % len(METHODS)]
        self.note(f"DTMF method: {METHOD_LABELS[self.method]}")
        self._show_state(self.state)

    def action_open_sentence(self) -> None:
        """Show the input for a sentence to say."""
        box = self.query_one("#sentence", Input)
        box.add_class("open")
        box.focus()

    def action_close_sentence(self) -> None:
        """Hide the sentence input without saying anything."""
        box = self.query_one("#sentence", Input)
        box.value = ""
        box.remove_class("open")
        self.set_focus(None)

    async def on_input_submitted(self, message: Input.Submitted) -> None:
        """Speak the typed sentence through TTS as the caller's voice."""
        text = message.value.strip()
        self.action_close_sentence()
        if not text:
            return
        if self.call is None or not self.call.live:
            self.note("nothing said: no call")
            return
        if self._tts is None:
            self._tts = TtsService(TtsRegistry.from_settings(
                TtsSettings(default_provider="espeak", espeak_voice=self._voice)))
        synthesis = await self._tts.speak(text=text, sample_rate=8000)
        if self.call.live:
            seconds = self.call.play(synthesis.samples)
            self.note(f'you say: "{text}" ({seconds:.1f} s of speech)')

    def action_hang_up(self) -> None:
        """End the call (the far end's answer shows as "call ended")."""
        if self.call is not None and self.call.live:
            self.note("hanging up")
            self.call.hangup()

    async def action_quit_phone(self) -> None:
        """Hang up if needed, write the WAV, stop the engine, leave."""
        self._quit.set()
        for worker in list(self.workers):
            with contextlib.suppress(Exception):
                await worker.wait()
        self.exit()
