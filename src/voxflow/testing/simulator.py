"""``simulate_call``: one phone call against an assistant through the real engine.

``line="sim"`` runs the engine's own pieces (a :class:`~voxflow.server.runner.CallRunner`
around a :class:`~voxflow.engine.session.CallSession`, the dispatch to the assistant, TTS) on
an in-process :class:`~voxflow.testing.simline.SimLineCall`: no sockets, fast.
``line="sip"`` starts a whole :class:`~voxflow.server.app.VoxflowApp` on 127.0.0.1 and calls
it from the built-in :class:`~voxflow.testing.softphone.Softphone` over real SIP/RTP.

Expectations (``expect_speak``, ``expect_transfer`` …) are matched in order: each looks at
what happened after the entry the previous one matched, waiting up to its timeout. A failed
expectation raises ``AssertionError`` showing the whole timeline.

``say`` sends the caller's voice (espeak) down the line; the engine's listener recognises it
(offline, grammar mode: best with words the assistant's prompt offered) and a ``user_speak``
follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

from voxflow.dispatch import (
    DeliveryResult,
    Dispatcher,
    EventHandler,
    InProcessDispatcher,
    SessionDispatch,
    WebhookDispatcher,
    WebSocketDispatcher,
)
from voxflow.engine.records import CallRecordStore
from voxflow.engine.session import CallSession, SessionConfig
from voxflow.lines.sip import LineCall
from voxflow.media.dtmf import DtmfSource
from voxflow.protocol import Action, Event
from voxflow.sdk.loading import load_assistant
from voxflow.server.app import VoxflowApp, transfer_uri
from voxflow.server.config import ServeSettings
from voxflow.server.identity import build_session
from voxflow.server.prompts import PromptMaker
from voxflow.server.runner import CallRunner
from voxflow.sip.uri import SipUri
from voxflow.speech import PromptCache, TtsRegistry, TtsService, TtsSettings
from voxflow.testing.simline import SimLineCall
from voxflow.testing.softphone import KeyMethod, PhoneCall, PhoneEvent, Softphone
from voxflow.testing.timeline import Timeline, TimelineEntry, TimelineRecorder

__all__ = ["AssistantTarget", "SimulatedCall", "TransferSeen", "simulate_call"]

AssistantTarget = EventHandler | str
"""An ``Assistant`` (anything with ``async handle(event)``), ``"module:attribute"``, or the
URL of a webhook (``http(s)://``) or WebSocket (``ws(s)://``) assistant."""
LineKind = Literal["sim", "sip"]

_SOURCES: dict[str, DtmfSource] = {"rfc4733": DtmfSource.RFC4733, "info": DtmfSource.SIP_INFO,
                                   "inband": DtmfSource.INBAND}
_KEY_GAP_S = {"rfc4733": 0.0, "info": 0.2, "inband": 0.0}
# Prompts are the same in every test; synthesising each once per process keeps suites fast.
_PROMPTS = PromptCache()
_TRANSFER_DOMAIN = "trunk.invalid"


@dataclass(frozen=True, slots=True)
class TransferSeen:
    """A transfer the caller's side saw: the number and the SIP URI it was sent to."""

    number: str
    uri: str
    accepted: bool


def _number_of(uri: str) -> str:
    try:
        return SipUri.parse(uri).user or uri
    except ValueError:
        return uri


def _same_number(a: str, b: str) -> bool:
    return a.removeprefix("tel:").lstrip("+") == b.removeprefix("tel:").lstrip("+")


def _dispatcher_for(target: AssistantTarget, timeout_s: float, api_token: str | None,
                    signing_secret: str | None) -> Dispatcher:
    if not isinstance(target, str):
        return InProcessDispatcher(target, timeout_s=timeout_s)
    if target.startswith(("http://", "https://")):
        return WebhookDispatcher(target, timeout_s=timeout_s, api_token=api_token,
                                 signing_secret=signing_secret)
    if target.startswith(("ws://", "wss://")):
        return WebSocketDispatcher(target, api_token=api_token)
    return InProcessDispatcher(load_assistant(target), timeout_s=timeout_s)


def _prompt_maker(voice: str) -> PromptMaker:
    registry = TtsRegistry.from_settings(TtsSettings(default_provider="espeak",
                                                     espeak_voice=voice))
    return PromptMaker(TtsService(registry, _PROMPTS))


class SimulatedCall:
    """One call in progress; made by :func:`simulate_call`. See the module docstring."""

    def __init__(self, line: LineKind, timeline: Timeline, default_timeout: float,
                 prompts: PromptMaker) -> None:
        self.line = line
        self.timeline = timeline
        self.default_timeout = default_timeout
        self.session_id = ""
        self.transfers: list[TransferSeen] = []
        self.ended_by: str | None = None
        self._cursor = 0
        self._prompts = prompts
        self._steps: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
        self._worker = asyncio.create_task(self._run_steps(), name="simulated-caller")
        self._step_error: BaseException | None = None
        self.sim: SimLineCall | None = None
        self.phone_call: PhoneCall | None = None

    # -- what the caller does (queued in order; expectations wait for their effects) -------------

    def press(self, keys: str, method: KeyMethod = "rfc4733") -> None:
        """Press ``keys`` one after the other, by RFC 4733, SIP INFO or in-band tones."""
        if method not in _SOURCES:
            raise ValueError(f"press: method {method!r} is not rfc4733, info or inband")
        for key in keys:
            self._steps.put_nowait(functools.partial(self._press, key, method))

    def say(self, text: str) -> None:
        """Speak ``text`` as the caller (espeak audio down the line); the engine recognises it
        and delivers a ``user_speak``."""
        self._steps.put_nowait(lambda: self._say(text))

    def hang_up(self) -> None:
        """The caller hangs up."""
        self._steps.put_nowait(self._hang_up)

    async def pause(self, seconds: float) -> None:
        """Let ``seconds`` of call time pass (after the queued caller steps)."""
        await self._drain_steps()
        await asyncio.sleep(seconds)

    # -- expectations ---------------------------------------------------------------------------

    async def expect_event(self, type: str, *,
                           timeout: float | None = None) -> Event:  # noqa: ASYNC109
        """The next event of this ``type`` delivered to the assistant."""
        entry = await self._expect(f"expect_event({type!r})",
                                   lambda e: e.kind == "event" and e.name == type, timeout)
        return cast(Event, entry.model)

    async def expect_speak(self, contains: str | None = None, *,
                           timeout: float | None = None) -> str:  # noqa: ASYNC109
        """The next ``speak`` action (whose text/SSML contains ``contains``, case-insensitive);
        returns its text."""
        wanted = (contains or "").lower()

        def match(entry: TimelineEntry) -> bool:
            said = str(entry.data.get("text") or entry.data.get("ssml") or "")
            return entry.kind == "action" and entry.name == "speak" and wanted in said.lower()

        what = f"expect_speak(contains={contains!r})" if contains else "expect_speak()"
        entry = await self._expect(what, match, timeout)
        return str(entry.data.get("text") or entry.data.get("ssml") or "")

    async def expect_transfer(self, number: str | None = None, *,
                              timeout: float | None = None) -> TransferSeen:  # noqa: ASYNC109
        """The next transfer that reached the caller's line (simulator: the transfer the engine
        made; SIP: the REFER the softphone received), to ``number`` if given."""

        def match(entry: TimelineEntry) -> bool:
            return (entry.kind == "caller" and entry.name == "transfer"
                    and (number is None or _same_number(str(entry.data["number"]), number)))

        what = f"expect_transfer({number!r})" if number else "expect_transfer()"
        entry = await self._expect(what, match, timeout)
        return cast(TransferSeen, entry.model)

    async def expect_hangup(self, *, timeout: float | None = None) -> str:  # noqa: ASYNC109
        """The engine (not the caller) ends the call; returns how."""
        entry = await self._expect(
            "expect_hangup()",
            lambda e: e.kind == "caller" and e.name == "ended" and e.data.get("by") == "voxflow",
            timeout)
        return str(entry.data.get("reason", ""))

    async def expect_action(self, type: str, *,
                            timeout: float | None = None) -> Action:  # noqa: ASYNC109
        """The next action of this ``type`` the assistant returned."""
        entry = await self._expect(f"expect_action({type!r})",
                                   lambda e: e.kind == "action" and e.name == type, timeout)
        return cast(Action, entry.model)

    @property
    def events(self) -> list[Event]:
        """Every event delivered to the assistant so far."""
        return [cast(Event, e.model) for e in self.timeline.of("event")]

    @property
    def actions(self) -> list[Action]:
        """Every action the assistant returned so far."""
        return [cast(Action, e.model) for e in self.timeline.of("action")]

    def recording(self) -> npt.NDArray[np.int16]:
        """SIP line: both directions, ``[samples, 2]`` (caller left, voxflow right).
        Simulator: what the engine played, ``[samples, 1]``."""
        if self.phone_call is not None:
            return self.phone_call.stereo()
        played = self.sim.played if self.sim is not None else []
        if not played:
            return np.zeros((0, 1), dtype=np.int16)
        return np.concatenate(played).reshape(-1, 1)

    # -- internals -------------------------------------------------------------------------------

    async def _expect(self, what: str, match: Callable[[TimelineEntry], bool],
                      max_wait: float | None) -> TimelineEntry:
        limit = self.default_timeout if max_wait is None else max_wait
        await self._drain_steps()
        start = self._cursor
        try:
            index = await self.timeline.wait_for(match, start, limit)
        except TimeoutError:
            raise AssertionError(
                f"{what}: not seen within {limit:g} s ({self.line} line)\n"
                + self.timeline.render(mark=start)) from None
        self._cursor = index + 1
        return self.timeline.entries[index]

    async def _drain_steps(self) -> None:
        # Expectations are about the effects of the caller's steps, so those go out first.
        await self._steps.join()
        if self._step_error is not None:
            error, self._step_error = self._step_error, None
            raise AssertionError(f"a caller step failed: {error}\n"
                                 + self.timeline.render()) from error

    async def _run_steps(self) -> None:
        while True:
            step = await self._steps.get()
            try:
                await step()
            except Exception as error:  # reported by the next expectation
                self._step_error = error
            finally:
                self._steps.task_done()

    async def _press(self, key: str, method: KeyMethod) -> None:
        self.timeline.add("caller", "press", f"press {key} ({method})",
                          {"key": key, "method": method})
        if self.sim is not None:
            self.sim.press(key, _SOURCES[method])
        elif self.phone_call is not None:
            self.phone_call.press(key, method)
            # Back-to-back INFOs or tones would blur into one press; RFC 4733 queues itself.
            await asyncio.sleep(_KEY_GAP_S[method] if method != "inband" else 0.25)

    async def _say(self, text: str) -> None:
        synthesis = await self._prompts.tts.speak(text=text, sample_rate=8000)
        samples = synthesis.samples
        self.timeline.add("caller", "say",
                          f'say "{text}" ({samples.size / 8000:.2f} s audio)',
                          {"text": text})
        if self.sim is not None:
            self.sim.speak(samples)
        elif self.phone_call is not None:
            self.phone_call.play(samples)

    async def _hang_up(self) -> None:
        self.timeline.add("caller", "hangup", "caller hangs up")
        if self.sim is not None:
            self.sim.caller_hangup()
        elif self.phone_call is not None:
            self.phone_call.hangup()

    def _line_fact(self, what: str, detail: dict[str, str]) -> None:
        """What the caller's line saw from the engine (sim hook and softphone events alike)."""
        if what == "transfer" or what == "refer":
            uri = detail.get("uri") or detail.get("target", "")
            seen = TransferSeen(_number_of(uri), uri, detail.get("accepted") == "true")
            self.transfers.append(seen)
            self.timeline.add("caller", "transfer",
                              f"transfer reached the caller → {seen.number} ({uri})"
                              f"{'' if seen.accepted else ', refused'}",
                              {"number": seen.number, "uri": uri}, model=seen)
        elif what in ("hangup", "ended"):
            by = "voxflow" if what == "hangup" or detail.get("by") == "remote" else "caller"
            if self.ended_by is None:
                self.ended_by = by
                reason = detail.get("reason", "hangup")
                self.timeline.add("caller", "ended", f"call ended by {by} ({reason})",
                                  {"by": by, "reason": reason})
        elif what == "answered":
            self.timeline.add("caller", "answered",
                              f"call answered ({detail.get('codec', 'audio')})", detail)

    def _phone_event(self, event: PhoneEvent) -> None:
        if event.kind in ("refer", "ended", "answered"):
            self._line_fact(event.kind, dict(event.detail))

    async def _close(self) -> None:
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker


@contextlib.asynccontextmanager
async def _run_sim(call: SimulatedCall, target: AssistantTarget, *, caller: str, callee: str,
                   account_id: str, speed: float, accept_transfer: bool,
                   assistant_timeout: float, api_token: str | None,
                   signing_secret: str | None) -> AsyncIterator[SimulatedCall]:
    recorder = TimelineRecorder(None, "sim")
    runner: CallRunner | None = None

    async def on_actions(session_id: str, actions: list[Action]) -> None:
        if runner is not None:
            runner.actions_received(actions)

    async def on_fallback(session_id: str, result: DeliveryResult) -> None:
        pass  # the session counts failures itself and runs the fallback

    def on_result(result: DeliveryResult) -> None:
        recorder.delivery(result)
        if runner is not None:
            runner.delivery_result(result)

    dispatch = SessionDispatch(
        _dispatcher_for(target, assistant_timeout, api_token, signing_secret),
        on_actions=on_actions, on_fallback=on_fallback, on_result=on_result)
    line = SimLineCall(caller=caller, callee=callee, accept_transfer=accept_transfer,
                       speed=speed, on_line=call._line_fact)
    call.sim = line
    recorder.watch(line.call_id, call.timeline)
    session = build_session(caller=caller, callee=callee, asserted_identity=None,
                            account_id=account_id, plus=True)
    call.session_id = session.id
    # The runner is typed for the SIP line's call; the simulated one offers the same surface.
    runner = CallRunner(
        cast(LineCall, line),
        CallSession(session, config=SessionConfig(), wall_offset=time.time() - time.monotonic()),
        dispatch=dispatch, prompts=call._prompts, recorder=recorder,
        transfer_uri=lambda number, c: transfer_uri(number, c, _TRANSFER_DOMAIN),
        end_drain_s=assistant_timeout + 1.0,
    )
    running = asyncio.create_task(runner.run(), name=f"sim-call-{session.id}")
    try:
        yield call
    finally:
        if line.end is None:
            call._line_fact("ended", {"by": "local", "reason": "caller hung up at the end"})
            line.caller_hangup()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(running, assistant_timeout + 3.0)
        await line.close()
        await dispatch.aclose()
        await call._close()


@contextlib.asynccontextmanager
async def _run_sip(call: SimulatedCall, target: AssistantTarget, *, caller: str, callee: str,
                   account_id: str, accept_transfer: bool, assistant_timeout: float,
                   api_token: str | None, signing_secret: str | None,
                   records: Path) -> AsyncIterator[SimulatedCall]:
    base = random.randrange(20000, 30000) & ~1
    options: dict[str, Any] = {
        "sip_listen": "127.0.0.1:0", "rtp_ports": f"{base}-{base + 199}",
        "account_id": account_id, "records": str(records), "webhook_timeout": assistant_timeout,
        "api_token": api_token, "signing_secret": signing_secret,
    }
    dispatcher: Dispatcher | None = None
    if isinstance(target, str) and target.startswith(("http://", "https://")):
        options["webhook"] = target
    elif isinstance(target, str) and target.startswith(("ws://", "wss://")):
        options["websocket"] = target
    elif isinstance(target, str):
        options["assistant"] = target
    else:
        options["assistant"] = f"<{type(target).__name__} object>"
        dispatcher = InProcessDispatcher(target, timeout_s=assistant_timeout)
    settings = ServeSettings.model_validate(options)
    app = VoxflowApp(settings, dispatcher=dispatcher,
                     records=CallRecordStore(records, flush_interval_s=0.05))
    recorder = TimelineRecorder(app.records, "sip")
    app.recorder = recorder
    app.prompts = call._prompts
    await app.start()
    phone = Softphone(user=caller.lstrip("+") or "caller")
    try:
        await phone.start()
        host, port = app.line.address
        phone_call = await phone.dial(f"sip:{callee}@{host}:{port}",
                                      accept_transfer=accept_transfer)
        call.phone_call = phone_call
        recorder.watch(phone_call.call_id, call.timeline)
        phone_call.subscribe(call._phone_event)
        call._line_fact("answered", {"codec": phone_call.leg.media.codec.name
                                     if phone_call.leg else "audio"})
        session = await recorder.session_for(phone_call.call_id, 10.0)
        call.session_id = session.id
        yield call
    finally:
        if call.phone_call is not None and not call.phone_call.ended.done():
            call.phone_call.hangup()
            with contextlib.suppress(TimeoutError):
                await call.phone_call.wait_ended(3.0)
        await phone.close()
        await app.stop()
        await call._close()


@contextlib.asynccontextmanager
async def simulate_call(
    assistant: AssistantTarget,
    *,
    line: LineKind = "sim",
    caller: str = "+4930123456",
    callee: str = "+49211555",
    account_id: str = "account-123",
    timeout: float = 10.0,  # noqa: ASYNC109 - the default for every expectation, not a wait
    speed: float = 4.0,
    accept_transfer: bool = True,
    assistant_timeout: float = 5.0,
    api_token: str | None = None,
    signing_secret: str | None = None,
    tts_voice: str = "en-us",
) -> AsyncIterator[SimulatedCall]:
    """Place one call to ``assistant`` through the engine; see the module docstring.

    ``timeout`` is the default wait of each expectation; ``speed`` is how much faster than
    real time prompts play on the simulated line (the SIP line always runs in real time);
    ``accept_transfer`` decides whether the caller's side accepts the engine's transfers.
    """
    if line not in ("sim", "sip"):
        raise ValueError(f"line must be 'sim' or 'sip', got {line!r}")
    prompts = _prompt_maker(tts_voice)
    call = SimulatedCall(line, Timeline(f"{line} line, call {uuid.uuid4().hex[:8]}"), timeout,
                         prompts)
    if line == "sim":
        runs = _run_sim(call, assistant, caller=caller, callee=callee, account_id=account_id,
                        speed=speed, accept_transfer=accept_transfer,
                        assistant_timeout=assistant_timeout, api_token=api_token,
                        signing_secret=signing_secret)
        async with runs as ready:
            yield ready
        return
    with tempfile.TemporaryDirectory(prefix="voxflow-call-") as scratch:
        runs = _run_sip(call, assistant, caller=caller, callee=callee, account_id=account_id,
                        accept_transfer=accept_transfer, assistant_timeout=assistant_timeout,
                        api_token=api_token, signing_secret=signing_secret,
                        records=Path(scratch) / "calls.sqlite3")
        async with runs as ready:
            yield ready
