"""Serve an :class:`~voxflow.sdk.Assistant` as an ASGI (Starlette) webhook app.

``uvicorn module:app`` with ``app = assistant.asgi_app("/webhook")``. Sync handlers run on the
event loop (they are expected to be quick, like the keypad helpers); make slow handlers async.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from voxflow.sdk.assistant import Assistant
from voxflow.sdk.webhook import answer_webhook
from voxflow.sdk.websocket import starlette_endpoint


def webhook_endpoint(assistant: Assistant) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint function for a Starlette ``Route`` (POST only)."""

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        answer = await answer_webhook(assistant, request.headers, body, time.time())
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type)

    return endpoint


def create_asgi_app(
    assistant: Assistant, path: str = "/", *, websocket_path: str | None = None
) -> Starlette:
    """A Starlette app: webhook POSTs at ``path``, and WebSocket calls at ``websocket_path``."""
    routes: list[BaseRoute] = [Route(path, webhook_endpoint(assistant), methods=["POST"])]
    if websocket_path is not None:
        routes.append(WebSocketRoute(websocket_path, starlette_endpoint(assistant)))
    return Starlette(routes=routes)
