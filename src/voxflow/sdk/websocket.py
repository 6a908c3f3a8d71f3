"""The assistant's side of the WebSocket integration.

voxflow (or the hosted service) connects to the assistant's WebSocket server, one connection per
call, and sends each event as a JSON text frame. The assistant answers with a text frame holding
one action or an array of actions; the actions carry ``session_id``, which is how the engine
matches them (there is no request id). Frames that are not events are logged and ignored, and
so is a failing handler: one bad message never ends the call's connection.

Two ready-made servers use :func:`serve_messages`: :func:`websockets_handler` for the
``websockets`` library and :func:`starlette_endpoint` for Starlette/ASGI.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import TYPE_CHECKING

from voxflow.errors import HandlerError, ProtocolError, SignatureError
from voxflow.protocol import dump_actions
from voxflow.sdk.assistant import Assistant
from voxflow.sdk.signing import check_token

if TYPE_CHECKING:
    from starlette.websockets import WebSocket
    from websockets.asyncio.server import ServerConnection

logger = logging.getLogger("voxflow.sdk.websocket")

# RFC 6455 "policy violation": the closest close code to HTTP 401 once the socket is open.
POLICY_VIOLATION = 1008


async def answer_message(assistant: Assistant, message: str | bytes) -> str | None:
    """The text frame answering one received frame, or None when nothing is to be sent."""
    try:
        actions = await assistant.handle(message)
    except ProtocolError as exc:
        logger.warning("ignoring a WebSocket message that is not an event: %s", exc)
        return None
    except HandlerError:
        return None  # already logged with the session id by the assistant
    return dump_actions(actions) if actions else None


async def serve_messages(
    assistant: Assistant,
    messages: AsyncIterable[str | bytes],
    send: Callable[[str], Awaitable[None]],
) -> None:
    """Answer every frame of one connection, in order, until the peer closes it."""
    async for message in messages:
        answer = await answer_message(assistant, message)
        if answer is not None:
            await send(answer)


def _refusal(assistant: Assistant, headers: dict[str, str]) -> str | None:
    if assistant.api_token is None:
        return None
    try:
        check_token(headers, assistant.api_token)
    except SignatureError as exc:
        return f"unauthorized: {exc}"
    return None


def websockets_handler(assistant: Assistant) -> Callable[[ServerConnection], Awaitable[None]]:
    """A connection handler for ``websockets.asyncio.server.serve``."""

    async def handler(connection: ServerConnection) -> None:
        request = connection.request
        headers = dict(request.headers.raw_items()) if request is not None else {}
        refusal = _refusal(assistant, headers)
        if refusal is not None:
            logger.warning("refusing WebSocket connection: %s", refusal)
            await connection.close(POLICY_VIOLATION, refusal[:120])
            return
        await serve_messages(assistant, connection, connection.send)

    return handler


def starlette_endpoint(assistant: Assistant) -> Callable[[WebSocket], Awaitable[None]]:
    """A Starlette WebSocket endpoint (``WebSocketRoute(path, endpoint)``)."""
    from starlette.websockets import WebSocketDisconnect

    async def endpoint(websocket: WebSocket) -> None:
        refusal = _refusal(assistant, dict(websocket.headers.items()))
        if refusal is not None:
            logger.warning("refusing WebSocket connection: %s", refusal)
            await websocket.close(POLICY_VIOLATION, refusal[:120])
            return
        await websocket.accept()
        with contextlib.suppress(WebSocketDisconnect):
            await serve_messages(assistant, websocket.iter_text(), websocket.send_text)

    return endpoint
