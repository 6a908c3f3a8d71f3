"""``VoxflowApp``: the running engine — SIP line, assistant dispatch, TTS, call records.

It answers every call on the line, gives each a :class:`~voxflow.server.runner.CallRunner` and
routes the assistant's answers to the right one. With ``stream_listen`` set it also serves the
media-stream line (Media Streams WebSocket, :class:`StreamServer`), whose calls take the same
path. ``stop`` hangs up live calls, waits until their ``session_end`` has been handed over, and
flushes the call records.

Barge-in on media streams: a cut prompt must also leave the bridge's buffer, so the engine
calls :meth:`~voxflow.lines.stream.StreamCall.stop_playback` (``clear``). Not
``clear_on_source_stop``: after a key the next prompt is often ready within one 20 ms tick, the
audio never stops, and no ``clear`` would be sent. The cut is recognised by its
``assistant_speech_ended``: a natural end is delivered while the line pulls a frame, a cut
(key, ``barge_in``, speech, a hangup dropping prompts) from outside any pull
(:class:`_ClearOnCut`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator
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
from voxflow.engine.records import MASK, CallRecordStore
from voxflow.engine.session import CallSession, SessionConfig
from voxflow.errors import SipStateError
from voxflow.lines.calls import AudioSource, Call, CallEnd, Int16Array, KeyPress, TransferOutcome
from voxflow.lines.sip import DEFAULT_RING_TIMEOUT, DialError, DialOutcome, LineCall, SipLine
from voxflow.lines.stream import StreamCall, StreamLine, StreamLineConfig
from voxflow.lines.stream_protocol import StreamError
from voxflow.protocol import Action, AssistantSpeechEndedEvent, Session
from voxflow.protocol.events import BaseEvent
from voxflow.rtp.leg import InboundFrame
from voxflow.sdk.loading import load_assistant
from voxflow.server.admin import EngineMetrics, MeteredRecorder
from voxflow.server.config import ServeSettings
from voxflow.server.embedded import EmbeddedServer
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
from voxflow.server.runner import BridgeDial, CallRunner, TransferUri
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


def transfer_uri(target: str, call: Call, domain: str | None) -> str:
    """Where a transfer to ``target`` goes: a SIP URI as given, else ``sip:NUMBER@DOMAIN``.

    Decision: without a configured transfer domain (or trunk) the number is sent to the
    caller's own signalling address, i.e. the PBX or trunk the call came from routes it; a call
    without one (not on the SIP line) gets the target as given.
    """
    if target.startswith(("sip:", "sips:")):
        return target
    number = target.removeprefix("tel:")
    if domain:
        host = domain
    elif isinstance(call, LineCall):
        host = f"{call.remote_address[0]}:{call.remote_address[1]}"
    else:
        return target
    return f"sip:{number}@{host}"


def _target_as_given(target: str, _call: Call) -> str:
    """Where a media-stream call would be transferred to: nowhere to route it, so as given."""
    return target


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


class _MaskKeyLog(logging.Filter):
    """``mask_digits_in_records``: the line's "key X via SOURCE" log line loses its digit."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == _KEY_LOG and isinstance(record.args, tuple) and len(record.args) == 3:
            record.args = (record.args[0], MASK, record.args[2])
        return True


_KEY_LOG = "call %s: key %s via %s"  # as voxflow.lines.sip logs each key press


class _ClearOnCut:
    """A stream call as its runner sees it: audio pulls are tracked, so that a prompt the
    session cuts (see the module docstring) is also dropped from the bridge (``clear``)."""

    def __init__(self, stream: StreamCall) -> None:
        self.stream = stream
        self._pulling = False

    @property
    def call_id(self) -> str:
        """The stream's call id."""
        return self.stream.call_id

    @property
    def caller(self) -> str | None:
        """From the stream's custom parameters."""
        return self.stream.caller

    @property
    def callee(self) -> str | None:
        """From the stream's custom parameters."""
        return self.stream.callee

    @property
    def end(self) -> CallEnd | None:
        """How the call ended, or None while it is live."""
        return self.stream.end

    async def wait_ended(self) -> CallEnd:
        """Wait until the call is over."""
        return await self.stream.wait_ended()

    def presses(self) -> AsyncIterator[KeyPress]:
        """Key presses in order, each once."""
        return self.stream.presses()

    def frames(self) -> AsyncIterator[InboundFrame]:
        """The caller's audio."""
        return self.stream.frames()

    def set_audio_source(self, source: AudioSource | None) -> None:
        """Play from ``source``, noting while it runs."""
        if source is None:
            self.stream.set_audio_source(None)
            return

        def pull() -> Int16Array | None:
            self._pulling = True
            try:
                return source()
            finally:
                self._pulling = False

        self.stream.set_audio_source(pull)

    def play(self, samples: Int16Array) -> None:
        """Play ``samples`` once."""
        self.stream.play(samples)

    def send_dtmf(self, key: str, duration_ms: float = 100.0) -> None:
        """Not possible on a stream (raises saying so)."""
        self.stream.send_dtmf(key, duration_ms)

    def hangup(self) -> None:
        """End the call and close its socket."""
        self.stream.hangup()

    async def transfer(self, target: str, max_wait: float = 10.0) -> TransferOutcome:
        """Fails with the line's reason."""
        return await self.stream.transfer(target, max_wait)

    def speech_ended(self) -> None:
        """The session ended a prompt: outside a pull that was a cut, so ``clear``."""
        if not self._pulling:
            self.stream.stop_playback()


class _CutRecorder(MeteredRecorder):
    """A stream call's recorder, which also passes each ``assistant_speech_ended`` on."""

    def __init__(self, store: CallRecordStore, metrics: EngineMetrics,
                 call: _ClearOnCut) -> None:
        super().__init__(store, "stream", metrics)
        self._call = call

    def event(self, event: BaseEvent) -> None:
        """Record the event; a speech end may be a cut."""
        super().event(event)
        if isinstance(event, AssistantSpeechEndedEvent):
            self._call.speech_ended()


class StreamServer(EmbeddedServer):
    """The media-stream line's WebSocket route under uvicorn, in the engine's event loop."""

    def __init__(self, line: StreamLine, host: str, port: int, path: str) -> None:
        super().__init__(line.asgi_app(path), host, port, setting="stream_listen",
                         label="media-stream server", scheme="ws", path=path)
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
        for recorder in (self.recorder, self._simulated_recorder):
            recorder.mask_digits = settings.mask_digits_in_records
        self._key_log_mask = _MaskKeyLog() if settings.mask_digits_in_records else None
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
        stream_address = settings.stream_address()
        self.stream_line: StreamLine | None = None
        """The media-stream line, when ``stream_listen`` is set."""
        self.stream_server: StreamServer | None = None
        if stream_address is not None:
            self.stream_line = StreamLine(StreamLineConfig(token=settings.stream_token))
            self.stream_server = StreamServer(self.stream_line, *stream_address,
                                              settings.stream_path)
        self._stream_recorder = MeteredRecorder(self.records, "stream", self.metrics)
        self._stream_acceptor: asyncio.Task[None] | None = None
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
        if self._key_log_mask is not None:
            logging.getLogger("voxflow.lines.sip").addFilter(self._key_log_mask)
        await self.line.start()
        self._acceptor = asyncio.create_task(self._accept(), name="voxflow-accept")
        if self.stream_server is not None and self.stream_line is not None:
            await self.stream_server.start()
            self._stream_acceptor = asyncio.create_task(
                self._accept_streams(self.stream_line), name="voxflow-accept-streams")

    @property
    def ready_line(self) -> str:
        """The one line logged when calls can come in."""
        return f"voxflow ready: {self.line.uri}, assistant {self.settings.assistant_label}"

    def refuse_new_calls(self) -> None:
        """Shutting down: every new INVITE is answered 503 from now on; live calls go on."""
        self.line.policy = lambda call: 503

    async def wait_calls_ended(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for every live call to end by itself; True if they did."""
        if self._runs:
            _, pending = await asyncio.wait(set(self._runs), timeout=timeout_s)
            return not pending
        return True

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
        if self._stream_acceptor is not None:
            self._stream_acceptor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stream_acceptor
        if self.stream_line is not None and self.stream_server is not None:
            await self.stream_line.stop()
            await self.stream_server.stop()
        await self.dispatch.aclose()
        await asyncio.to_thread(self.records.close)
        if self._key_log_mask is not None:
            logging.getLogger("voxflow.lines.sip").removeFilter(self._key_log_mask)

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

    async def _accept_streams(self, line: StreamLine) -> None:
        while True:
            try:
                call = await line.next_call()
            except StreamError:
                return  # the line stopped
            task = asyncio.create_task(self._run_call(_ClearOnCut(call)),
                                       name=f"call-{call.call_id}")
            self._runs.add(task)
            task.add_done_callback(self._runs.discard)

    async def _run_call(self, call: Call) -> None:
        session = build_session(
            caller=call.caller,
            callee=call.callee,
            asserted_identity=call.asserted_identity if isinstance(call, LineCall) else None,
            account_id=self.settings.account_id,
            plus=self.settings.number_plus,
        )
        log.info("call %s answered: session %s from %s to %s", call.call_id, session.id,
                 session.from_phone_number, session.to_phone_number)
        await self._serve(call, session)

    async def _serve(self, call: Call, session: Session) -> None:
        """Run an answered call (SIP, either direction, or a media stream) until its session is
        over."""
        # A stream cannot transfer: its transfer() fails with the line's reason, reported to
        # the assistant as transfer_failed; there is nothing to route or bridge.
        recorder: CallRecorder = self._stream_recorder
        if isinstance(call, _ClearOnCut):
            recorder = _CutRecorder(self.records, self.metrics, call)
        route: TransferUri = _target_as_given
        bridge_dial: BridgeDial | None = None
        if isinstance(call, LineCall):
            sip_call = call

            def sip_route(target: str, _call: Call) -> str:
                return transfer_uri(target, sip_call, self._transfer_domain)

            recorder, route, bridge_dial = self.recorder, sip_route, self._bridge_dial
        runner = CallRunner(
            call,
            CallSession(session, config=self.session_config,
                        wall_offset=time.time() - time.monotonic()),
            dispatch=self.dispatch,
            prompts=self.prompts,
            recorder=recorder,
            transfer_uri=route,
            end_drain_s=self.settings.webhook_timeout + 1.0,
            bridge_dial=bridge_dial,
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
