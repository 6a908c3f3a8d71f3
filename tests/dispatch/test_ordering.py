import asyncio
from dataclasses import dataclass, field

import pytest
from assistant_peers import WebhookServer, session_start, user_speak

from voxflow.dispatch.inprocess import InProcessDispatcher
from voxflow.dispatch.ordering import FailurePolicy, SessionDispatch
from voxflow.dispatch.result import DeliveryOutcome, DeliveryResult
from voxflow.dispatch.webhook import WebhookDispatcher
from voxflow.errors import ConfigError
from voxflow.protocol import Action, Event, SessionEndEvent, SpeakAction


@dataclass
class Engine:
    """Stands in for the engine's side: records what the dispatch layer hands back."""

    actions: list[tuple[str, list[Action]]] = field(default_factory=list)
    fallbacks: list[tuple[str, DeliveryResult]] = field(default_factory=list)
    results: list[DeliveryResult] = field(default_factory=list)

    async def on_actions(self, session_id: str, actions: list[Action]) -> None:
        self.actions.append((session_id, actions))

    async def on_fallback(self, session_id: str, result: DeliveryResult) -> None:
        self.fallbacks.append((session_id, result))

    def texts(self, session_id: str) -> list[str]:
        return [
            a.text or ""
            for sid, batch in self.actions
            if sid == session_id
            for a in batch
            if isinstance(a, SpeakAction)
        ]

    def dispatch(self, dispatcher: object, **options: int) -> SessionDispatch:
        return SessionDispatch(
            dispatcher,  # type: ignore[arg-type]
            on_actions=self.on_actions,
            on_fallback=self.on_fallback,
            on_result=self.results.append,
            **options,
        )


def result(outcome: DeliveryOutcome, session_id: str = "s") -> DeliveryResult:
    return DeliveryResult(session_id, outcome)


def test_policy_fires_once_after_consecutive_failures() -> None:
    policy = FailurePolicy(threshold=3)
    outcomes = [
        DeliveryOutcome.TIMEOUT,
        DeliveryOutcome.OK,  # resets
        DeliveryOutcome.TIMEOUT,
        DeliveryOutcome.BUFFERED,  # neither resets nor counts
        DeliveryOutcome.HTTP_STATUS,
        DeliveryOutcome.INVALID_JSON,
        DeliveryOutcome.CONNECT_ERROR,
    ]
    fired = [policy.observe(result(o)) for o in outcomes]
    assert fired == [False, False, False, False, False, True, False]
    assert policy.consecutive_failures("s") == 4
    assert not policy.observe(result(DeliveryOutcome.TIMEOUT, "other"))
    policy.forget("s")
    assert policy.consecutive_failures("s") == 0
    with pytest.raises(ConfigError):
        FailurePolicy(threshold=0)


async def test_slow_answer_delays_its_session_but_not_others(
    webhook_server: WebhookServer,
) -> None:
    engine = Engine()
    dispatch = engine.dispatch(WebhookDispatcher(f"{webhook_server.url}/slow-first"))
    dispatch.submit(session_start("A"))  # the assistant needs 0.4 s for this one
    dispatch.submit(user_speak("A", "second"))
    dispatch.submit(user_speak("B", "other call"))
    await dispatch.drain("B")
    assert engine.texts("B") == ["echo other call"]
    assert engine.texts("A") == []  # A's first answer is still pending
    await dispatch.drain("A")
    assert engine.texts("A") == ["echo session_start", "echo second"]
    seen = {(r.session_id, r.event_type): r for r in webhook_server.requests("slow-first")}
    # The second event of A reached the assistant only after the first was answered.
    assert seen["A", "user_speak"].loop_time >= seen["A", "session_start"].loop_time + 0.4
    assert seen["B", "user_speak"].loop_time < seen["A", "user_speak"].loop_time
    await dispatch.aclose()


async def test_failures_trigger_fallback_once(webhook_server: WebhookServer) -> None:
    engine = Engine()
    dispatch = engine.dispatch(WebhookDispatcher(f"{webhook_server.url}/error"))
    for text in "abcd":
        dispatch.submit(user_speak("F", text))
    await dispatch.drain("F")
    assert [r.outcome for r in engine.results] == [DeliveryOutcome.HTTP_STATUS] * 4
    assert len(engine.fallbacks) == 1
    assert engine.fallbacks[0][1].outcome is DeliveryOutcome.HTTP_STATUS
    assert engine.actions == []
    await dispatch.aclose()


class GatedAssistant:
    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.seen: list[str] = []

    async def handle(self, event: Event) -> list[Action]:
        self.seen.append(event.type)
        await self.gate.wait()
        return [SpeakAction(session_id=event.session_id, text=event.type)]


async def test_close_with_drain_delivers_queued_events() -> None:
    assistant, engine = GatedAssistant(), Engine()
    dispatch = engine.dispatch(InProcessDispatcher(assistant))
    dispatch.submit(session_start("D"))
    dispatch.submit(SessionEndEvent(session=session_start("D").session))
    closing = asyncio.create_task(dispatch.close_session("D"))
    await asyncio.sleep(0)
    assistant.gate.set()
    await closing
    assert assistant.seen == ["session_start", "session_end"]
    assert engine.texts("D") == ["session_start"]  # answers to session_end are ignored
    dispatch.submit(user_speak("D", "too late"))
    assert assistant.seen == ["session_start", "session_end"]


async def test_close_without_drain_cancels_pending_events() -> None:
    assistant, engine = GatedAssistant(), Engine()
    dispatch = engine.dispatch(InProcessDispatcher(assistant))
    dispatch.submit(session_start("X"))
    dispatch.submit(user_speak("X", "never delivered"))
    await asyncio.sleep(0.01)
    await dispatch.close_session("X", drain=False)
    assert assistant.seen == ["session_start"]
    assert engine.actions == []


async def test_failing_engine_callback_does_not_stop_the_lane() -> None:
    engine = Engine()
    calls: list[str] = []

    async def broken(session_id: str, actions: list[Action]) -> None:
        calls.append(session_id)
        raise RuntimeError("engine bug")

    class Echo:
        async def handle(self, event: Event) -> list[Action]:
            return [SpeakAction(session_id=event.session_id, text="x")]

    dispatch = SessionDispatch(
        InProcessDispatcher(Echo()), on_actions=broken, on_fallback=engine.on_fallback
    )
    dispatch.submit(session_start("E"))
    dispatch.submit(user_speak("E", "again"))
    await dispatch.drain("E")
    assert calls == ["E", "E"]
    await dispatch.aclose()
