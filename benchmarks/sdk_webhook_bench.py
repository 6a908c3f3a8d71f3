"""How fast the SDK answers: in-process dispatch, and webhook round trips over real servers.

    .venv/bin/python benchmarks/sdk_webhook_bench.py [--requests N]

Rows: the seed IVR assistant (``examples/ivr_menu_sdk.py``) through ``assistant.handle`` /
``handle_sync`` in-process; then a ``dtmf_received`` POST over 127.0.0.1 with a keep-alive
client to the SDK's ASGI adapter (uvicorn), its Flask adapter (werkzeug), and — as the reference
peer — the plain Flask example without voxflow (werkzeug). Times are per event.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import socket
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table
from werkzeug.serving import make_server

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EVENT = {"type": "dtmf_received", "digit": "9",
         "session": {"id": "550e8400-e29b-41d4-a716-446655440000", "account_id": "a",
                     "phone_number": "+1234567890", "direction": "inbound",
                     "from_phone_number": "+9876543210", "to_phone_number": "+1234567890"}}


def example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timings(run_once: Callable[[], object], count: int) -> list[float]:
    for _ in range(min(50, count)):
        run_once()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        run_once()
        samples.append(time.perf_counter() - started)
    return samples


def start_uvicorn(app: Any) -> tuple[str, Callable[[], None]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join()

    return f"http://127.0.0.1:{sock.getsockname()[1]}/", stop


def start_werkzeug(app: Any) -> tuple[str, Callable[[], None]]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        thread.join()

    return f"http://127.0.0.1:{server.port}/", stop


def over_http(url: str, count: int) -> list[float]:
    with httpx.Client() as client:
        def post() -> None:
            response = client.post(url, json=EVENT)
            assert response.status_code == 200, response.text

        return timings(post, count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    count = parser.parse_args().requests
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request

    assistant = example("ivr_menu_sdk").assistant
    loop = asyncio.new_event_loop()
    rows: list[tuple[str, list[float]]] = [
        ("in-process handle_sync()", timings(lambda: assistant.handle_sync(EVENT), count)),
        ("in-process await handle()",
         timings(lambda: loop.run_until_complete(assistant.handle(EVENT)), count)),
    ]
    loop.close()
    for label, (url, stop) in [
        ("HTTP: SDK ASGI adapter (uvicorn)", start_uvicorn(assistant.asgi_app())),
        ("HTTP: SDK Flask adapter (werkzeug)", start_werkzeug(assistant.flask_app())),
        ("HTTP: plain Flask, no voxflow (werkzeug)",
         start_werkzeug(example("ivr_menu_flask").app)),
    ]:
        rows.append((label, over_http(url, count)))
        stop()

    table = Table(title=f"seed IVR, dtmf_received → menu speak, {count} events each")
    for column in ("path", "p50 µs", "p99 µs", "events/s"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for label, samples in rows:
        cuts = statistics.quantiles(samples, n=100)
        table.add_row(label, f"{cuts[49] * 1e6:.0f}", f"{cuts[98] * 1e6:.0f}",
                      f"{len(samples) / sum(samples):,.0f}")
    Console().print(table)


if __name__ == "__main__":
    main()
