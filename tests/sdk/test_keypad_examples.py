"""The PIN-entry and confirmation examples: the plain Flask version (no voxflow) and the
``voxflow.sdk`` version, each served over werkzeug, must hold the same conversation."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import httpx
import pytest

from voxflow.protocol import parse_actions

Wire = Callable[..., dict[str, Any]]

# Each step: (event type, extra fields) → expected [(action type, text or None), ...]
Step = tuple[str, dict[str, Any], list[tuple[str, str | None]]]

PROMPT = "Please enter your four digit PIN, then press the hash key."
PIN_CALL: list[Step] = [
    ("session_start", {}, [("speak", PROMPT)]),
    *[("dtmf_received", {"digit": d}, []) for d in "12"],
    ("dtmf_received", {"digit": "#"}, [("speak", "That was less than four digits. " + PROMPT)]),
    *[("dtmf_received", {"digit": d}, []) for d in "9999"],
    ("dtmf_received", {"digit": "#"}, [("speak", "Sorry, that PIN is not correct. " + PROMPT)]),
    ("dtmf_received", {"digit": "1"}, []),
    ("user_input_timeout", {}, [("speak", PROMPT)]),
    *[("dtmf_received", {"digit": d}, []) for d in "1234"],
    ("dtmf_received", {"digit": "#"},
     [("speak", "Thank you, your PIN is correct. Goodbye!"), ("hangup", None)]),
    ("session_end", {}, []),
]

QUESTION = ("You have an appointment tomorrow at 10 a.m. "
            "Press 1 to confirm it, or press 2 to cancel it.")
CONFIRM_CALL: list[Step] = [
    ("session_start", {}, [("speak", QUESTION)]),
    ("dtmf_received", {"digit": "5"}, [("speak", "Sorry, I did not get that."),
                                       ("speak", QUESTION)]),
    ("user_input_timeout", {}, [("speak", QUESTION)]),
    ("dtmf_received", {"digit": "1"},
     [("speak", "Thank you, your appointment is confirmed. Goodbye!"), ("hangup", None)]),
]
CANCEL_CALL: list[Step] = [
    ("dtmf_received", {"digit": "2"},
     [("speak", "Your appointment has been cancelled. Goodbye!"), ("hangup", None)]),
]


def app_of(module: ModuleType) -> Any:
    return module.app if hasattr(module, "app") else module.assistant.flask_app()


def converse(url: str, wire_event: Wire, session_id: str, steps: list[Step]) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        for kind, fields, expected in steps:
            response = client.post("/", json=wire_event(kind, session_id, **fields))
            assert response.status_code == (200 if expected else 204), (kind, fields)
            actions = parse_actions(response.content)
            assert all(action.session_id == session_id for action in actions)
            got = [(a.type, getattr(a, "text", None)) for a in actions]
            assert got == expected, (kind, fields)


@pytest.mark.parametrize("name", ["pin_entry_flask", "pin_entry_sdk"])
def test_pin_entry(
    name: str, load_example: Callable[[str], ModuleType],
    wsgi_server: Callable[[Any], str], wire_event: Wire,
) -> None:
    url = wsgi_server(app_of(load_example(name)))
    converse(url, wire_event, "pin-call-1", PIN_CALL)
    # Two calls at once keep separate entries: "12" and "1234" must not mix.
    short_entry, too_short = PIN_CALL[:3], PIN_CALL[3:4]
    right_pin = PIN_CALL[-6:-1]
    converse(url, wire_event, "pin-call-2", short_entry)
    converse(url, wire_event, "pin-call-3", PIN_CALL[:1] + right_pin[:-1])
    converse(url, wire_event, "pin-call-2", too_short)
    converse(url, wire_event, "pin-call-3", right_pin[-1:])


@pytest.mark.parametrize("name", ["confirm_flask", "confirm_sdk"])
def test_confirmation(
    name: str, load_example: Callable[[str], ModuleType],
    wsgi_server: Callable[[Any], str], wire_event: Wire,
) -> None:
    url = wsgi_server(app_of(load_example(name)))
    converse(url, wire_event, "confirm-call-1", CONFIRM_CALL)
    converse(url, wire_event, "confirm-call-2", CONFIRM_CALL[:1] + CANCEL_CALL)
