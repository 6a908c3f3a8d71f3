"""``CallRunner``: one phone call wired to its :class:`~voxflow.engine.session.CallSession`.

All decisions are the session's; this adapter only carries its commands out and feeds back what
happened. Key presses go to the session the moment the line reports them (a task of their own,
never behind synthesis, delivery or playback), and the line's media tick pulls each outbound
frame from the session, so a key that cuts a prompt silences it from the next tick. The
caller's speech comes through a :class:`~voxflow.server.listener.CallListener` task of its own
(VAD, turns, recognition), which is told what is being played for its echo rule.

After a bridged transfer the session ends while the call goes on: from then on the caller's
audio and keys are the :class:`~voxflow.server.outbound.Bridge`'s alone. Listening stops at
``session_end`` (no speech recognition, no DTMF guard for a session that is over), and every
key the caller presses goes to the transfer target, never to the assistant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from voxflow.dispatch import DeliveryResult, SessionDispatch
from voxflow.engine.commands import (
    Command,
    ConfigureListening,
    DeliverEvent,
    HangUp,
    Note,
    PreparePrompt,
    SetEndOfTurnSilence,
    Transfer,
)
from voxflow.engine.playback import Samples
from voxflow.engine.session import CallSession
from voxflow.errors import VoxflowError
from voxflow.lines.calls import Call, TransferOutcome
from voxflow.lines.sip import DialError, LineCall
from voxflow.protocol import Action, Event, SpeakAction
from voxflow.server.listener import CallListener, ListenSettings, shared_stt_registry
from voxflow.server.outbound import Bridge
from voxflow.server.prompts import PromptMaker
from voxflow.server.recorder import CallRecorder
from voxflow.speech.stt import SttRegistry

log = logging.getLogger(__name__)

TransferUri = Callable[[str, Call], str]
"""``(target number, call)`` → where the call is transferred to (a SIP URI on the SIP line)."""

BridgeDial = Callable[[str, LineCall, "float | None"], Awaitable[LineCall]]
"""``(SIP URI, caller's call, ring timeout)`` → the answered second leg of a bridged transfer
(raises :class:`~voxflow.lines.sip.DialError`)."""


def refer_refused(call: LineCall, outcome: TransferOutcome) -> bool:
    """Whether the peer refused the REFER itself (no 2xx to it), as opposed to accepting it
    and then reporting that the target failed: only then is a bridged call worth trying."""
    if outcome.success or outcome.status is None or outcome.status < 300:
        return False
    return not any(200 <= status < 300 for status, _ in call.transfer_progress)

_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class CallRunner:
    """Runs one answered call (any line's :class:`~voxflow.lines.calls.Call`) until it is over
    and ``session_end`` has been handed over."""

    def __init__(
        self,
        call: Call,
        session: CallSession,
        *,
        dispatch: SessionDispatch,
        prompts: PromptMaker,
        recorder: CallRecorder,
        transfer_uri: TransferUri,
        end_drain_s: float = 6.0,
        bridge_dial: BridgeDial | None = None,
        listening: ListenSettings | None = None,
        stt: SttRegistry | None = None,
    ) -> None:
        self.call = call
        self.session = session
        self.session_id = session.session.id
        self._dispatch = dispatch
        self._prompts = prompts
        self._recorder = recorder
        self._transfer_uri = transfer_uri
        self._end_drain_s = end_drain_s
        self._bridge_dial = bridge_dial
        self.bridge: Bridge | None = None
        """The two legs of a bridged transfer, once the target answered."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._listening = listening if listening is not None else ListenSettings()
        self._stt = stt
        self._listener: CallListener | None = None
        self._listen_task: asyncio.Task[None] | None = None

    # -- the call's life -------------------------------------------------------------------------

    async def run(self) -> None:
        """Start the session, serve the call, end the session exactly once."""
        self._recorder.call_started(self.session.session, self.call.call_id)
        listen = await self._start_listening()
        self.call.set_audio_source(self._next_frame)
        self.session.start(time.monotonic())
        self._pump()
        keys = asyncio.create_task(self._read_keys(), name=f"keys-{self.session_id}")
        # Keys and speech are separate tasks: a key press never waits for a turn to end.
        listening = (asyncio.create_task(listen.run(), name=f"listen-{self.session_id}")
                     if listen is not None else None)
        self._listen_task = listening
        try:
            end = await self.call.wait_ended()
            reason = f"{end.reason} ({end.by})"
        finally:
            keys.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keys
            self._stop_listening()
            if listening is not None and listen is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await listening
                await listen.close()
        self.session.line_ended(reason, time.monotonic())
        self._pump()
        self._cancel_timer()
        for task in list(self._tasks):
            task.cancel()
        await self._dispatch.close_session(self.session_id, timeout_s=self._end_drain_s)
        self._recorder.call_ended(self.session_id, reason)

    def hangup(self, reason: str) -> None:
        """End the call from the engine's side (shutdown)."""
        self._recorder.line(self.session_id, "hangup", {"reason": reason})
        self.call.hangup()

    async def _start_listening(self) -> CallListener | None:
        """The call's listener, or None when listening is off or the recognizer cannot load."""
        if not self._listening.enabled:
            return None
        try:
            # The first call of the process loads the decoder (about 0.2 s): off the loop.
            stt = self._stt
            if stt is None:
                stt = await asyncio.to_thread(shared_stt_registry, self._listening)
            self._listener = CallListener(
                self.call, self.session, self._pump, stt=stt,
                settings=self._listening, note=self._note,
            )
        except VoxflowError as exc:
            self._note("error", f"speech recognition unavailable, the call runs without it: {exc}")
            return None
        return self._listener

    @property
    def listener(self) -> CallListener | None:
        """The call's listener while it listens; None when listening is off or has stopped
        (the call or its session is over)."""
        return self._listener

    def _stop_listening(self) -> None:
        """No more listening: the listener task ends (its ``run`` releases the recognizer)."""
        self._listener = None
        if self._listen_task is not None:
            self._listen_task.cancel()

    async def _read_keys(self) -> None:
        async for press in self.call.presses():
            if self.bridge is not None:  # transferred: the key is for the other party now
                self.bridge.forward_key(self._line_call, press)
                continue
            self._recorder.line(
                self.session_id, "key", {"digit": press.key, "source": str(press.source)}
            )
            self.session.key_pressed(press.key, time.monotonic())
            self._pump()

    def _next_frame(self) -> Samples | None:
        frame = self.session.next_frame(time.monotonic())
        self._pump()
        if self._listener is not None:
            self._listener.played(frame)
        return frame

    # -- results from the assistant ---------------------------------------------------------------

    def actions_received(self, actions: list[Action]) -> None:
        """The assistant's actions for this call, in order."""
        self._recorder.actions(self.session_id, actions)
        if self._listener is not None:
            for action in actions:
                if isinstance(action, SpeakAction):
                    self._listener.prompt_spoken(action.text or action.ssml or "")
        self.session.actions_received(actions, time.monotonic())
        self._pump()

    def delivery_result(self, result: DeliveryResult) -> None:
        """Count the result towards (or against) the session's fallback."""
        if result.failed:
            self.session.delivery_failed(result.error or result.outcome.value, time.monotonic())
        elif result.event_type is not None:
            self.session.delivery_succeeded()
        self._pump()

    # -- carrying out the session's commands ------------------------------------------------------

    def _pump(self) -> None:
        for command in self.session.drain():
            try:
                self._execute(command)
            except Exception:  # one failed command must not stop the rest or the call
                log.exception("command %r failed (session_id=%s)", command, self.session_id)
        self._arm_timer()

    def _execute(self, command: Command) -> None:
        match command:
            case DeliverEvent(event=event):
                self._recorder.event(event)
                self._dispatch.submit(cast(Event, event))
            case PreparePrompt():
                self._spawn(self._prepare(command))
            case HangUp(reason=reason) if self.bridge is not None:
                # Bridged: the session ends, the call stays up until either party hangs up.
                self._recorder.line(self.session_id, "session_ended", {"reason": reason})
                self.session.line_ended(reason, time.monotonic())
                # Nobody is listening any more: the bridge carries the caller's audio on.
                self._stop_listening()
                # Its session_end is queued behind this drain, and no frame pull pumps now.
                asyncio.get_running_loop().call_soon(self._pump)
            case HangUp(reason=reason):
                self._recorder.line(self.session_id, "hangup", {"reason": reason})
                self.call.hangup()
            case Transfer():
                self._spawn(self._transfer(command))
            case ConfigureListening(action=action):
                if self._listener is not None:
                    self._listener.configure(action)
                else:
                    self._note("warning", "configure_transcription: speech recognition is off "
                               "for this call; action ignored")
            case SetEndOfTurnSilence(milliseconds=milliseconds):
                if self._listener is not None:
                    self._listener.set_end_of_turn_silence(milliseconds)
            case Note(level=level, message=message):
                self._note(level, message)

    def _note(self, level: str, message: str) -> None:
        log.log(_LEVELS.get(level, logging.INFO), "%s (session_id=%s)", message, self.session_id)
        self._recorder.note(self.session_id, level, message)

    async def _prepare(self, command: PreparePrompt) -> None:
        try:
            samples = await self._prompts.make(command.action)
        except (VoxflowError, OSError) as exc:
            self.session.prompt_failed(command.item_id, str(exc), time.monotonic())
        else:
            self.session.prompt_ready(command.item_id, samples)
        self._pump()

    async def _transfer(self, command: Transfer) -> None:
        uri = self._transfer_uri(command.target, self.call)
        self._recorder.line(self.session_id, "transfer", {"target_phone_number": command.target,
                                                          "uri": uri})
        outcome = await self.call.transfer(uri, max_wait=float(command.timeout_s or 30))
        if self._bridge_dial is not None and refer_refused(self._line_call, outcome):
            outcome = await self._bridged(uri, outcome, command.timeout_s)
        status = "" if outcome.status is None else f"{outcome.status} "
        detail = f"to {command.target} ({uri}): {status}{outcome.reason}".strip()
        self._recorder.line(self.session_id, "transfer_result",
                            {"reason": detail, "success": outcome.success})
        self.session.transfer_result(outcome.success, detail, time.monotonic())
        self._pump()

    async def _bridged(self, uri: str, refused: TransferOutcome,
                       timeout_s: float | None) -> TransferOutcome:
        """REFER was refused: call the target ourselves and join the two calls' audio."""
        assert self._bridge_dial is not None
        why = f"REFER refused ({refused.status} {refused.reason})"
        self._recorder.line(self.session_id, "transfer_bridge", {"uri": uri, "reason": why})
        try:
            other = await self._bridge_dial(uri, self._line_call, timeout_s)
        except DialError as error:
            return TransferOutcome(False, error.status, f"{why}; bridged call {error}")
        if self.call.end is not None:
            other.hangup()
            return TransferOutcome(False, None, f"{why}; the caller hung up before the answer")
        self.bridge = Bridge(self._line_call, other)
        self._spawn(self.bridge.run())
        return TransferOutcome(True, 200, f"bridged ({why})")

    @property
    def _line_call(self) -> LineCall:
        """The call as a SIP call: only SIP calls are given ``bridge_dial``, so only they reach
        the REFER and bridging paths that use this."""
        return cast(LineCall, self.call)

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the user-input timeout -------------------------------------------------------------------

    def _arm_timer(self) -> None:
        due = self.session.get_timer()
        if due == self._timer_at:
            return
        self._cancel_timer()
        if due is not None:
            delay = max(0.0, due - time.monotonic())
            self._timer = asyncio.get_running_loop().call_later(delay, self._fire_timer)
            self._timer_at = due

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None

    def _fire_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.session.handle_timer(time.monotonic())
        self._pump()

