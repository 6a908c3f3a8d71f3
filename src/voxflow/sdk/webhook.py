"""One webhook request → one response, independent of the web framework.

The ASGI and Flask adapters only translate their request into ``(headers, body)`` and the
:class:`WebhookResponse` back:

| situation | status | body |
|---|---|---|
| token or signature missing / wrong | 401 | ``{"error": "<why>"}`` |
| body is not a valid event | 400 | ``{"error": "<field path>: <problem>"}`` |
| handler raised or returned an invalid action | 500 | ``{"error": ...}`` (details in the log) |
| no action | 204 | empty |
| actions | 200 | one action object, or an array of several |
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from voxflow.errors import HandlerError, ProtocolError, SignatureError
from voxflow.protocol import Action, Event, dump_actions, parse_event
from voxflow.sdk.assistant import Assistant
from voxflow.sdk.signing import check_token, verify

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    """Status, body and content type to answer with (``content_type`` is None for no body)."""

    status: int
    body: bytes = b""
    content_type: str | None = None


def _error(status: int, message: str) -> WebhookResponse:
    return WebhookResponse(status, json.dumps({"error": message}).encode(), JSON)


def authenticate(
    assistant: Assistant, headers: Mapping[str, str], body: bytes, now: float
) -> WebhookResponse | None:
    """A 401 response if the assistant demands a token or signature the request lacks."""
    try:
        if assistant.api_token is not None:
            check_token(headers, assistant.api_token)
        if assistant.signing_secrets:
            verify(headers, body, assistant.signing_secrets, now, assistant.signature_tolerance_s)
    except SignatureError as exc:
        return _error(401, f"unauthorized: {exc}")
    return None


def parse_request(body: bytes) -> Event | WebhookResponse:
    """The event in ``body``, or the 400 response naming what is wrong with it."""
    try:
        return parse_event(body)
    except ProtocolError as exc:
        return _error(400, f"invalid event: {exc}")


def render(actions: list[Action]) -> WebhookResponse:
    """200 with the actions, or 204 when there are none."""
    if not actions:
        return WebhookResponse(204)
    return WebhookResponse(200, dump_actions(actions).encode(), JSON)


def _handler_failed(exc: HandlerError) -> WebhookResponse:
    return _error(500, f"assistant error: {exc}")


def _admit(
    assistant: Assistant, headers: Mapping[str, str], body: bytes, now: float
) -> WebhookResponse | Event:
    """The refusal (401/400) for a request, or the event it carries."""
    refused = authenticate(assistant, headers, body, now)
    return refused if refused is not None else parse_request(body)


async def answer_webhook(
    assistant: Assistant, headers: Mapping[str, str], body: bytes, now: float
) -> WebhookResponse:
    """The complete answer to one webhook request (for async servers)."""
    event = _admit(assistant, headers, body, now)
    if isinstance(event, WebhookResponse):
        return event
    try:
        return render(await assistant.handle(event))
    except HandlerError as exc:
        return _handler_failed(exc)


def answer_webhook_sync(
    assistant: Assistant, headers: Mapping[str, str], body: bytes, now: float
) -> WebhookResponse:
    """:func:`answer_webhook` for synchronous servers (WSGI)."""
    event = _admit(assistant, headers, body, now)
    if isinstance(event, WebhookResponse):
        return event
    try:
        return render(assistant.handle_sync(event))
    except HandlerError as exc:
        return _handler_failed(exc)
