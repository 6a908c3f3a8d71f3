"""``VoxflowApp``: the running engine — SIP line, assistant dispatch, TTS, call records.

It answers every call on the line, gives each a :class:`~voxflow.server.runner.CallRunner` and
routes the assistant's answers to the right one. ``stop`` hangs up live calls, waits until their
``session_end`` has been handed over, and flushes the call records.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

from voxflow.dispatch import (
    DeliveryResult,
    Dispatcher,
    InProcessDispatcher,
    SessionDispatch,
    WebhookDispatcher,
    WebSocketDispatcher,
)
from voxflow.engine.records import CallRecordStore
from voxflow.engine.session import CallSession, SessionConfig
from voxflow.errors import SipStateError
from voxflow.lines.sip import DEFAULT_RING_TIMEOUT, DialError, DialOutcome, LineCall, SipLine
from voxflow.protocol import Action, Session
from voxflow.sdk.loading import load_assistant
from voxflow.server.admin import EngineMetrics, MeteredRecorder
from voxflow.server.config import ServeSettings
from voxflow.server.identity import build_session
from voxflow.server.listener import ListenSettings
from voxflow.server.outbound import (
    DEFAULT_FLOW_ID,
    OutboundCall,
    dial_uri,
    outbound_session,
)
from voxflow.server.prompts import PromptMaker
from voxflow.server.recorder import CallRecorder
from voxflow.server.runner import CallRunner
from voxflow.speech import TtsRegistry, TtsService, TtsSettings

if TYPE_CHECKING:
    from voxflow.testing.simline import SimLineCall

log = logging.getLogger(__name__)


def make_dispatcher(settings: ServeSettings) -> Dispatcher:
    """The transport the settings name (webhook, WebSocket or an in-process assistant)."""
    if settings.webhook:
        return WebhookDispatcher(
            settings.webhook,
            timeout_s=settings.webhook_timeout,
            api_token=settings.api_token,
            signing_secret=settings.signing_secret,
        )
    if settings.websocket:
        return WebSocketDispatcher(settings.websocket, api_token=settings.api_token)
    assert settings.assistant is not None  # the settings validator guarantees one is set
    return InProcessDispatcher(load_assistant(settings.assistant),
                               timeout_s=settings.webhook_timeout)


def transfer_uri(target: str, call: LineCall, domain: str | None) -> str:
    """Where a transfer to ``target`` goes: a SIP URI as given, else ``sip:NUMBER@DOMAIN``.

    Decision: without a configured transfer domain (or trunk) the number is sent to the
    caller's own signalling address, i.e. the PBX or trunk the call came from routes it.
    """
    if target.startswith(("sip:", "sips:")):
        return target
    number = target.removeprefix("tel:")
    host = domain or f"{call.remote_address[0]}:{call.remote_address[1]}"
    return f"sip:{number}@{host}"


def _freeze_startup_objects() -> None:
    """Keep what is alive at start (modules, schemas, settings) out of the cyclic collector.

    Those objects live as long as the process, yet every full collection walked them all: at
    250 calls that paused the event loop, and with it every call's media and key presses, for
    20-40 ms. Once per process; garbage is collected first so none of it is kept.
    """
    global _startup_frozen
    if not _startup_frozen:
        _startup_frozen = True
        gc.collect()
        gc.freeze()


_startup_frozen = False
_OUTBOUND_KEPT = 1000  # placed calls remembered in memory (the API's view of their outcome)


class VoxflowApp:
    """The engine: owns the line, the dispatcher, TTS, records and the live calls."""

    def __init__(
        self,
        settings: ServeSettings,
        *,
        dispatcher: Dispatcher | None = None,
        records: CallRecordStore | None = None,
        flow_id: str = DEFAULT_FLOW_ID,
        phone_number: str | None = None,
        ring_timeout: float = DEFAULT_RING_TIMEOUT,
    ) -> None:
        self.settings = settings
        self.flow_id = flow_id
        """The AI flow id the outbound-call API answers to."""
        self.ring_timeout = ring_timeout
        self.line = SipLine(settings.line_config())
        self.records = records if records is not None else CallRecordStore(
            Path(settings.records) if settings.records else None
        )
        self.metrics = EngineMetrics()
        self.recorder: CallRecorder = MeteredRecorder(self.records, "sip", self.metrics)
        self._simulated_recorder = MeteredRecorder(self.records, "simulated", self.metrics)
        self.simulated: dict[str, SimLineCall] = {}
        """The live calls of the in-process simulated line (admin dashboard), by session id."""
        self.prompts = PromptMaker(TtsService(TtsRegistry.from_settings(TtsSettings(
            default_provider=settings.tts_provider, espeak_voice=settings.tts_voice
        ))))
        self.dispatch = SessionDispatch(
            dispatcher or make_dispatcher(settings),
            on_actions=self._on_actions,
            on_fallback=self._on_fallback,
            on_result=self._on_result,
            failure_threshold=settings.failure_threshold,
        )
        self.session_config = SessionConfig(
            max_consecutive_failures=settings.failure_threshold,
            fallback_text=settings.fallback_text,
            # user_speech_started exists only in the WebSocket integration (protocol.md §2).
            emit_speech_started=bool(settings.websocket),
        )
        self.listening = ListenSettings.from_serve(settings)
        self.calls: dict[str, CallRunner] = {}
        self._runs: set[asyncio.Task[None]] = set()
        self._acceptor: asyncio.Task[None] | None = None
        trunk = settings.line_config().trunk
        self._transfer_domain = settings.transfer_domain or (
            f"{trunk.host}:{trunk.port}" if trunk else None
        )
        self._from_user = (trunk.user or trunk.username) if trunk else None
        self.phone_number = phone_number or self._from_user or settings.sip_user
        """Our number: the caller of the calls we place."""
        self.outbound: dict[str, OutboundCall] = {}
        """Calls placed since start, by session id (their outcome once known)."""

    async def start(self) -> None:
        """Open the SIP line and start answering calls."""
        _freeze_startup_objects()
        await self.line.start()
        self._acceptor = asyncio.create_task(self._accept(), name="voxflow-accept")

    @property
    def ready_line(self) -> str:
        """The one line logged when calls can come in."""
        return f"voxflow ready: {self.line.uri}, assistant {self.settings.assistant_label}"

    async def stop(self, grace_s: float = 5.0) -> None:
        """Hang up live calls, hand over their session_end, close everything, flush records."""
        for runner in list(self.calls.values()):
            runner.hangup("engine shutting down")
        if self._runs:
            _, pending = await asyncio.wait(set(self._runs), timeout=grace_s)
            for task in pending:
                task.cancel()
        if self._acceptor is not None:
            self._acceptor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._acceptor
        await self.line.stop()
        await self.dispatch.aclose()
        await asyncio.to_thread(self.records.close)

    async def __aenter__(self) -> VoxflowApp:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- calls -----------------------------------------------------------------------------------

    async def _accept(self) -> None:
        while True:
            try:
                call = await self.line.next_call()
            except SipStateError:
                return  # the line stopped
            task = asyncio.create_task(self._run_call(call), name=f"call-{call.call_id}")
            self._runs.add(task)
            task.add_done_callback(self._runs.discard)

    async def _run_call(self, call: LineCall) -> None:
        session = build_session(
            caller=call.caller,
            callee=call.callee,
            asserted_identity=call.asserted_identity,
            account_id=self.settings.account_id,
            plus=self.settings.number_plus,
        )
        log.info("call %s answered: session %s from %s to %s", call.call_id, session.id,
                 session.from_phone_number, session.to_phone_number)
        await self._serve(call, session)

    async def _serve(self, call: LineCall, session: Session) -> None:
        """Run an answered SIP call (either direction) until its session is over."""
        runner = CallRunner(
            call,
            CallSession(session, config=self.session_config,
                        wall_offset=time.time() - time.monotonic()),
            dispatch=self.dispatch,
            prompts=self.prompts,
            recorder=self.recorder,
            transfer_uri=lambda target, c: transfer_uri(target, c, self._transfer_domain),
            end_drain_s=self.settings.webhook_timeout + 1.0,
            bridge_dial=self._bridge_dial,
            listening=self.listening,
        )
        self.calls[session.id] = runner
        try:
            await runner.run()
        except Exception:  # a bug in one call must not take the engine down
            log.exception("call failed (session_id=%s)", session.id)
            call.hangup()
        finally:
            self.calls.pop(session.id, None)

    async def _bridge_dial(self, uri: str, call: LineCall, ring_timeout: float | None) -> LineCall:
        """The second leg of a bridged transfer, shown with the original caller's number."""
        return await self.line.dial(uri, caller=call.caller or self._from_user,
                                    ring_timeout=ring_timeout or self.ring_timeout)

    # -- outbound calls --------------------------------------------------------------------------

    def dial(self, number: str, *, ring_timeout: float | None = None) -> OutboundCall:
        """Place a call to ``number`` and run the assistant on it once answered.

        Returns at once (the session id is known before anyone answers); the outcome follows
        on the returned :class:`OutboundCall` and in the call record. ValueError for a
        malformed number, :class:`~voxflow.server.outbound.NoRouteError` without a route.
        """
        uri = dial_uri(number, self._transfer_domain)
        dialled = number if not number.startswith(("sip:", "sips:")) else (
            uri.partition(":")[2].partition("@")[0])
        session = outbound_session(our_number=self.phone_number, dialled=dialled,
                                   account_id=self.settings.account_id,
                                   plus=self.settings.number_plus)
        outbound = OutboundCall(session, uri)
        if len(self.outbound) >= _OUTBOUND_KEPT:  # finished ones live on in the call records
            for old in [k for k, v in self.outbound.items() if v.done][: _OUTBOUND_KEPT // 2]:
                del self.outbound[old]
        self.outbound[session.id] = outbound
        task = asyncio.create_task(
            self._run_outbound(outbound, self.ring_timeout if ring_timeout is None
                               else ring_timeout), name=f"dial-{session.id}")
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)
        log.info("dialling %s (%s): session %s", number, uri, session.id)
        return outbound

    async def _run_outbound(self, outbound: OutboundCall, ring_timeout: float) -> None:
        session = outbound.session
        try:
            call = await self.line.dial(outbound.target_uri, caller=self._from_user,
                                        ring_timeout=ring_timeout)
        except DialError as error:
            log.info("call to %s %s (session %s)", outbound.target_uri, error, session.id)
            outbound.settle(error.outcome, error.reason, error.status)
            self._record_failed_dial(outbound)
            outbound.finish()
            return
        outbound.settle(DialOutcome.ANSWERED, "answered")
        try:
            await self._serve(call, session)
        finally:
            outbound.finish()

    def _record_failed_dial(self, outbound: OutboundCall) -> None:
        """A call record for an attempt nobody answered: the outcome is its end reason."""
        session = outbound.session
        self.records.start_call(session.id, from_number=session.from_phone_number,
                                to_number=session.to_phone_number,
                                direction=session.direction.value, transport="sip")
        self.recorder.line(session.id, "dial_result", {
            "outcome": str(outbound.outcome), "status": outbound.status,
            "reason": outbound.detail, "uri": outbound.target_uri})
        self.records.end_call(session.id, f"{outbound.outcome}: {outbound.detail}",
                              ended_at=time.time())

    # -- simulated calls (admin API) ------------------------------------------------------------

    def start_simulated_call(self, caller: str | None = None, callee: str | None = None) -> str:
        """Answer a call on the in-process simulated line; its session id (already live).

        The simulated call plays prompts in real time and a transfer on it always succeeds.
        """
        # Imported here: voxflow.testing builds on this module, so a top-level import would be
        # circular.
        from voxflow.testing.simline import SimLineCall

        call = SimLineCall(caller=caller or "+4930123456", callee=callee or "+4921100000")
        session = build_session(caller=call.caller, callee=call.callee, asserted_identity=None,
                                account_id=self.settings.account_id,
                                plus=self.settings.number_plus)
        runner = CallRunner(
            # The runner only uses the Call surface, which SimulatedCall offers.
            cast(LineCall, call),
            CallSession(session, config=self.session_config,
                        wall_offset=time.time() - time.monotonic()),
            dispatch=self.dispatch,
            prompts=self.prompts,
            recorder=self._simulated_recorder,
            transfer_uri=lambda target, _call: target,  # no SIP routing behind this line
            end_drain_s=self.settings.webhook_timeout + 1.0,
            listening=self.listening,
        )
        self.calls[session.id] = runner
        self.simulated[session.id] = call
        log.info("simulated call %s answered: session %s", call.call_id, session.id)
        task = asyncio.create_task(self._run_simulated(runner, call),
                                   name=f"call-{call.call_id}")
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)
        return session.id

    async def _run_simulated(self, runner: CallRunner, call: SimLineCall) -> None:
        try:
            await runner.run()
        except Exception:  # a bug in one call must not take the engine down
            log.exception("simulated call failed (session_id=%s)", runner.session_id)
        finally:
            await call.close()
            self.calls.pop(runner.session_id, None)
            self.simulated.pop(runner.session_id, None)

    # -- answers from the assistant --------------------------------------------------------------

    async def _on_actions(self, session_id: str, actions: list[Action]) -> None:
        runner = self.calls.get(session_id)
        if runner is None:
            log.warning("%d action(s) for a call that is over (session_id=%s)",
                        len(actions), session_id)
            return
        runner.actions_received(actions)

    async def _on_fallback(self, session_id: str, result: DeliveryResult) -> None:
        # The session counts failures itself (delivery_result) and runs the fallback then.
        pass

    def _on_result(self, result: DeliveryResult) -> None:
        self.recorder.delivery(result)
        runner = self.calls.get(result.session_id)
        if runner is not None:
            runner.delivery_result(result)
