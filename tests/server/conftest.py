"""Real pieces for engine tests: the plain-Flask seed IVR under werkzeug, a SIPp trunk
stand-in that answers transferred calls, and a running :class:`VoxflowApp`."""

from __future__ import annotations

import importlib.util
import io
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from peers import HOST, Sipp, free_port_block
from sipp_scenarios import info_keys_scenario
from werkzeug.serving import make_server

from voxflow.engine.records import CallRecordStore
from voxflow.server.app import VoxflowApp
from voxflow.server.config import ServeSettings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass
class SeenEvents:
    """Every event the webhook received, as parsed JSON, in arrival order."""

    events: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    def add(self, event: dict[str, Any]) -> None:
        with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    def of(self, session_id: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events
                    if session_id is None or e.get("session", {}).get("id") == session_id]

    def types(self, session_id: str | None = None) -> list[str]:
        return [str(e.get("type")) for e in self.of(session_id)]

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: predicate(self.events), timeout):
                kinds = [e.get("type") for e in self.events]
                raise AssertionError(f"webhook condition not met within {timeout} s; saw {kinds}")

    def wait_type(self, kind: str, timeout: float = 10.0, count: int = 1) -> None:
        self.wait_for(lambda es: sum(e.get("type") == kind for e in es) >= count, timeout)


@dataclass
class FlaskWebhook:
    url: str
    seen: SeenEvents


def load_example(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def recording(app: Any, seen: SeenEvents) -> Any:
    """WSGI middleware: note each request body, then let the unchanged app answer it."""

    def middleware(environ: dict[str, Any], start_response: Any) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        try:
            seen.add(json.loads(body))
        except ValueError:
            seen.add({"type": "<unparseable>", "raw": body.decode(errors="replace")})
        environ["wsgi.input"] = io.BytesIO(body)
        return app(environ, start_response)

    return middleware


@pytest.fixture
def flask_ivr() -> Iterator[FlaskWebhook]:
    """The seed IVR (examples/ivr_menu_flask.py, no voxflow imports) served by werkzeug."""
    module = load_example("ivr_menu_flask")
    seen = SeenEvents()
    server = make_server(HOST, 0, recording(module.app, seen), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield FlaskWebhook(f"http://{HOST}:{server.server_port}/", seen)
    server.shutdown()
    thread.join(5)


@pytest.fixture
def trunk(sipp: Callable[..., Sipp]) -> Sipp:
    """A SIPp UAS standing in for the trunk that transferred calls go to."""
    return sipp("trunk", builtin="uas").serve(lifetime=60)


def engine_settings(tmp_path: Path, **options: Any) -> ServeSettings:
    base = free_port_block(80)
    values: dict[str, Any] = {
        "sip_listen": f"{HOST}:0",
        "rtp_ports": f"{base}-{base + 79}",
        "account_id": "account-123",
        "records": str(tmp_path / "calls.sqlite3"),
        **options,
    }
    return ServeSettings.model_validate(values)


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``async with make_engine(webhook=url) as app`` → a started :class:`VoxflowApp`."""

    def make(**options: Any) -> VoxflowApp:
        settings = engine_settings(tmp_path, **options)
        return VoxflowApp(settings, records=CallRecordStore(settings.records,
                                                           flush_interval_s=0.05))

    yield make



# -- a SIPp caller that presses keys by SIP INFO -------------------------------------------------


@pytest.fixture
def info_call(tmp_path: Path) -> Callable[..., Path]:
    """``info_call("1#", accept_refer=True)`` → a SIPp scenario file: call, wait, press the keys
    by SIP INFO, then (optionally) accept a REFER, then wait for the engine's BYE."""

    def write(keys: str, *, accept_refer: bool = False, first_pause_ms: int = 2000,
              gap_ms: int = 150) -> Path:
        path = tmp_path / f"info_{len(list(tmp_path.glob('info_*.xml')))}.xml"
        path.write_text(info_keys_scenario(
            keys, caller="4930123456", first_pause_ms=first_pause_ms, gap_ms=gap_ms,
            hang_up=False, accept_refer=accept_refer))
        return path

    return write
