"""Outbound calls against a real local server that records what it was sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from voxflow.errors import OutboundCallError
from voxflow.sdk import Assistant, call, call_sync


class Recorder:
    """A stand-in outbound-call API: known flow ``flow-1``; ``flow-nonumber`` has no number."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    async def endpoint(self, request: Request) -> Response:
        flow = request.path_params["flow"]
        self.requests.append({"flow": flow, "headers": dict(request.headers),
                              "json": await request.json()})
        if flow == "flow-nonumber":
            return JSONResponse({"message": "AI flow has no phone number"}, status_code=400)
        if flow != "flow-1":
            return Response("not found", status_code=404)
        return JSONResponse({"sessionId": "sess-42"}, status_code=201)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v3/ai-flows/{flow}/call", self.endpoint,
                                       methods=["POST"])])


@pytest.fixture(scope="module")
def api(asgi_server: Callable[[Any], str]) -> tuple[str, Recorder]:
    recorder = Recorder()
    return asgi_server(recorder.app()), recorder


async def test_call_posts_the_documented_request(api: tuple[str, Recorder]) -> None:
    base_url, recorder = api
    result = await call("flow-1", "+4915790000687", "e2", "tok-123", base_url=base_url)
    assert (result.status, result.session_id) == (201, "sess-42")
    sent = recorder.requests[-1]
    assert sent["flow"] == "flow-1"
    assert sent["headers"]["authorization"] == "Bearer tok-123"
    assert sent["headers"]["content-type"] == "application/json"
    assert sent["json"] == {"toPhoneNumber": "+4915790000687", "billingDevice": "e2"}


def test_sync_variant_and_assistant_method(api: tuple[str, Recorder]) -> None:
    base_url, recorder = api
    assert call_sync("flow-1", "+49211100200", "e2", "tok", base_url=base_url).session_id == (
        "sess-42")
    assistant = Assistant(token="tok-9", base_url=base_url + "/")
    assert assistant.call_sync("flow-1", "+49211100201", "e3").status == 201
    assert recorder.requests[-1]["headers"]["authorization"] == "Bearer tok-9"


async def test_assistant_call_is_async(api: tuple[str, Recorder]) -> None:
    base_url, _ = api
    placed = await Assistant(token="t", base_url=base_url).call("flow-1", "+491", "e2")
    assert placed.status == 201


@pytest.mark.parametrize(("flow", "status", "words"), [
    ("flow-nonumber", 400, "no phone number"),
    ("flow-unknown", 404, "unknown AI flow id"),
])
async def test_refusals_name_status_and_body(
    api: tuple[str, Recorder], flow: str, status: int, words: str
) -> None:
    base_url, _ = api
    with pytest.raises(OutboundCallError, match=words) as raised:
        await call(flow, "+4915790000687", "e2", "tok", base_url=base_url)
    assert raised.value.status == status
    assert str(status) in str(raised.value)


def test_unreachable_service_is_an_outbound_call_error() -> None:
    with pytest.raises(OutboundCallError, match="ConnectError") as raised:
        call_sync("flow-1", "+491", "e2", "tok", base_url="http://127.0.0.1:9", timeout_s=2)
    assert raised.value.status is None


def test_missing_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="billing_device"):
        call_sync("flow-1", "+491", " ", "tok")
    with pytest.raises(ValueError, match="token"):
        Assistant().call_sync("flow-1", "+491", "e2")
