"""Turn whatever a handler returned into a list of validated actions for the event's session.

| handler returned | becomes |
|---|---|
| ``None`` | no action |
| ``str`` | a ``speak`` action with that text |
| :class:`~voxflow.sdk.replies.Reply` (``speak(...)``, ``transfer(...)`` ...) | that action |
| an action model | that action, unchanged |
| a ``dict`` | validated as an action; a missing ``session_id`` is taken from the event |
| a ``list`` / ``tuple`` of the above | several actions, in order (nested lists are flattened) |
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias, cast

from voxflow.errors import HandlerError, ProtocolError
from voxflow.protocol import ACTION_MODELS, Action, BaseAction, BaseEvent, SpeakAction, parse_action
from voxflow.sdk.replies import Reply

HandlerResult: TypeAlias = (
    str | Reply | BaseAction | Mapping[str, Any] | list[Any] | tuple[Any, ...] | None
)
"""What a handler may return (see the module docstring)."""


def coerce_result(result: object, event: BaseEvent) -> list[Action]:
    """The actions a handler's return value stands for; :class:`HandlerError` if it is invalid."""
    actions: list[Action] = []
    _collect(result, event, actions, "result")
    return actions


def _collect(result: object, event: BaseEvent, into: list[Action], where: str) -> None:
    session_id = event.session.id
    if result is None:
        return
    if isinstance(result, str):
        into.append(SpeakAction(session_id=session_id, text=result))
    elif isinstance(result, Reply):
        into.append(result.to(session_id))
    elif isinstance(result, ACTION_MODELS):
        into.append(cast(Action, result))
    elif isinstance(result, Mapping):
        try:
            into.append(parse_action({"session_id": session_id, **result}, path=where))
        except ProtocolError as exc:
            raise HandlerError(f"handler returned an invalid action: {exc}", session_id) from None
    elif isinstance(result, list | tuple):
        for index, item in enumerate(result):
            _collect(item, event, into, f"{where}[{index}]")
    else:
        raise HandlerError(
            f"{where}: handler returned {type(result).__name__}; expected a string, an action, "
            "a dict, a list of those, or None",
            session_id,
        )
