"""Real assistant peers for dispatch tests: a Starlette webhook served by uvicorn on 127.0.0.1
in a background thread, plus event helpers."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from voxflow.protocol import SessionStartEvent, UserSpeakEvent
from voxflow.protocol.session import Session


@dataclass
class Received:
    """One request as the assistant saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    session_id: str
    event_type: str
    loop_time: float


@dataclass
class WebhookServer:
    url: str
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def requests(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]


def speak(session_id: str, text: str) -> dict[str, Any]:
    return {"type": "speak", "session_id": session_id, "text": text}


def _build_app(server: WebhookServer) -> Starlette:
    async def handle(request: Request) -> Response:
        body = await request.body()
        event = json.loads(body)
        session_id = event["session"]["id"]
        path = request.path_params["behaviour"]
        with server.lock:
            server.received.append(
                Received(
                    path,
                    dict(request.headers),
                    body,
                    session_id,
                    event["type"],
                    asyncio.get_running_loop().time(),
                )
            )
        text = event.get("text", event["type"])
        match path:
            case "speak":
                return JSONResponse(speak(session_id, f"echo {text}"))
            case "array":
                return JSONResponse(
                    [speak(session_id, "one"), {"type": "hangup", "session_id": session_id}]
                )
            case "no-content":
                return Response(status_code=204)
            case "empty":
                return Response(b"", status_code=200)
            case "slow":
                await asyncio.sleep(1.0)
                return JSONResponse(speak(session_id, "late"))
            case "slow-first":
                # Only the session_start of a session is slow: enough to test ordering.
                if event["type"] == "session_start":
                    await asyncio.sleep(0.4)
                return JSONResponse(speak(session_id, f"echo {text}"))
            case "error":
                return Response(b"Internal Server Error", status_code=500)
            case "garbage":
                return Response(b"<html>oops</html>", status_code=200, media_type="text/html")
            case "unknown-action":
                return JSONResponse({"type": "dance", "session_id": session_id})
            case "wrong-session":
                return JSONResponse([speak(session_id, "mine"), speak("other-call", "theirs")])
            case "huge":
                return JSONResponse(speak(session_id, "x" * (2 << 20)))
            case "huge-chunked":

                async def chunks() -> Any:
                    for _ in range(40):
                        yield b" " * 65536

                return StreamingResponse(chunks(), media_type="application/json")
        return Response(b"not found", status_code=404)

    return Starlette(routes=[Route("/{behaviour}", handle, methods=["POST"])])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def running_webhook_server() -> Iterator[WebhookServer]:
    """Serve the test assistant on a free port for the duration of the block."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = WebhookServer(url=f"http://127.0.0.1:{port}")
    config = uvicorn.Config(_build_app(server), log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not uv.started:
        if not thread.is_alive():
            raise RuntimeError("webhook test server did not start")
        threading.Event().wait(0.01)
    yield server
    uv.should_exit = True
    thread.join(timeout=5)
    sock.close()


def make_session(session_id: str) -> Session:
    return Session(
        id=session_id,
        account_id="account-123",
        phone_number="+1234567890",
        from_phone_number="+9876543210",
        to_phone_number="+1234567890",
    )


def session_start(session_id: str) -> SessionStartEvent:
    return SessionStartEvent(session=make_session(session_id))


def user_speak(session_id: str, text: str) -> UserSpeakEvent:
    return UserSpeakEvent(session=make_session(session_id), text=text)
