import asyncio
import logging
from typing import Any

import pytest
from assistant_peers import session_start, user_speak

from voxflow.dispatch.inprocess import InProcessDispatcher
from voxflow.dispatch.result import DeliveryOutcome
from voxflow.protocol import Action, Event, HangupAction, SpeakAction


class EchoAssistant:
    async def handle(self, event: Event) -> list[Action]:
        return [SpeakAction(session_id=event.session_id, text=event.type)]


class ScriptedAssistant:
    """Returns (or raises) whatever the test put in ``answer``."""

    def __init__(self, answer: Any = None, delay_s: float = 0.0) -> None:
        self.answer = answer
        self.delay_s = delay_s

    async def handle(self, event: Event) -> Any:
        await asyncio.sleep(self.delay_s)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


async def test_actions_from_handler() -> None:
    result = await InProcessDispatcher(EchoAssistant()).deliver(session_start("c1"))
    assert result.outcome is DeliveryOutcome.OK
    assert result.actions == [SpeakAction(session_id="c1", text="session_start")]


@pytest.mark.parametrize("answer", [None, []])
async def test_nothing_returned_is_no_action(answer: Any) -> None:
    result = await InProcessDispatcher(ScriptedAssistant(answer)).deliver(session_start("c1"))
    assert result.outcome is DeliveryOutcome.NO_ACTION


async def test_wire_dicts_are_validated() -> None:
    handler = ScriptedAssistant([{"type": "hangup", "session_id": "c1"}])
    result = await InProcessDispatcher(handler).deliver(session_start("c1"))
    assert result.actions == [HangupAction(session_id="c1")]
    handler.answer = [{"type": "hangup"}]
    result = await InProcessDispatcher(handler).deliver(session_start("c1"))
    assert result.outcome is DeliveryOutcome.INVALID_ACTION
    assert "actions[0].session_id: field required" in (result.error or "")


async def test_exception_becomes_failed_result_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = ScriptedAssistant(KeyError("menu"))
    with caplog.at_level(logging.ERROR):
        result = await InProcessDispatcher(handler).deliver(user_speak("c-err", "hi"))
    assert result.outcome is DeliveryOutcome.HANDLER_ERROR
    assert "KeyError" in (result.error or "")
    assert "session_id=c-err" in caplog.text


async def test_handler_raising_timeout_error_is_not_a_deadline_miss() -> None:
    handler = ScriptedAssistant(TimeoutError("upstream LLM"))
    result = await InProcessDispatcher(handler).deliver(session_start("c1"))
    assert result.outcome is DeliveryOutcome.HANDLER_ERROR


async def test_slow_handler_times_out() -> None:
    handler = ScriptedAssistant([], delay_s=5)
    result = await InProcessDispatcher(handler, timeout_s=0.05).deliver(session_start("c1"))
    assert result.outcome is DeliveryOutcome.TIMEOUT
    assert "within 0.05 s" in (result.error or "")


async def test_odd_return_value_and_foreign_session() -> None:
    result = await InProcessDispatcher(ScriptedAssistant(42)).deliver(session_start("c1"))
    assert result.outcome is DeliveryOutcome.INVALID_ACTION
    assert "returned int" in (result.error or "")
    handler = ScriptedAssistant([HangupAction(session_id="c2")])
    result = await InProcessDispatcher(handler).deliver(session_start("c1"))
    assert result.outcome is DeliveryOutcome.WRONG_SESSION
