"""Run an assistant as a stand-alone webhook server (for examples and quick experiments)."""

from __future__ import annotations

from typing import Literal

from voxflow.sdk.assistant import Assistant

Server = Literal["asgi", "flask"]


def run(
    assistant: Assistant,
    server: Server | str = "asgi",
    host: str = "127.0.0.1",
    port: int = 8000,
    path: str = "/",
) -> None:
    """Serve webhook POSTs at ``http://host:port/path`` until interrupted.

    ``asgi`` uses uvicorn (and also accepts WebSocket calls at ``/ws``); ``flask`` uses
    Flask's development server.
    """
    if server == "asgi":
        import uvicorn

        uvicorn.run(assistant.asgi_app(path, websocket_path="/ws"), host=host, port=port)
    elif server == "flask":
        assistant.flask_app(path).run(host=host, port=port)
    else:
        raise ValueError(f"server: {server!r} is not 'asgi' or 'flask'")
