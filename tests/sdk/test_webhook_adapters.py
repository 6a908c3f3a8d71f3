"""The ASGI and Flask adapters over real servers: auth (401), bad events (400), handler faults
(500, and the server keeps serving), signatures, 200/204."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from voxflow.protocol import DtmfReceivedEvent, SpeakAction, parse_actions
from voxflow.sdk import Assistant, sign

SESSION_ID = "550e8400-e29b-41d4-a716-446655440000"
SECRETS = ["whsec_current", "whsec_next"]


def pressed(event: DtmfReceivedEvent) -> str:
    if event.digit == "0":
        raise RuntimeError("the operator desk is closed")
    if event.digit == "5":
        return {"type": "transfer"}  # type: ignore[return-value]  # deliberately invalid
    return f"You pressed {event.digit}"


def guarded_assistant() -> Assistant:
    return Assistant(api_token="s3cret", on_dtmf_received=pressed)


def signed_assistant() -> Assistant:
    return Assistant(signing_secrets=SECRETS, on_dtmf_received=pressed)


@pytest.fixture(scope="module", params=["asgi", "flask"])
def serve(
    request: pytest.FixtureRequest,
    asgi_server: Callable[[Any], str],
    wsgi_server: Callable[[Any], str],
) -> Callable[[Assistant], str]:
    def start(assistant: Assistant) -> str:
        if request.param == "asgi":
            return asgi_server(assistant.asgi_app("/hook")) + "/hook"
        return wsgi_server(assistant.flask_app("/hook")) + "/hook"

    return start


@pytest.fixture(scope="module")
def guarded_url(serve: Callable[[Assistant], str]) -> str:
    return serve(guarded_assistant())


@pytest.fixture(scope="module")
def signed_url(serve: Callable[[Assistant], str]) -> str:
    return serve(signed_assistant())


def body_of(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def test_right_token_gets_the_action(
    guarded_url: str, wire_event: Callable[..., dict[str, Any]]
) -> None:
    response = httpx.post(guarded_url, content=body_of(wire_event("dtmf_received", digit="7")),
                          headers={"X-API-TOKEN": "s3cret", "Content-Type": "application/json"})
    assert response.status_code == 200
    assert parse_actions(response.content) == [
        SpeakAction(session_id=SESSION_ID, text="You pressed 7")
    ]


def test_header_name_is_case_insensitive(
    guarded_url: str, wire_event: Callable[..., dict[str, Any]]
) -> None:
    response = httpx.post(guarded_url, json=wire_event("dtmf_received", digit="7"),
                          headers={"x-api-token": "s3cret"})
    assert response.status_code == 200


@pytest.mark.parametrize(("headers", "reason"), [
    ({}, "missing X-API-TOKEN"),
    ({"X-API-TOKEN": "guess"}, "does not match"),
])
def test_missing_or_wrong_token_is_401(
    guarded_url: str, wire_event: Callable[..., dict[str, Any]],
    headers: dict[str, str], reason: str,
) -> None:
    response = httpx.post(guarded_url, json=wire_event("dtmf_received", digit="7"),
                          headers=headers)
    assert response.status_code == 401
    assert reason in response.json()["error"]


def test_invalid_event_is_400_naming_the_field(guarded_url: str) -> None:
    response = httpx.post(guarded_url, headers={"X-API-TOKEN": "s3cret"}, json={
        "type": "dtmf_received", "digit": "12", "session": {"id": SESSION_ID}})
    assert response.status_code == 400
    assert "dtmf_received.digit" in response.json()["error"]


def test_unknown_event_type_is_400_listing_the_known_ones(guarded_url: str) -> None:
    response = httpx.post(guarded_url, headers={"X-API-TOKEN": "s3cret"},
                          json={"type": "coffee_ready", "session": {"id": SESSION_ID}})
    assert response.status_code == 400
    error = response.json()["error"]
    assert "type" in error and "coffee_ready" in error and "dtmf_received" in error


def test_not_json_is_400(guarded_url: str) -> None:
    response = httpx.post(guarded_url, headers={"X-API-TOKEN": "s3cret"}, content=b"{nope")
    assert response.status_code == 400
    assert "invalid JSON" in response.json()["error"]


def test_raising_handler_is_500_and_the_server_keeps_serving(
    guarded_url: str, wire_event: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    headers = {"X-API-TOKEN": "s3cret"}
    with caplog.at_level("ERROR", logger="voxflow.sdk"):
        failed = httpx.post(guarded_url, headers=headers,
                            json=wire_event("dtmf_received", digit="0"))
    assert failed.status_code == 500
    logged = [r for r in caplog.records if "the operator desk is closed" in r.getMessage()]
    assert logged and SESSION_ID in logged[0].getMessage()
    assert SESSION_ID in failed.json()["error"]
    assert "the operator desk is closed" not in failed.text  # details stay in the log
    after = httpx.post(guarded_url, headers=headers, json=wire_event("dtmf_received", digit="3"))
    assert after.status_code == 200
    assert after.json()["text"] == "You pressed 3"


def test_invalid_returned_action_is_500(
    guarded_url: str, wire_event: Callable[..., dict[str, Any]]
) -> None:
    response = httpx.post(guarded_url, headers={"X-API-TOKEN": "s3cret"},
                          json=wire_event("dtmf_received", digit="5"))
    assert response.status_code == 500
    assert "target_phone_number" in response.json()["error"]


def test_unhandled_event_is_204(
    guarded_url: str, wire_event: Callable[..., dict[str, Any]]
) -> None:
    response = httpx.post(guarded_url, headers={"X-API-TOKEN": "s3cret"},
                          json=wire_event("session_start"))
    assert response.status_code == 204
    assert response.content == b""


@pytest.mark.parametrize("secret", SECRETS)
def test_signed_request_with_either_active_secret_passes(
    signed_url: str, wire_event: Callable[..., dict[str, Any]], secret: str
) -> None:
    body = body_of(wire_event("dtmf_received", digit="4"))
    headers = {**sign(body, secret, int(time.time())), "Content-Type": "application/json"}
    response = httpx.post(signed_url, content=body, headers=headers)
    assert response.status_code == 200
    assert response.json()["text"] == "You pressed 4"


@pytest.mark.parametrize(("tamper", "reason"), [
    ("unsigned", "missing X-Voxflow-Timestamp"),
    ("old", "expired"),
    ("body", "mismatch"),
    ("secret", "mismatch"),
])
def test_bad_signature_is_401_saying_why(
    signed_url: str, wire_event: Callable[..., dict[str, Any]], tamper: str, reason: str
) -> None:
    body = body_of(wire_event("dtmf_received", digit="4"))
    now = int(time.time())
    headers = {
        "unsigned": {},
        "old": sign(body, SECRETS[0], now - 301),
        "body": sign(body, SECRETS[0], now),
        "secret": sign(body, "whsec_retired", now),
    }[tamper]
    sent = body.replace(b'"4"', b'"1"') if tamper == "body" else body
    response = httpx.post(signed_url, content=sent, headers=headers)
    assert response.status_code == 401
    assert reason in response.json()["error"]
