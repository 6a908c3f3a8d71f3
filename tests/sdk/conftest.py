"""Real HTTP servers on 127.0.0.1 for the SDK tests: uvicorn (ASGI) and werkzeug (WSGI)."""

from __future__ import annotations

import importlib.util
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import uvicorn
from werkzeug.serving import make_server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

SESSION = {
    "id": "550e8400-e29b-41d4-a716-446655440000",
    "account_id": "account-123",
    "phone_number": "+1234567890",
    "direction": "inbound",
    "from_phone_number": "+9876543210",
    "to_phone_number": "+1234567890",
}


def event(kind: str, session_id: str = SESSION["id"], **fields: Any) -> dict[str, Any]:
    """An event as it travels on the wire."""
    return {"type": kind, "session": {**SESSION, "id": session_id}, **fields}


@pytest.fixture(scope="session")
def wire_event() -> Callable[..., dict[str, Any]]:
    return event


@pytest.fixture(scope="session")
def load_example() -> Callable[[str], ModuleType]:
    """Import ``examples/<name>.py`` afresh (its module-level state is per test)."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="module")
def asgi_server() -> Iterator[Callable[[Any], str]]:
    """Start an ASGI app under uvicorn on a free port; returns its base URL.

    Servers live until the end of the test module, so a module can share one per app.
    """
    started: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: Any) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        started.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in started:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def wsgi_server() -> Iterator[Callable[[Any], str]]:
    """Start a WSGI app (Flask) under werkzeug on a free port; returns its base URL."""
    started: list[tuple[Any, threading.Thread]] = []

    def start(app: Any) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                                  daemon=True)
        thread.start()
        started.append((server, thread))
        return f"http://127.0.0.1:{server.port}"

    yield start
    for server, thread in started:
        server.shutdown()
        thread.join(timeout=10)
