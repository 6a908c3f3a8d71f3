"""Acceptance: the seed IVR example answers correctly over real HTTP servers on 127.0.0.1.

The SDK example is served by the ASGI adapter (uvicorn) and the Flask adapter (werkzeug); the
plain Flask example (no voxflow) is served by werkzeug, because voxflow's engine must later
drive it unchanged. All three must give the same answers.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import httpx
import pytest

from voxflow.protocol import HangupAction, SpeakAction, TransferAction, parse_actions

SESSION_ID = "550e8400-e29b-41d4-a716-446655440000"


@pytest.fixture(scope="module", params=["sdk-asgi", "sdk-flask", "plain-flask"])
def ivr_url(
    request: pytest.FixtureRequest,
    load_example: Callable[[str], ModuleType],
    asgi_server: Callable[[Any], str],
    wsgi_server: Callable[[Any], str],
) -> str:
    if request.param == "sdk-asgi":
        return asgi_server(load_example("ivr_menu_sdk").assistant.asgi_app())
    if request.param == "sdk-flask":
        return wsgi_server(load_example("ivr_menu_sdk").assistant.flask_app())
    return wsgi_server(load_example("ivr_menu_flask").app)


def post(url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(url + "/", json=body, timeout=10)


def assert_menu(response: httpx.Response, menu_text: str) -> None:
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    (action,) = parse_actions(response.content)
    assert isinstance(action, SpeakAction)
    assert action.session_id == SESSION_ID
    assert action.text == menu_text
    assert action.user_input_timeout_seconds == 8


def test_session_start_speaks_the_menu(
    ivr_url: str, wire_event: Callable[..., dict[str, Any]],
    load_example: Callable[[str], ModuleType],
) -> None:
    menu_text = load_example("ivr_menu_flask").MENU_TEXT
    assert menu_text == load_example("ivr_menu_sdk").MENU_TEXT
    assert_menu(post(ivr_url, wire_event("session_start")), menu_text)


@pytest.mark.parametrize(("digit", "target"), [("1", "+49211100200"), ("2", "+49211100201")])
def test_keys_1_and_2_transfer(
    ivr_url: str, wire_event: Callable[..., dict[str, Any]], digit: str, target: str
) -> None:
    response = post(ivr_url, wire_event("dtmf_received", digit=digit))
    assert response.status_code == 200
    assert response.json()["target_phone_number"] == target
    assert parse_actions(response.content) == [
        TransferAction(session_id=SESSION_ID, target_phone_number=target)
    ]


@pytest.mark.parametrize("digit", ["9", "0", "*"])
def test_other_keys_repeat_the_menu(
    ivr_url: str, wire_event: Callable[..., dict[str, Any]],
    load_example: Callable[[str], ModuleType], digit: str,
) -> None:
    menu_text = load_example("ivr_menu_flask").MENU_TEXT
    assert_menu(post(ivr_url, wire_event("dtmf_received", digit=digit)), menu_text)


def test_hash_says_goodbye_then_hangs_up(
    ivr_url: str, wire_event: Callable[..., dict[str, Any]]
) -> None:
    response = post(ivr_url, wire_event("dtmf_received", digit="#"))
    assert response.status_code == 200
    assert isinstance(response.json(), list)
    assert parse_actions(response.content) == [
        SpeakAction(session_id=SESSION_ID, text="Goodbye!"),
        HangupAction(session_id=SESSION_ID),
    ]


def test_silence_repeats_the_menu(
    ivr_url: str, wire_event: Callable[..., dict[str, Any]],
    load_example: Callable[[str], ModuleType],
) -> None:
    menu_text = load_example("ivr_menu_flask").MENU_TEXT
    assert_menu(post(ivr_url, wire_event("user_input_timeout")), menu_text)


@pytest.mark.parametrize("kind", ["assistant_speech_ended", "session_end"])
def test_unhandled_event_answers_204_without_body(
    ivr_url: str, wire_event: Callable[..., dict[str, Any]], kind: str
) -> None:
    response = post(ivr_url, wire_event(kind))
    assert response.status_code == 204
    assert response.content == b""


def test_invalid_event_answers_400_with_json_error(ivr_url: str) -> None:
    response = post(ivr_url, {"type": "dtmf_received", "digit": "1"})
    assert response.status_code == 400
    assert "error" in response.json()
