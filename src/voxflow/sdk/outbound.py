"""Start an outbound call: ``POST {base_url}/v3/ai-flows/{id}/call``.

Works against the hosted service and against voxflow's own API, which speak the same request:
``Authorization: Bearer <token>`` and ``{"toPhoneNumber": ..., "billingDevice": ...}``;
``201`` means the call is being placed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from voxflow.errors import OutboundCallError

DEFAULT_BASE_URL = "https://api.sipgate.com"
DEFAULT_TIMEOUT_S = 10.0

# The response body is not documented; these are the names a session id has been seen under.
_SESSION_ID_KEYS = ("sessionId", "session_id", "id")


@dataclass(frozen=True, slots=True)
class OutboundCall:
    """A placed call: ``session_id`` when the service told us, and the raw response body."""

    status: int
    session_id: str | None
    body: Any


@dataclass(frozen=True, slots=True)
class _Request:
    url: str
    headers: dict[str, str]
    json: dict[str, str]


def _request(
    ai_flow_id: str, to_phone_number: str, billing_device: str, token: str, base_url: str
) -> _Request:
    for name, value in (("ai_flow_id", ai_flow_id), ("to_phone_number", to_phone_number),
                        ("billing_device", billing_device), ("token", token)):
        if not value or not value.strip():
            raise ValueError(f"{name} must not be empty")
    return _Request(
        url=f"{base_url.rstrip('/')}/v3/ai-flows/{quote(ai_flow_id, safe='')}/call",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        json={"toPhoneNumber": to_phone_number, "billingDevice": billing_device},
    )


def _result(request: _Request, response: httpx.Response) -> OutboundCall:
    if response.status_code not in (200, 201, 202):
        hint = {400: " (does the AI flow have a phone number configured?)",
                401: " (check the token)", 403: " (check the token)",
                404: " (unknown AI flow id)"}.get(response.status_code, "")
        text = response.text[:500]
        raise OutboundCallError(
            f"outbound call refused: POST {request.url} answered {response.status_code}"
            f"{hint}: {text or '(empty body)'}",
            status=response.status_code,
            body=text,
        )
    try:
        body: Any = response.json() if response.content else None
    except ValueError:
        body = response.text
    session_id = None
    if isinstance(body, dict):
        session_id = next((str(body[key]) for key in _SESSION_ID_KEYS if body.get(key)), None)
    return OutboundCall(status=response.status_code, session_id=session_id, body=body)


def _unreachable(request: _Request, exc: httpx.HTTPError) -> OutboundCallError:
    return OutboundCallError(f"outbound call failed: POST {request.url}: {type(exc).__name__}: "
                             f"{exc}")


async def call(
    ai_flow_id: str,
    to_phone_number: str,
    billing_device: str,
    token: str,
    *,
    base_url: str = DEFAULT_BASE_URL,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    client: httpx.AsyncClient | None = None,
) -> OutboundCall:
    """Ask the service to call ``to_phone_number``; raise :class:`OutboundCallError` if refused."""
    request = _request(ai_flow_id, to_phone_number, billing_device, token, base_url)
    try:
        if client is not None:
            response = await client.post(request.url, headers=request.headers, json=request.json,
                                         timeout=timeout_s)
        else:
            async with httpx.AsyncClient(timeout=timeout_s) as own_client:
                response = await own_client.post(request.url, headers=request.headers,
                                                  json=request.json)
    except httpx.HTTPError as exc:
        raise _unreachable(request, exc) from exc
    return _result(request, response)


def call_sync(
    ai_flow_id: str,
    to_phone_number: str,
    billing_device: str,
    token: str,
    *,
    base_url: str = DEFAULT_BASE_URL,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> OutboundCall:
    """:func:`call` for synchronous code."""
    request = _request(ai_flow_id, to_phone_number, billing_device, token, base_url)
    try:
        response = httpx.post(request.url, headers=request.headers, json=request.json,
                              timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise _unreachable(request, exc) from exc
    return _result(request, response)
