"""Menu, DigitCollector and Confirmation driven through a real Assistant, per session."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from voxflow.protocol import Action, BaseEvent, HangupAction, SpeakAction, TransferAction
from voxflow.sdk import Assistant, Confirmation, DigitCollector, Menu, hangup, speak, transfer

Wire = Callable[..., dict[str, Any]]
A, B = "call-a", "call-b"


class Call:
    """Feeds one session's events to an assistant, the way the engine would."""

    def __init__(self, assistant: Assistant, wire_event: Wire, session_id: str = A) -> None:
        self.assistant, self.wire_event, self.session_id = assistant, wire_event, session_id

    def send(self, kind: str, **fields: Any) -> list[Action]:
        return self.assistant.handle_sync(self.wire_event(kind, self.session_id, **fields))

    def press(self, keys: str) -> list[Action]:
        """Press each key; the answer to the last one."""
        answers = [self.send("dtmf_received", digit=key) for key in keys]
        return answers[-1]


def texts(actions: list[Action]) -> list[str | None]:
    return [action.text for action in actions if isinstance(action, SpeakAction)]


def on_keys(helper: Any) -> Assistant:
    return Assistant(on_session_start=helper, on_dtmf_received=helper,
                     on_user_input_timeout=helper)


# -- Menu -------------------------------------------------------------------------------------

def sales_menu(**options: Any) -> Menu:
    return Menu("Press 1 for sales.", {"1": transfer("+49211100200"),
                                       "#": [speak("Bye"), hangup()]}, **options)


def test_menu_prompts_routes_and_repeats(wire_event: Wire) -> None:
    call = Call(on_keys(sales_menu()), wire_event)
    assert texts(call.send("session_start")) == ["Press 1 for sales."]
    assert texts(call.press("7")) == ["Press 1 for sales."]
    assert texts(call.send("user_input_timeout")) == ["Press 1 for sales."]
    assert call.press("1") == [TransferAction(session_id=A, target_phone_number="+49211100200")]
    assert call.press("#") == [SpeakAction(session_id=A, text="Bye"), HangupAction(session_id=A)]


def test_menu_option_can_be_a_handler(wire_event: Wire) -> None:
    menu = Menu("Press 3 for your balance.", {"3": lambda event: f"Key {event.digit}: 12 euros"})
    assert texts(Call(on_keys(menu), wire_event).press("3")) == ["Key 3: 12 euros"]


def test_menu_invalid_prompt_repeat_key_and_limit(wire_event: Wire) -> None:
    menu = sales_menu(invalid_prompt="Not an option.", repeat_key="*", max_invalid=2,
                      on_too_many_invalid=[speak("Goodbye"), hangup()])
    call = Call(on_keys(menu), wire_event)
    call.send("session_start")
    assert texts(call.press("5")) == ["Not an option.", "Press 1 for sales."]
    assert texts(call.press("*")) == ["Press 1 for sales."]  # repeat does not count as wrong
    assert call.press("6") == [SpeakAction(session_id=A, text="Goodbye"),
                               HangupAction(session_id=A)]


def test_menu_counts_wrong_choices_per_session(wire_event: Wire) -> None:
    menu = sales_menu(max_invalid=2, on_too_many_invalid=hangup())
    assistant = on_keys(menu)
    first, second = Call(assistant, wire_event, A), Call(assistant, wire_event, B)
    first.press("5")
    second.press("5")
    assert first.press("5") == [HangupAction(session_id=A)]
    assert menu.sessions == {A, B}
    assistant.handle_sync(wire_event("session_end", A))
    assert menu.sessions == {B}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"options": {}}, "at least one key"),
    ({"options": {"10": "x"}}, "not a keypad key"),
    ({"options": {"1": "x"}, "repeat_key": "1"}, "also an option"),
    ({"options": {"1": "x"}, "max_invalid": 0}, "at least 1"),
])
def test_menu_rejects_nonsense(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Menu("prompt", **kwargs)


# -- DigitCollector ---------------------------------------------------------------------------

class FakeClock:
    """A settable clock: the collector has no timers, it only compares readings."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def collector(results: list[str], **options: Any) -> DigitCollector:
    def done(event: BaseEvent, digits: str) -> str:
        results.append(digits)
        return f"got {len(digits)} digits"

    settings: dict[str, Any] = {"prompt": "Enter your PIN.", "min_digits": 4, **options}
    return DigitCollector(done, **settings)


def test_terminator_ends_the_entry_and_is_not_collected(wire_event: Wire) -> None:
    results: list[str] = []
    call = Call(on_keys(collector(results)), wire_event)
    assert texts(call.send("session_start")) == ["Enter your PIN."]
    assert call.press("123") == []  # silent while typing
    assert texts(call.press("4#")) == ["got 4 digits"]
    assert results == ["1234"]
    assert texts(call.press("98765#")) == ["got 5 digits"]  # a fresh entry after completion
    assert results == ["1234", "98765"]


def test_too_short_entry_reprompts_and_starts_over(wire_event: Wire) -> None:
    results: list[str] = []
    call = Call(on_keys(collector(results, too_short_prompt="Four digits, please.")), wire_event)
    assert texts(call.press("12#")) == ["Four digits, please."]
    call.press("5678#")
    assert results == ["5678"]


def test_max_digits_completes_without_terminator(wire_event: Wire) -> None:
    results: list[str] = []
    call = Call(on_keys(collector(results, terminator=None, max_digits=4)), wire_event)
    assert call.press("123") == []
    assert texts(call.press("4")) == ["got 4 digits"]
    assert results == ["1234"]


def test_clear_key_starts_over(wire_event: Wire) -> None:
    results: list[str] = []
    call = Call(on_keys(collector(results, clear_key="*")), wire_event)
    call.press("99*1234#")
    assert results == ["1234"]


def test_user_input_timeout_completes_a_long_enough_entry(wire_event: Wire) -> None:
    results: list[str] = []
    call = Call(on_keys(collector(results, timeout_prompt="Still there?")), wire_event)
    call.press("12")
    assert texts(call.send("user_input_timeout")) == ["Still there?"]
    call.press("1234")
    assert texts(call.send("user_input_timeout")) == ["got 4 digits"]
    assert results == ["1234"]


def test_inter_digit_timeout_discards_a_stale_entry(wire_event: Wire) -> None:
    results: list[str] = []
    clock = FakeClock()
    call = Call(on_keys(collector(results, inter_digit_timeout_s=5, clock=clock)), wire_event)
    call.press("12")
    clock.now += 5.0  # exactly the limit still counts as in time
    call.press("3")
    clock.now += 6.0
    call.press("9876#")
    assert results == ["9876"]


def test_entries_are_per_session_and_dropped_at_session_end(wire_event: Wire) -> None:
    results: list[str] = []
    pin = collector(results)
    assistant = on_keys(pin)
    first, second = Call(assistant, wire_event, A), Call(assistant, wire_event, B)
    first.press("12")
    second.press("9")
    first.press("34#")
    assert results == ["1234"]
    assert pin.pending(B) == 1
    assistant.handle_sync(wire_event("session_end", B))
    assert pin.sessions == {A} and pin.pending(B) == 0


def test_secret_digits_stay_out_of_logs_and_reprs(
    wire_event: Wire, caplog: pytest.LogCaptureFixture
) -> None:
    results: list[str] = []
    pin = collector(results, secret=True)
    call = Call(on_keys(pin), wire_event)
    with caplog.at_level(logging.DEBUG):
        call.press("4711")
        assert "4711" not in repr(pin._states[A])
        call.press("#")
        call.press("12#")
    assert results == ["4711"]
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "****" in logged and "**" in logged
    assert "4711" not in logged and "12" not in logged.replace(A, "")
    assert "4711" not in repr(pin)


def test_plain_collector_logs_digits(wire_event: Wire, caplog: pytest.LogCaptureFixture) -> None:
    call = Call(on_keys(collector([])), wire_event)
    with caplog.at_level(logging.INFO, logger="voxflow.sdk.keypad"):
        call.press("4711#")
    assert any("4711" in record.getMessage() for record in caplog.records)


async def test_async_completion_is_awaited(wire_event: Wire) -> None:
    async def done(event: BaseEvent, digits: str) -> str:
        return f"checked {digits}"

    assistant = on_keys(DigitCollector(done, max_digits=2, terminator=None))
    await assistant.handle(wire_event("dtmf_received", A, digit="4"))
    answer = await assistant.handle(wire_event("dtmf_received", A, digit="2"))
    assert texts(answer) == ["checked 42"]


@pytest.mark.parametrize(("options", "message"), [
    ({"min_digits": 0}, "min_digits"),
    ({"min_digits": 4, "max_digits": 3}, "max_digits"),
    ({"terminator": None}, "never end"),
    ({"terminator": "#", "clear_key": "#"}, "must differ"),
    ({"terminator": "x"}, "not a keypad key"),
    ({"inter_digit_timeout_s": 0}, "positive"),
])
def test_collector_rejects_nonsense(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DigitCollector(lambda event, digits: None, **options)


# -- Confirmation -----------------------------------------------------------------------------

def appointment() -> Confirmation:
    return Confirmation("Press 1 to confirm, 2 to cancel.", on_yes="Confirmed.",
                        on_no=lambda event: "Cancelled.", invalid_prompt="Sorry?")


def test_confirmation_yes_no_and_reask(wire_event: Wire) -> None:
    question = appointment()
    assistant = on_keys(question)
    yes, no = Call(assistant, wire_event, A), Call(assistant, wire_event, B)
    assert texts(yes.send("session_start")) == ["Press 1 to confirm, 2 to cancel."]
    assert texts(yes.press("3")) == ["Sorry?", "Press 1 to confirm, 2 to cancel."]
    assert texts(yes.send("user_input_timeout")) == ["Press 1 to confirm, 2 to cancel."]
    assert texts(yes.press("1")) == ["Confirmed."]
    assert question.answered(A) and not question.answered(B)
    assert yes.press("2") == []  # answered: later keys are not a second answer
    assert yes.send("user_input_timeout") == []
    assert texts(no.press("2")) == ["Cancelled."]
    assistant.handle_sync(wire_event("session_end", A))
    assert question.sessions == {B}


def test_confirmation_start_asks_again(wire_event: Wire) -> None:
    question = appointment()
    call = Call(on_keys(question), wire_event)
    call.press("1")
    assert texts(call.send("session_start")) == ["Press 1 to confirm, 2 to cancel."]
    assert texts(call.press("1")) == ["Confirmed."]


def test_confirmation_keys_must_differ() -> None:
    with pytest.raises(ValueError, match="must differ"):
        Confirmation("?", on_yes="y", on_no="n", yes_key="1", no_key="1")
