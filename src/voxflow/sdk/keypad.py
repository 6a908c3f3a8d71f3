"""Keypad helpers for ``dtmf_received``: a menu, a digit collector (PIN entry), a yes/no question.

Each helper is an ordinary handler: register the same object for the events it understands,

>>> menu = Menu("Press 1 for sales, 2 for support.",
...             {"1": transfer("+49211100200"), "2": transfer("+49211100201")})
>>> assistant = Assistant(on_session_start=menu, on_dtmf_received=menu,
...                       on_user_input_timeout=menu)

It answers ``session_start`` with its prompt, ``dtmf_received`` with what the key means, and
``user_input_timeout`` by asking again. State is kept per ``session.id`` and dropped when the
call ends (the assistant calls :meth:`forget_session` on ``session_end``; a helper used inside
your own handler can be registered with ``assistant.track(helper)`` for the same effect).

The SDK has no timers: the digit collector's inter-digit timeout is checked when the next key
arrives (``clock`` is injectable for tests), and ``user_input_timeout`` ends an entry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

from voxflow.protocol import (
    DTMF_DIGITS,
    BaseEvent,
    DtmfReceivedEvent,
    SessionEndEvent,
    SessionStartEvent,
    UserInputTimeoutEvent,
)
from voxflow.sdk.coercion import HandlerResult
from voxflow.sdk.replies import Reply

logger = logging.getLogger("voxflow.sdk.keypad")

Answer: TypeAlias = HandlerResult | Awaitable[HandlerResult]
"""What a helper (or a handler it calls) gives back to the assistant."""

Prompt: TypeAlias = str | Reply
"""Text to speak, or a ``speak(...)`` with its options (timeout, barge-in, voice)."""

KeyChoice: TypeAlias = HandlerResult | Callable[[DtmfReceivedEvent], Answer]
"""What a key stands for: a fixed reply (``transfer(...)``, a string, a list), or a handler."""

State = TypeVar("State")

# Distinguishes "no such key" from a key whose reply is deliberately None (no action).
_NOT_AN_OPTION: Any = object()


def _check_key(key: str, what: str) -> str:
    if len(key) != 1 or key not in DTMF_DIGITS:
        raise ValueError(f"{what}: {key!r} is not a keypad key (one of 0-9, *, #)")
    return key


def _choose(choice: KeyChoice, event: DtmfReceivedEvent) -> Answer:
    if callable(choice):
        return choice(event)
    return choice


def _again(notice: Prompt | None, prompt: Prompt) -> HandlerResult:
    return prompt if notice is None else [notice, prompt]


class _KeypadHelper(Generic[State]):
    """Per-session state and event routing shared by the helpers."""

    def __init__(self) -> None:
        self._states: dict[str, State] = {}

    def _new_state(self) -> State:
        raise NotImplementedError

    def _state(self, event: BaseEvent) -> State:
        state = self._states.get(event.session.id)
        if state is None:
            state = self._states[event.session.id] = self._new_state()
        return state

    def _restart(self, event: BaseEvent) -> State:
        state = self._states[event.session.id] = self._new_state()
        return state

    @property
    def sessions(self) -> frozenset[str]:
        """The session ids this helper currently keeps state for."""
        return frozenset(self._states)

    def forget_session(self, session_id: str) -> None:
        """Drop the state of ``session_id`` (called when the call ends)."""
        self._states.pop(session_id, None)

    def __call__(self, event: BaseEvent) -> Answer:
        """Answer ``event``; events the helper does not use get no action."""
        if isinstance(event, SessionStartEvent):
            return self.start(event)
        if isinstance(event, DtmfReceivedEvent):
            return self.key(event)
        if isinstance(event, UserInputTimeoutEvent):
            return self.timeout(event)
        if isinstance(event, SessionEndEvent):
            self.forget_session(event.session.id)
        return None

    def start(self, event: BaseEvent) -> Answer:
        """Begin afresh for this call and return the prompt."""
        raise NotImplementedError

    def key(self, event: DtmfReceivedEvent) -> Answer:
        """React to one key press."""
        raise NotImplementedError

    def timeout(self, event: BaseEvent) -> Answer:
        """The caller did nothing for a while."""
        raise NotImplementedError


@dataclass(slots=True)
class _MenuState:
    invalid: int = 0


class Menu(_KeypadHelper[_MenuState]):
    """``key → reply or handler``; other keys repeat the prompt (after ``invalid_prompt``).

    ``repeat_key`` (e.g. ``"*"``) repeats the prompt without counting as a wrong choice.
    After ``max_invalid`` wrong choices in a row, ``on_too_many_invalid`` is the answer.
    """

    def __init__(
        self,
        prompt: Prompt,
        options: Mapping[str, KeyChoice],
        *,
        invalid_prompt: Prompt | None = None,
        repeat_key: str | None = None,
        max_invalid: int | None = None,
        on_too_many_invalid: KeyChoice = None,
    ) -> None:
        super().__init__()
        if not options:
            raise ValueError("Menu: options must name at least one key")
        self.options = {_check_key(key, "Menu options"): choice for key, choice in options.items()}
        if repeat_key is not None and _check_key(repeat_key, "Menu repeat_key") in self.options:
            raise ValueError(f"Menu: repeat_key {repeat_key!r} is also an option")
        if max_invalid is not None and max_invalid < 1:
            raise ValueError("Menu: max_invalid must be at least 1")
        self.prompt = prompt
        self.invalid_prompt = invalid_prompt
        self.repeat_key = repeat_key
        self.max_invalid = max_invalid
        self.on_too_many_invalid = on_too_many_invalid

    def _new_state(self) -> _MenuState:
        return _MenuState()

    def start(self, event: BaseEvent) -> Answer:
        """The menu prompt."""
        self._restart(event)
        return self.prompt

    def key(self, event: DtmfReceivedEvent) -> Answer:
        """The chosen option, or the prompt again."""
        state = self._state(event)
        choice = self.options.get(event.digit, _NOT_AN_OPTION)
        if choice is not _NOT_AN_OPTION:
            state.invalid = 0
            return _choose(choice, event)
        if event.digit == self.repeat_key:
            return self.prompt
        state.invalid += 1
        if self.max_invalid is not None and state.invalid >= self.max_invalid:
            state.invalid = 0
            return _choose(self.on_too_many_invalid, event)
        return _again(self.invalid_prompt, self.prompt)

    def timeout(self, event: BaseEvent) -> Answer:
        """The prompt again."""
        return self.prompt


@dataclass(slots=True)
class _Entry:
    secret: bool
    digits: str = ""
    last_key_at: float = 0.0

    def __repr__(self) -> str:
        shown = "*" * len(self.digits) if self.secret else self.digits
        return f"_Entry(digits={shown!r})"


Completion: TypeAlias = Callable[[BaseEvent, str], Answer]
"""``on_complete(event, digits)``: the event that ended the entry, and the digits."""


class DigitCollector(_KeypadHelper[_Entry]):
    """Collects digits (a PIN, a customer number) and calls ``on_complete(event, digits)``.

    An entry ends on the ``terminator`` key, on the ``max_digits``-th digit, or on
    ``user_input_timeout`` (if it has ``min_digits`` by then). Too short → ``too_short_prompt``
    (or the prompt) and a fresh entry. ``clear_key`` starts over. If more than
    ``inter_digit_timeout_s`` passes between two keys, the unfinished entry is discarded and
    the new key starts a fresh one. ``secret=True`` keeps the digits out of logs and reprs.
    """

    def __init__(
        self,
        on_complete: Completion,
        *,
        prompt: Prompt | None = None,
        min_digits: int = 1,
        max_digits: int | None = None,
        terminator: str | None = "#",
        clear_key: str | None = None,
        inter_digit_timeout_s: float | None = None,
        too_short_prompt: Prompt | None = None,
        timeout_prompt: Prompt | None = None,
        secret: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if min_digits < 1:
            raise ValueError("DigitCollector: min_digits must be at least 1")
        if max_digits is not None and max_digits < min_digits:
            raise ValueError("DigitCollector: max_digits must not be below min_digits")
        if terminator is None and max_digits is None:
            raise ValueError("DigitCollector: entries never end without a terminator or max_digits")
        special = [key for key in (terminator, clear_key) if key is not None]
        for key in special:
            _check_key(key, "DigitCollector terminator/clear_key")
        if len(set(special)) != len(special):
            raise ValueError("DigitCollector: terminator and clear_key must differ")
        if inter_digit_timeout_s is not None and inter_digit_timeout_s <= 0:
            raise ValueError("DigitCollector: inter_digit_timeout_s must be positive")
        self.on_complete = on_complete
        self.prompt = prompt
        self.min_digits = min_digits
        self.max_digits = max_digits
        self.terminator = terminator
        self.clear_key = clear_key
        self.inter_digit_timeout_s = inter_digit_timeout_s
        self.too_short_prompt = too_short_prompt
        self.timeout_prompt = timeout_prompt
        self.secret = secret
        self._clock = clock

    def __repr__(self) -> str:
        return (f"DigitCollector(min_digits={self.min_digits}, max_digits={self.max_digits}, "
                f"terminator={self.terminator!r}, secret={self.secret}, "
                f"sessions={len(self._states)})")

    def _new_state(self) -> _Entry:
        return _Entry(secret=self.secret)

    def _shown(self, digits: str) -> str:
        return "*" * len(digits) if self.secret else digits

    def pending(self, session_id: str) -> int:
        """How many digits of an unfinished entry ``session_id`` has typed."""
        entry = self._states.get(session_id)
        return len(entry.digits) if entry is not None else 0

    def start(self, event: BaseEvent) -> Answer:
        """A fresh entry, and the prompt (if any)."""
        self._restart(event)
        return self.prompt

    def key(self, event: DtmfReceivedEvent) -> Answer:
        """Add, finish or clear; silent while the caller is still typing."""
        entry = self._state(event)
        now = self._clock()
        if (self.inter_digit_timeout_s is not None and entry.digits
                and now - entry.last_key_at > self.inter_digit_timeout_s):
            logger.info("session %s: entry %s timed out between keys; starting over",
                        event.session.id, self._shown(entry.digits))
            entry = self._restart(event)
        entry.last_key_at = now
        if event.digit == self.clear_key:
            self._restart(event)
            return None
        if event.digit == self.terminator:
            return self._finish(event, entry)
        entry.digits += event.digit
        if self.max_digits is not None and len(entry.digits) >= self.max_digits:
            return self._finish(event, entry)
        return None

    def timeout(self, event: BaseEvent) -> Answer:
        """Finish an entry that is long enough; otherwise ask again."""
        entry = self._state(event)
        if len(entry.digits) >= self.min_digits:
            return self._finish(event, entry)
        self._restart(event)
        return self.timeout_prompt if self.timeout_prompt is not None else self.prompt

    def _finish(self, event: BaseEvent, entry: _Entry) -> Answer:
        digits = entry.digits
        self._restart(event)
        if len(digits) < self.min_digits:
            logger.info("session %s: entry %s too short (%d < %d digits)", event.session.id,
                        self._shown(digits), len(digits), self.min_digits)
            return self.too_short_prompt if self.too_short_prompt is not None else self.prompt
        logger.info("session %s: collected %s", event.session.id, self._shown(digits))
        return self.on_complete(event, digits)


@dataclass(slots=True)
class _Question:
    answered: bool = False


class Confirmation(_KeypadHelper[_Question]):
    """"Press 1 for yes, 2 for no": ``on_yes`` / ``on_no`` answer once; other keys re-ask.

    After the answer further keys are ignored until :meth:`start` asks again.
    """

    def __init__(
        self,
        prompt: Prompt,
        *,
        on_yes: KeyChoice,
        on_no: KeyChoice,
        yes_key: str = "1",
        no_key: str = "2",
        invalid_prompt: Prompt | None = None,
    ) -> None:
        super().__init__()
        if _check_key(yes_key, "Confirmation yes_key") == _check_key(no_key, "Confirmation no_key"):
            raise ValueError("Confirmation: yes_key and no_key must differ")
        self.prompt = prompt
        self.on_yes = on_yes
        self.on_no = on_no
        self.yes_key = yes_key
        self.no_key = no_key
        self.invalid_prompt = invalid_prompt

    def _new_state(self) -> _Question:
        return _Question()

    def answered(self, session_id: str) -> bool:
        """Whether the caller of ``session_id`` has answered."""
        question = self._states.get(session_id)
        return question is not None and question.answered

    def start(self, event: BaseEvent) -> Answer:
        """Ask (again) and return the prompt."""
        self._restart(event)
        return self.prompt

    def key(self, event: DtmfReceivedEvent) -> Answer:
        """``on_yes`` / ``on_no`` on the first valid answer; other keys re-ask."""
        question = self._state(event)
        if question.answered:
            return None
        if event.digit in (self.yes_key, self.no_key):
            question.answered = True
            return _choose(self.on_yes if event.digit == self.yes_key else self.on_no, event)
        return _again(self.invalid_prompt, self.prompt)

    def timeout(self, event: BaseEvent) -> Answer:
        """Ask again unless already answered."""
        return None if self._state(event).answered else self.prompt


__all__ = ["Completion", "Confirmation", "DigitCollector", "KeyChoice", "Menu", "Prompt"]
