"""The :class:`Assistant`: event handlers, return coercion and the one ``handle`` entry point.

Every transport (ASGI, Flask, WebSocket, voxflow's in-process dispatch) ends in
:meth:`Assistant.handle` (or :meth:`Assistant.handle_sync`), so an assistant behaves the same
whichever way its events arrive.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    Protocol,
    TypeAlias,
    TypedDict,
    TypeVar,
    Unpack,
    cast,
    overload,
    runtime_checkable,
)

from voxflow.errors import HandlerError
from voxflow.protocol import (
    Action,
    AssistantSpeakEvent,
    AssistantSpeechEndedEvent,
    BaseEvent,
    DtmfReceivedEvent,
    Event,
    EventType,
    SessionEndEvent,
    SessionStartEvent,
    SmsFailedEvent,
    UserBargeInEvent,
    UserInputTimeoutEvent,
    UserSpeakEvent,
    UserSpeechStartedEvent,
    parse_event,
)
from voxflow.sdk.coercion import HandlerResult, coerce_result
from voxflow.sdk.outbound import DEFAULT_BASE_URL, OutboundCall, call, call_sync

if TYPE_CHECKING:
    from flask import Flask
    from starlette.applications import Starlette

logger = logging.getLogger("voxflow.sdk")

E = TypeVar("E", bound=BaseEvent)

Handler: TypeAlias = Callable[[E], HandlerResult | Awaitable[HandlerResult]]
"""``handler(event)``, sync or async, returning what :mod:`voxflow.sdk.coercion` accepts."""

EventInput: TypeAlias = Event | Mapping[str, Any] | str | bytes
"""An event model, or its wire form as a dict or JSON text."""

# The wire format says responses to these are ignored; dropping them here keeps an adapter from
# sending something the engine would only have to discard.
_RESPONSE_IGNORED = frozenset({EventType.SESSION_END, EventType.USER_SPEECH_STARTED})


@runtime_checkable
class SessionScoped(Protocol):
    """A helper that keeps state per call; the assistant tells it when a call is over."""

    def forget_session(self, session_id: str) -> None:
        """Drop everything kept for ``session_id``."""


class Handlers(TypedDict, total=False):
    """The handlers :class:`Assistant` accepts as keyword arguments."""

    on_session_start: Handler[SessionStartEvent]
    on_user_speech_started: Handler[UserSpeechStartedEvent]
    on_user_speak: Handler[UserSpeakEvent]
    on_user_barge_in: Handler[UserSpeakEvent | UserBargeInEvent]
    on_dtmf_received: Handler[DtmfReceivedEvent]
    on_assistant_speak: Handler[AssistantSpeakEvent]
    on_assistant_speech_ended: Handler[AssistantSpeechEndedEvent]
    on_user_input_timeout: Handler[UserInputTimeoutEvent]
    on_session_end: Handler[SessionEndEvent]
    on_sms_failed: Handler[SmsFailedEvent]


class _HandlerSlot(Generic[E]):
    """``assistant.on_<event>(handler)`` registers ``handler``; usable as a decorator."""

    def __init__(self, event_type: EventType) -> None:
        self.event_type = event_type

    @overload
    def __get__(self, obj: None, owner: type[Assistant]) -> _HandlerSlot[E]: ...

    @overload
    def __get__(
        self, obj: Assistant, owner: type[Assistant]
    ) -> Callable[[Handler[E]], Handler[E]]: ...

    def __get__(
        self, obj: Assistant | None, owner: type[Assistant]
    ) -> _HandlerSlot[E] | Callable[[Handler[E]], Handler[E]]:
        if obj is None:
            return self
        assistant = obj

        def register(handler: Handler[E]) -> Handler[E]:
            assistant.register(self.event_type, handler)
            return handler

        return register


class Assistant:
    """An AI Flow assistant: one handler per event type, given as keywords or by decorator.

    >>> assistant = Assistant(on_session_start=lambda event: "Welcome!")
    >>> @assistant.on_dtmf_received
    ... def pressed(event):
    ...     return transfer("+49211100200") if event.digit == "1" else None

    ``api_token`` makes the webhook adapters demand that value in ``X-API-TOKEN``;
    ``signing_secrets`` (up to two, for rotation) makes them verify ``X-Voxflow-Signature``.
    ``token`` and ``base_url`` are for :meth:`call` (outbound calls).
    """

    on_session_start = _HandlerSlot[SessionStartEvent](EventType.SESSION_START)
    on_user_speech_started = _HandlerSlot[UserSpeechStartedEvent](EventType.USER_SPEECH_STARTED)
    on_user_speak = _HandlerSlot[UserSpeakEvent](EventType.USER_SPEAK)
    on_user_barge_in = _HandlerSlot[UserSpeakEvent | UserBargeInEvent](EventType.USER_BARGE_IN)
    on_dtmf_received = _HandlerSlot[DtmfReceivedEvent](EventType.DTMF_RECEIVED)
    on_assistant_speak = _HandlerSlot[AssistantSpeakEvent](EventType.ASSISTANT_SPEAK)
    on_assistant_speech_ended = _HandlerSlot[AssistantSpeechEndedEvent](
        EventType.ASSISTANT_SPEECH_ENDED
    )
    on_user_input_timeout = _HandlerSlot[UserInputTimeoutEvent](EventType.USER_INPUT_TIMEOUT)
    on_session_end = _HandlerSlot[SessionEndEvent](EventType.SESSION_END)
    on_sms_failed = _HandlerSlot[SmsFailedEvent](EventType.SMS_FAILED)

    def __init__(
        self,
        *,
        api_token: str | None = None,
        signing_secrets: Sequence[str | bytes] = (),
        signature_tolerance_s: float = 300.0,
        token: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        **handlers: Unpack[Handlers],
    ) -> None:
        if len(signing_secrets) > 2:
            raise ValueError("signing_secrets: at most two active secrets (current and next)")
        self.api_token = api_token
        self.signing_secrets: tuple[str | bytes, ...] = tuple(signing_secrets)
        self.signature_tolerance_s = signature_tolerance_s
        self.token = token
        self.base_url = base_url
        self._handlers: dict[EventType, Handler[Any]] = {}
        self._tracked: list[SessionScoped] = []
        for name, handler in handlers.items():
            self.register(_event_type_of(name), cast(Handler[Any], handler))

    # -- registration -------------------------------------------------------------------------

    def register(self, event_type: EventType | str, handler: Handler[Any]) -> None:
        """Use ``handler`` for events of ``event_type`` (replacing an earlier one)."""
        kind = EventType(event_type)
        if not callable(handler):
            raise TypeError(f"on_{kind.value}: handler must be callable, got {handler!r}")
        self._handlers[kind] = handler

    def track(self, helper: SessionScoped) -> None:
        """Tell ``helper`` about ended calls although it is not itself a registered handler.

        Registered handlers that have ``forget_session`` (the keypad helpers) are told anyway.
        """
        self._tracked.append(helper)

    def handles(self, event_type: EventType | str) -> bool:
        """Whether a handler is registered for ``event_type``."""
        return EventType(event_type) in self._handlers

    # -- dispatch -----------------------------------------------------------------------------

    async def handle(self, event: EventInput) -> list[Action]:
        """The actions the assistant answers ``event`` with (``[]`` for none).

        Raises :class:`~voxflow.errors.ProtocolError` if ``event`` is not a valid event (the
        sender's fault) and :class:`~voxflow.errors.HandlerError` if a handler raised or
        returned an invalid action (the assistant's fault; already logged with the session id).
        """
        parsed = _parse(event)
        results = []
        for name, handler in self._targets(parsed):
            result = self._invoke(name, handler, parsed)
            if inspect.isawaitable(result):
                try:
                    result = await result
                except Exception as exc:
                    raise _failure(name, parsed, exc) from exc
            results.append(result)
        return self._conclude(parsed, results)

    def handle_sync(self, event: EventInput) -> list[Action]:
        """:meth:`handle` for synchronous servers (WSGI/Flask); async handlers still work.

        Must not be called from a running event loop when a handler is async.
        """
        parsed = _parse(event)
        results = []
        for name, handler in self._targets(parsed):
            result = self._invoke(name, handler, parsed)
            if inspect.isawaitable(result):
                result = _run_to_completion(name, parsed, result)
            results.append(result)
        return self._conclude(parsed, results)

    def _targets(self, event: Event) -> list[tuple[str, Handler[Any]]]:
        kinds = [EventType(event.type)]
        if isinstance(event, UserSpeakEvent) and event.barged_in:
            kinds.append(EventType.USER_BARGE_IN)  # legacy SDKs had a separate barge-in handler
        return [
            (f"on_{kind.value}", self._handlers[kind]) for kind in kinds if kind in self._handlers
        ]

    @staticmethod
    def _invoke(name: str, handler: Handler[Any], event: Event) -> object:
        try:
            return handler(event)
        except Exception as exc:
            raise _failure(name, event, exc) from exc

    def _conclude(self, event: Event, results: list[object]) -> list[Action]:
        kind = EventType(event.type)
        if kind is EventType.SESSION_END:
            self._forget(event.session.id)
        if kind in _RESPONSE_IGNORED:
            return []
        actions: list[Action] = []
        for result in results:
            try:
                actions.extend(coerce_result(result, event))
            except HandlerError as exc:
                logger.error("session %s: %s: %s", event.session.id, kind.value, exc,
                             extra={"session_id": event.session.id})
                raise
        logger.debug("session %s: %s -> %d action(s)", event.session.id, kind.value, len(actions),
                     extra={"session_id": event.session.id})
        return actions

    def _forget(self, session_id: str) -> None:
        helpers: Iterable[object] = [*self._handlers.values(), *self._tracked]
        seen: set[int] = set()
        for helper in helpers:
            if isinstance(helper, SessionScoped) and id(helper) not in seen:
                seen.add(id(helper))
                helper.forget_session(session_id)

    # -- adapters and outbound calls ----------------------------------------------------------

    def asgi_app(self, path: str = "/", *, websocket_path: str | None = None) -> Starlette:
        """A Starlette app answering webhook POSTs at ``path`` (and WebSocket calls, if given)."""
        from voxflow.sdk.asgi import create_asgi_app

        return create_asgi_app(self, path=path, websocket_path=websocket_path)

    def flask_app(self, path: str = "/") -> Flask:
        """A Flask app answering webhook POSTs at ``path`` (needs the ``flask`` extra)."""
        from voxflow.sdk.flask import create_flask_app

        return create_flask_app(self, path=path)

    def run(
        self, server: str = "asgi", host: str = "127.0.0.1", port: int = 8000, path: str = "/"
    ) -> None:
        """Serve this assistant until interrupted (``server`` is ``"asgi"`` or ``"flask"``)."""
        from voxflow.sdk.serving import run

        run(self, server=server, host=host, port=port, path=path)

    async def call(
        self, ai_flow_id: str, to_phone_number: str, billing_device: str
    ) -> OutboundCall:
        """Start an outbound call through the outbound-call API at ``base_url``."""
        return await call(ai_flow_id, to_phone_number, billing_device, self._outbound_token(),
                          base_url=self.base_url)

    def call_sync(self, ai_flow_id: str, to_phone_number: str, billing_device: str) -> OutboundCall:
        """:meth:`call` for synchronous code."""
        return call_sync(ai_flow_id, to_phone_number, billing_device, self._outbound_token(),
                         base_url=self.base_url)

    def _outbound_token(self) -> str:
        if not self.token:
            raise ValueError("Assistant(token=...) is required for outbound calls")
        return self.token


def _event_type_of(keyword: str) -> EventType:
    try:
        if not keyword.startswith("on_"):
            raise ValueError(keyword)
        return EventType(keyword.removeprefix("on_"))
    except ValueError:
        known = ", ".join(f"on_{kind.value}" for kind in EventType)
        raise TypeError(f"Assistant(): unknown handler {keyword!r} (known: {known})") from None


def _parse(event: EventInput) -> Event:
    if isinstance(event, BaseEvent):
        return event
    return parse_event(event)


async def _awaited(result: Awaitable[object]) -> object:
    return await result


def _run_to_completion(name: str, event: Event, result: Awaitable[object]) -> object:
    if _loop_is_running():
        if inspect.iscoroutine(result):
            result.close()  # never awaited on purpose; spare the user a second warning
        raise _failure(name, event, RuntimeError(
            "an async handler cannot run through handle_sync() inside a running event loop; "
            "use 'await assistant.handle(event)'"))
    try:
        return asyncio.run(_awaited(result))
    except Exception as exc:
        raise _failure(name, event, exc) from exc


def _loop_is_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _failure(name: str, event: Event, exc: Exception) -> HandlerError:
    session_id = event.session.id
    logger.error("session %s: %s handler raised %s: %s", session_id, name, type(exc).__name__, exc,
                 exc_info=exc, extra={"session_id": session_id})
    return HandlerError(f"{name} handler raised {type(exc).__name__} (session {session_id})",
                        session_id)


__all__ = ["Assistant", "EventInput", "Handler", "Handlers", "SessionScoped"]
