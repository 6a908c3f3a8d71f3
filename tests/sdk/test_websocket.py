"""The WebSocket integration over real sockets: a `websockets` server and Starlette (uvicorn),
each driven by a real `websockets` client playing the engine's part."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from voxflow.protocol import DtmfReceivedEvent, parse_actions
from voxflow.sdk import Assistant, Menu, hangup, speak, transfer
from voxflow.sdk.websocket import websockets_handler

Wire = Callable[..., dict[str, Any]]
SID = "550e8400-e29b-41d4-a716-446655440000"


def ivr(api_token: str | None = None) -> Assistant:
    menu = Menu("Press 1 for sales.", {"1": transfer("+49211100200"),
                                       "#": [speak("Goodbye!"), hangup()]})

    def pressed(event: DtmfReceivedEvent) -> Any:
        if event.digit == "0":
            raise RuntimeError("broken key")
        return menu(event)

    return Assistant(api_token=api_token, on_session_start=menu, on_dtmf_received=pressed)


@pytest.fixture
async def websockets_url() -> AsyncIterator[str]:
    async with serve(websockets_handler(ivr()), "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


async def test_events_in_actions_out_in_order(websockets_url: str, wire_event: Wire) -> None:
    async with connect(websockets_url) as ws:
        await ws.send(json.dumps(wire_event("session_start")))
        menu = parse_actions(await ws.recv())
        assert [a.session_id for a in menu] == [SID]
        await ws.send(json.dumps(wire_event("dtmf_received", digit="#")))
        goodbye = json.loads(await ws.recv())
        assert [a["type"] for a in goodbye] == ["speak", "hangup"]
        assert all(a["session_id"] == SID for a in goodbye)


async def test_bad_frames_and_failing_handlers_are_ignored_not_fatal(
    websockets_url: str, wire_event: Wire
) -> None:
    async with connect(websockets_url) as ws:
        await ws.send('{"type": "connected"}')  # not an event
        await ws.send("not json at all")
        await ws.send(json.dumps(wire_event("dtmf_received", digit="0")))  # handler raises
        await ws.send(json.dumps(wire_event("assistant_speech_ended")))  # no action: no frame
        await ws.send(json.dumps(wire_event("dtmf_received", digit="1")))
        (action,) = parse_actions(await ws.recv())  # the first answer is the transfer
        assert action.type == "transfer"


async def test_token_is_checked_on_the_upgrade(wire_event: Wire) -> None:
    async with serve(websockets_handler(ivr(api_token="s3cret")), "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}"
        async with connect(url, additional_headers={"X-API-TOKEN": "s3cret"}) as ws:
            await ws.send(json.dumps(wire_event("session_start")))
            assert parse_actions(await ws.recv())
        async with connect(url) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
            assert "X-API-TOKEN" in closed.value.rcvd.reason


async def test_starlette_websocket_route(
    asgi_server: Callable[[Any], str], wire_event: Wire
) -> None:
    base = asgi_server(ivr().asgi_app("/hook", websocket_path="/ws"))
    async with connect(base.replace("http", "ws") + "/ws") as ws:
        await ws.send('{"hello": "world"}')
        await ws.send(json.dumps(wire_event("dtmf_received", digit="1")))
        (action,) = parse_actions(await ws.recv())
        assert action.type == "transfer" and action.session_id == SID
