"""Turn JSON-like data into event/action models, with errors that name the field.

``parse_event({"type": "dtmf_received", "digit": "12", ...})`` raises
``ProtocolError("dtmf_received.digit: '12' is not one of 0-9, *, #")``; inside a list of actions
the path starts with ``actions[0]``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from voxflow.errors import ProtocolError
from voxflow.protocol.actions import Action
from voxflow.protocol.enums import ActionType, EventType
from voxflow.protocol.events import Event

_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
_ACTION_ADAPTER: TypeAdapter[Action] = TypeAdapter(Action)

JsonLike = Mapping[str, Any] | Sequence[Any] | str | bytes


def _load(data: JsonLike) -> Any:
    if isinstance(data, str | bytes | bytearray):
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"invalid JSON: {exc}") from None
    return data


def _describe(error: ErrorDetails, kind: str, known: list[str]) -> str:
    kind_word = "event" if kind == "event" else "action"
    match error["type"]:
        case "missing":
            return "field required"
        case "extra_forbidden":
            return f"unknown field (not part of this {kind_word})"
        case "union_tag_invalid":
            tag = error["ctx"]["tag"] if "ctx" in error else "?"
            return f"unknown {kind_word} type {tag!r} (expected one of {', '.join(known)})"
        case "union_tag_not_found":
            return "field required"
        case "model_attributes_type" | "model_type" | "dict_type":
            return f"expected a JSON object, got {type(error['input']).__name__}"
    message = error["msg"].removeprefix("Value error, ")
    return message[:1].lower() + message[1:]


def _format(exc: ValidationError, kind: str, prefix: str | None, known: list[str]) -> ProtocolError:
    problems = []
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = ["type"]
        elif prefix is not None:
            loc = loc[1:]  # the discriminator tag; the list position already names the object
        path = prefix or ""
        for item in loc:
            if isinstance(item, int):
                path += f"[{item}]"
            else:
                path = f"{path}.{item}" if path else str(item)
        path = path or kind
        problems.append(f"{path}: {_describe(error, kind, known)}")
    return ProtocolError("; ".join(problems), problems)


_EVENT_TYPES = [t.value for t in EventType]
_ACTION_TYPES = [t.value for t in ActionType]


def parse_event(data: JsonLike) -> Event:
    """Validate one event (a mapping or JSON text); raise :class:`ProtocolError` if invalid."""
    raw = _load(data)
    try:
        return _EVENT_ADAPTER.validate_python(raw)
    except ValidationError as exc:
        raise _format(exc, "event", None, _EVENT_TYPES) from None


def parse_action(data: JsonLike, *, path: str | None = None) -> Action:
    """Validate one action; ``path`` (e.g. ``"actions[2]"``) prefixes error locations."""
    raw = _load(data)
    try:
        return _ACTION_ADAPTER.validate_python(raw)
    except ValidationError as exc:
        raise _format(exc, "action", path, _ACTION_TYPES) from None


def parse_actions(data: JsonLike | None) -> list[Action]:
    """Validate an assistant's response: one action object, an array of them, or nothing.

    Every invalid element is reported, each with its ``actions[i]`` path.
    """
    raw = _load(data) if data not in (None, b"", "") else None
    if raw is None:
        return []
    if isinstance(raw, Mapping):
        return [parse_action(raw)]
    if not isinstance(raw, list):
        raise ProtocolError(f"actions: expected an object or an array, got {type(raw).__name__}")
    actions: list[Action] = []
    problems: list[str] = []
    for index, item in enumerate(raw):
        try:
            actions.append(parse_action(item, path=f"actions[{index}]"))
        except ProtocolError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ProtocolError("; ".join(problems), problems)
    return actions


def to_wire(model: BaseModel) -> dict[str, Any]:
    """The JSON-ready dict of an event or action in canonical form (unset optionals omitted)."""
    data = model.model_dump(mode="json", exclude_none=True)
    if "type" in data:  # ``type`` first: what a human reading a log or a capture looks for
        data = {"type": data.pop("type"), **data}
    return data


def dump_actions(actions: Sequence[BaseModel]) -> str:
    """Serialise actions as one response body: a single object, or an array for several."""
    if len(actions) == 1:
        return json.dumps(to_wire(actions[0]))
    return json.dumps([to_wire(action) for action in actions])
