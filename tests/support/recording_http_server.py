"""A real HTTP server on 127.0.0.1 that records each request and answers with canned bytes."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class RecordedRequest:
    method: str
    path: str  # as sent, still percent-encoded
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class RecordingServer:
    """Answers every POST with ``status``/``body``/``content_type``; keeps what it received."""

    url: str = ""
    status: int = 200
    body: bytes = b""
    content_type: str = "application/octet-stream"
    requests: list[RecordedRequest] = field(default_factory=list)

    async def handle(self, request: Request) -> Response:
        self.requests.append(
            RecordedRequest(
                request.method,
                request.scope["raw_path"].decode(),
                dict(request.query_params),
                {k.lower(): v for k, v in request.headers.items()},
                await request.body(),
            )
        )
        return Response(self.body, status_code=self.status, media_type=self.content_type)


@asynccontextmanager
async def serving_recorder() -> AsyncIterator[RecordingServer]:
    """Run a :class:`RecordingServer` with uvicorn on a free port for the block's duration."""
    recorder = RecordingServer()
    app = Starlette(routes=[Route("/{path:path}", recorder.handle, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # Listening before uvicorn starts lets clients connect at once (the backlog holds them).
    sock.listen()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    recorder.url = f"http://127.0.0.1:{port}"
    try:
        yield recorder
    finally:
        server.should_exit = True
        await task
        sock.close()
