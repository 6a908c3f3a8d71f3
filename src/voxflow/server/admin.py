"""The admin HTTP API and web dashboard that ``voxflow serve`` offers on its admin port.

Routes (JSON unless said otherwise; every route but ``/health`` and the dashboard's static files
needs ``Authorization: Bearer <admin_token>`` when a token is configured):

- ``GET /health`` → ``{"status": "ok", "live_calls": N}``
- ``GET /metrics`` → Prometheus text format: live/total calls, key presses by source, deliveries
  by outcome, delivery latency histogram
- ``GET /api/calls`` → ``{"live": [...], "recent": [...]}`` (recent from the SQLite records)
- ``GET /api/calls/{id}`` → one call: summary, live flag, timeline entries with latencies
- ``POST /api/simulated-calls`` → start a call on the in-process simulated line (201)
- ``POST /api/calls/{id}/dtmf`` with ``{"digit": "2"}`` → inject a key into a simulated call
- ``POST /api/calls/{id}/hangup`` → end a live call
- ``POST /v3/ai-flows/{flow_id}/call`` with ``{"toPhoneNumber": ..., "billingDevice": ...}``
  → place an outbound call (201 with ``sessionId``), AI Flow's own request shape; needs
  ``Authorization: Bearer <admin_token or api_token>`` always, since calls cost money
- ``GET /`` → the dashboard (static HTML/JS/CSS that polls the API)

It runs under uvicorn inside the engine's event loop (:class:`AdminServer`), so handlers touch
the engine's objects directly, without locks.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from voxflow.dispatch import DeliveryResult
from voxflow.engine.records import CallRecordStore, CallSummary, RecordEntry
from voxflow.errors import SipStateError, VoxflowError
from voxflow.media.dtmf import DtmfSource
from voxflow.protocol import Session
from voxflow.server.embedded import EmbeddedServer
from voxflow.server.outbound import NoRouteError, parse_call_request
from voxflow.server.recorder import CallRecorder

if TYPE_CHECKING:
    from voxflow.server.app import VoxflowApp

log = logging.getLogger(__name__)

DASHBOARD_DIR = Path(__file__).with_name("dashboard")
#: Upper bounds (ms) of the delivery latency histogram's buckets.
LATENCY_BUCKETS_MS = (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0)
_RECENT_LIMIT = 50
#: Keys the dashboard's keypad can inject (A-D are not on a phone's keypad).
KEYPAD = frozenset("0123456789*#")
#: How injected keys are reported: carried as a message, as a media stream's keys are.
INJECTED_KEY_SOURCE = DtmfSource.STREAM


# -- metrics ---------------------------------------------------------------------------------------


class EngineMetrics:
    """Counters and one histogram, rendered in the Prometheus text format (no client library:
    the format is a few lines, and each engine keeps its own numbers rather than a global
    registry)."""

    def __init__(self) -> None:
        self.calls_live = 0
        self.calls_total: Counter[str] = Counter()
        self.dtmf_received: Counter[tuple[str, str]] = Counter()
        self.deliveries: Counter[str] = Counter()
        self.latency_buckets = [0] * len(LATENCY_BUCKETS_MS)
        self.latency_count = 0
        self.latency_sum_s = 0.0

    def call_started(self, transport: str) -> None:
        """A call was answered."""
        self.calls_live += 1
        self.calls_total[transport] += 1

    def call_ended(self) -> None:
        """A call is over."""
        self.calls_live = max(0, self.calls_live - 1)

    def key_pressed(self, source: str, transport: str) -> None:
        """A key press reached a session."""
        self.dtmf_received[(source, transport)] += 1

    def delivered(self, result: DeliveryResult) -> None:
        """One delivery to the assistant ended (any outcome)."""
        self.deliveries[result.outcome.value] += 1
        if result.event_type is None:
            return  # a pushed WebSocket message answered no request: it has no latency
        self.latency_count += 1
        self.latency_sum_s += result.latency_ms / 1000
        for index, bound in enumerate(LATENCY_BUCKETS_MS):
            if result.latency_ms <= bound:
                self.latency_buckets[index] += 1

    def render(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        lines = [
            "# HELP voxflow_calls_live Calls in progress.",
            "# TYPE voxflow_calls_live gauge",
            f"voxflow_calls_live {self.calls_live}",
            "# HELP voxflow_calls_total Calls answered, by line.",
            "# TYPE voxflow_calls_total counter",
            *(f'voxflow_calls_total{{line="{_label(k)}"}} {v}'
              for k, v in sorted(self.calls_total.items())),
            "# HELP voxflow_dtmf_received_total Key presses handed to sessions, by source.",
            "# TYPE voxflow_dtmf_received_total counter",
            *(f'voxflow_dtmf_received_total{{source="{_label(s)}",line="{_label(t)}"}} {v}'
              for (s, t), v in sorted(self.dtmf_received.items())),
            "# HELP voxflow_deliveries_total Events handed to the assistant, by outcome.",
            "# TYPE voxflow_deliveries_total counter",
            *(f'voxflow_deliveries_total{{outcome="{_label(k)}"}} {v}'
              for k, v in sorted(self.deliveries.items())),
            "# HELP voxflow_delivery_latency_seconds Time from handing an event over to the"
            " assistant's answer.",
            "# TYPE voxflow_delivery_latency_seconds histogram",
        ]
        for bound, count in zip(LATENCY_BUCKETS_MS, self.latency_buckets, strict=True):
            le = f"{bound / 1000:g}"
            lines.append(f'voxflow_delivery_latency_seconds_bucket{{le="{le}"}} {count}')
        lines += [
            f'voxflow_delivery_latency_seconds_bucket{{le="+Inf"}} {self.latency_count}',
            f"voxflow_delivery_latency_seconds_sum {self.latency_sum_s:.6f}",
            f"voxflow_delivery_latency_seconds_count {self.latency_count}",
        ]
        return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class MeteredRecorder(CallRecorder):
    """A :class:`CallRecorder` that also counts what it records into :class:`EngineMetrics`.

    The recorder already sees every call start and end, key press and delivery, so counting
    here keeps the runner and the line free of metrics code.
    """

    def __init__(self, store: CallRecordStore | None, transport: str,
                 metrics: EngineMetrics) -> None:
        super().__init__(store, transport)
        self.metrics = metrics

    def call_started(self, session: Session, sip_call_id: str) -> None:
        """Count the call, then record it."""
        self.metrics.call_started(self.transport)
        super().call_started(session, sip_call_id)

    def line(self, session_id: str, what: str, payload: Mapping[str, Any] | None = None) -> None:
        """Count key presses, then record the line fact."""
        if what == "key" and payload is not None:
            self.metrics.key_pressed(str(payload.get("source", "")), self.transport)
        super().line(session_id, what, payload)

    def delivery(self, result: DeliveryResult) -> None:
        """Count the delivery and its latency, then record it."""
        self.metrics.delivered(result)
        super().delivery(result)

    def call_ended(self, session_id: str, reason: str) -> None:
        """Count the end, then record it."""
        self.metrics.call_ended()
        super().call_ended(session_id, reason)


# -- JSON views -----------------------------------------------------------------------------------


def summary_json(call: CallSummary) -> dict[str, Any]:
    """A call-list row."""
    row = asdict(call)
    row["duration_s"] = call.duration_s
    return row


def timeline_json(entries: Sequence[RecordEntry]) -> list[dict[str, Any]]:
    """Timeline entries with ``offset_s`` from the call's first entry."""
    origin = entries[0].monotonic if entries else 0.0
    rows = []
    for entry in entries:
        row = asdict(entry)
        row["offset_s"] = round(entry.monotonic - origin, 4)
        rows.append(row)
    return rows


def _live_json(app: VoxflowApp) -> list[dict[str, Any]]:
    rows = []
    for session_id, runner in list(app.calls.items()):
        session = runner.session.session
        rows.append({
            "call_id": session_id,
            "from_number": session.from_phone_number,
            "to_number": session.to_phone_number,
            "direction": session.direction.value,
            "simulated": session_id in app.simulated,
        })
    return rows


# -- the Starlette app ----------------------------------------------------------------------------


class _BearerToken:
    """ASGI middleware: the API and metrics need the admin token; health and the page do not."""

    _OPEN = ("/health",)

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        guarded = path.startswith("/api/") or path == "/metrics"
        if self.expected is None or scope["type"] != "http" or not guarded:
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers", [])).get(b"authorization", b"")
        if not hmac.compare_digest(given, self.expected):
            response = JSONResponse(
                {"error": "missing or wrong admin token: send 'Authorization: Bearer <token>'"},
                status_code=401, headers={"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_admin_app(app: VoxflowApp, *, token: str | None = None) -> Starlette:
    """The admin ASGI app for one running engine."""
    records = app.records

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "live_calls": len(app.calls)})

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(app.metrics.render(),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")

    async def list_calls(request: Request) -> Response:
        limit = _int_param(request, "limit", _RECENT_LIMIT)
        recent = await asyncio.to_thread(records.recent_calls, limit)
        return JSONResponse({"live": _live_json(app),
                             "recent": [summary_json(call) for call in recent]})

    async def show_call(request: Request) -> Response:
        call_id = request.path_params["call_id"]
        call, entries = await asyncio.to_thread(_read_call, records, call_id)
        live = app.calls.get(call_id)
        if call is None and live is None:
            return _error(404, f"no call {call_id!r} (neither live nor in the call records)")
        summary = summary_json(call) if call is not None else None
        return JSONResponse({
            "call_id": call_id,
            "live": live is not None,
            "simulated": call_id in app.simulated,
            "call": summary,
            "timeline": timeline_json(entries),
        })

    async def start_simulated(request: Request) -> Response:
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        caller, callee = body.get("caller"), body.get("callee")
        if not all(value is None or isinstance(value, str) for value in (caller, callee)):
            return _error(400, "caller and callee must be strings (phone numbers) when given")
        session_id = app.start_simulated_call(caller=caller, callee=callee)
        return JSONResponse({"call_id": session_id}, status_code=201)

    async def inject_dtmf(request: Request) -> Response:
        call_id = request.path_params["call_id"]
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        digit = body.get("digit")
        if call_id not in app.calls:
            return _error(404, f"no live call {call_id!r}")
        call = app.simulated.get(call_id)
        if call is None:
            return _error(409, f"call {call_id!r} is a phone call: keys can only be injected "
                               "into simulated calls")
        if not isinstance(digit, str) or digit not in KEYPAD:
            return _error(400, f'key {digit!r}: body must be {{"digit": "<one of 0-9, *, #>"}}')
        try:
            call.press(digit, INJECTED_KEY_SOURCE)
        except SipStateError as exc:  # the call ended since the check above
            return _error(409, str(exc))
        return JSONResponse({"call_id": call_id, "digit": digit}, status_code=202)

    async def hangup(request: Request) -> Response:
        call_id = request.path_params["call_id"]
        runner = app.calls.get(call_id)
        if runner is None:
            return _error(404, f"no live call {call_id!r}")
        runner.hangup("hung up from the admin API")
        return JSONResponse({"call_id": call_id}, status_code=202)

    async def place_call(request: Request) -> Response:
        accepted = [f"Bearer {t}".encode() for t in (token, app.settings.api_token) if t]
        given = request.headers.get("authorization", "").encode()
        if not accepted:
            return _error(403, "outbound calls are off: configure admin_token or api_token")
        # Every configured token is compared, so the answer time does not tell which one matched.
        if not sum(hmac.compare_digest(given, expected) for expected in accepted):
            return JSONResponse({"error": "missing or wrong token: send 'Authorization: "
                                          "Bearer <token>'"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        flow_id = request.path_params["flow_id"]
        if flow_id != app.flow_id:
            return _error(404, f"unknown AI flow {flow_id!r}")
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        try:
            wanted = parse_call_request(body)
            placed = app.dial(wanted.to_phone_number)
        except NoRouteError as exc:
            return _error(400, f"the AI flow has no phone number/trunk to call from: {exc}")
        except (ValueError, VoxflowError) as exc:
            return _error(400, str(exc))
        return JSONResponse(placed.as_json(), status_code=201)

    async def dashboard(request: Request) -> Response:
        return FileResponse(DASHBOARD_DIR / "index.html")

    routes = [
        Route("/", dashboard),
        Route("/health", health),
        Route("/metrics", metrics),
        Route("/api/calls", list_calls),
        Route("/api/calls/{call_id}", show_call),
        Route("/api/simulated-calls", start_simulated, methods=["POST"]),
        Route("/api/calls/{call_id}/dtmf", inject_dtmf, methods=["POST"]),
        Route("/api/calls/{call_id}/hangup", hangup, methods=["POST"]),
        Route("/v3/ai-flows/{flow_id}/call", place_call, methods=["POST"]),
        Mount("/static", StaticFiles(directory=DASHBOARD_DIR), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(_BearerToken, token=token)])


def _read_call(store: CallRecordStore, call_id: str) -> tuple[CallSummary | None,
                                                              list[RecordEntry]]:
    call = store.call(call_id)
    return call, store.timeline(call_id) if call is not None else []


def _int_param(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name, "")
    return max(1, min(int(value), 1000)) if value.isdigit() else default


async def _json_body(request: Request) -> dict[str, Any] | Response:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "the request body is not valid JSON")
    if not isinstance(body, dict):
        return _error(400, "the request body must be a JSON object")
    return body


# -- serving ---------------------------------------------------------------------------------------


class AdminServer(EmbeddedServer):
    """The admin app under uvicorn on ``host:port`` (0 = any free port) in the running loop."""

    def __init__(self, app: VoxflowApp, host: str, port: int, *,
                 token: str | None = None) -> None:
        super().__init__(create_admin_app(app, token=token), host, port,
                         setting="admin_listen", label="admin server")

