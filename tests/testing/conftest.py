"""The plain Flask examples (no voxflow imports) served by werkzeug on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"testing_example_{name}",
                                                  EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def flask_webhook() -> Iterator[Callable[[str], str]]:
    """``flask_webhook("ivr_menu_flask")`` → the URL of that example, served until teardown."""
    servers: list[tuple[Any, threading.Thread]] = []

    def serve(name: str) -> str:
        server = make_server("127.0.0.1", 0, _load(name).app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}/"

    yield serve
    for server, thread in servers:
        server.shutdown()
        thread.join(5)
