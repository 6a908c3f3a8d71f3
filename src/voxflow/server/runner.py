"""``CallRunner``: one phone call wired to its :class:`~voxflow.engine.session.CallSession`.

All decisions are the session's; this adapter only carries its commands out and feeds back what
happened. Key presses go to the session the moment the line reports them (a task of their own,
never behind synthesis, delivery or playback), and the line's media tick pulls each outbound
frame from the session, so a key that cuts a prompt silences it from the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, cast

from voxflow.dispatch import DeliveryResult, SessionDispatch
from voxflow.engine.commands import (
    Command,
    ConfigureListening,
    DeliverEvent,
    HangUp,
    Note,
    PreparePrompt,
    Transfer,
)
from voxflow.engine.playback import Samples
from voxflow.engine.session import CallSession
from voxflow.errors import VoxflowError
from voxflow.lines.sip import LineCall
from voxflow.protocol import Action, Event
from voxflow.server.prompts import PromptMaker
from voxflow.server.recorder import CallRecorder

log = logging.getLogger(__name__)

TransferUri = Callable[[str, LineCall], str]
"""``(target number, call)`` → the SIP URI the caller is referred to."""

_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class CallRunner:
    """Runs one answered call until it is over and ``session_end`` has been handed over."""

    def __init__(
        self,
        call: LineCall,
        session: CallSession,
        *,
        dispatch: SessionDispatch,
        prompts: PromptMaker,
        recorder: CallRecorder,
        transfer_uri: TransferUri,
        end_drain_s: float = 6.0,
    ) -> None:
        self.call = call
        self.session = session
        self.session_id = session.session.id
        self._dispatch = dispatch
        self._prompts = prompts
        self._recorder = recorder
        self._transfer_uri = transfer_uri
        self._end_drain_s = end_drain_s
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    # -- the call's life -------------------------------------------------------------------------

    async def run(self) -> None:
        """Start the session, serve the call, end the session exactly once."""
        self._recorder.call_started(self.session.session, self.call.call_id)
        self.call.set_audio_source(self._next_frame)
        self.session.start(time.monotonic())
        self._pump()
        keys = asyncio.create_task(self._read_keys(), name=f"keys-{self.session_id}")
        try:
            end = await self.call.wait_ended()
            reason = f"{end.reason} ({end.by})"
        finally:
            keys.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keys
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

    async def _read_keys(self) -> None:
        async for press in self.call.presses():
            self._recorder.line(
                self.session_id, "key", {"digit": press.key, "source": str(press.source)}
            )
            self.session.key_pressed(press.key, time.monotonic())
            self._pump()

    def _next_frame(self) -> Samples | None:
        frame = self.session.next_frame(time.monotonic())
        self._pump()
        return frame

    # -- results from the assistant ---------------------------------------------------------------

    def actions_received(self, actions: list[Action]) -> None:
        """The assistant's actions for this call, in order."""
        self._recorder.actions(self.session_id, actions)
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
            case HangUp(reason=reason):
                self._recorder.line(self.session_id, "hangup", {"reason": reason})
                self.call.hangup()
            case Transfer():
                self._spawn(self._transfer(command))
            case ConfigureListening():
                self._note("warning", "configure_transcription: speech recognition is not "
                           "available on this line; action ignored")
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
        status = "" if outcome.status is None else f"{outcome.status} "
        detail = f"to {command.target} ({uri}): {status}{outcome.reason}".strip()
        self._recorder.line(self.session_id, "transfer_result",
                            {"reason": detail, "success": outcome.success})
        self.session.transfer_result(outcome.success, detail, time.monotonic())
        self._pump()

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

