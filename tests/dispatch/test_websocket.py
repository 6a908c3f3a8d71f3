import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from assistant_peers import free_port, session_start, user_speak
from websockets.asyncio.server import Server, ServerConnection, serve

from voxflow.dispatch.base import PushDispatcher
from voxflow.dispatch.result import DeliveryOutcome, DeliveryResult
from voxflow.dispatch.websocket import WebSocketDispatcher
from voxflow.errors import ConfigError
from voxflow.protocol import SpeakAction


@dataclass
class WsAssistant:
    """A real WebSocket assistant server: records frames per connection, answers by script."""

    drop_after_first_event: bool = False
    connections: list[list[dict[str, object]]] = field(default_factory=list)
    tokens: list[str | None] = field(default_factory=list)
    received: asyncio.Queue[dict[str, object]] = field(default_factory=asyncio.Queue)

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.tokens.append(ws.request.headers.get("X-API-TOKEN"))
        frames: list[dict[str, object]] = []
        self.connections.append(frames)
        async for message in ws:
            event = json.loads(message)
            frames.append(event)
            await self.received.put(event)
            session_id = event["session"]["id"]
            if self.drop_after_first_event and len(self.connections) == 1:
                await ws.close()
                return
            if event["type"] == "session_start":
                await ws.send(json.dumps({"status": "hello"}))  # not an action: ignored
                await asyncio.sleep(0.05)  # answer later, on the assistant's own time
                await ws.send(
                    json.dumps({"type": "speak", "session_id": session_id, "text": "welcome"})
                )
            elif event.get("text") == "garbage":
                await ws.send("{not json")
            elif event.get("text") == "foreign":
                await ws.send(json.dumps({"type": "hangup", "session_id": "someone-else"}))


@dataclass
class Pushed:
    results: asyncio.Queue[DeliveryResult] = field(default_factory=asyncio.Queue)

    async def sink(self, result: DeliveryResult) -> None:
        await self.results.put(result)

    async def next(self) -> DeliveryResult:
        return await asyncio.wait_for(self.results.get(), 5)


@pytest.fixture
async def assistant() -> AsyncIterator[tuple[WsAssistant, str]]:
    peer = WsAssistant()
    server: Server = await serve(peer.handler, "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    yield peer, f"ws://127.0.0.1:{port}/assistant"
    server.close()
    await server.wait_closed()


async def test_actions_are_pushed_asynchronously(assistant: tuple[WsAssistant, str]) -> None:
    peer, url = assistant
    pushed = Pushed()
    dispatcher = WebSocketDispatcher(url, api_token="t0ken", on_result=pushed.sink)
    assert isinstance(dispatcher, PushDispatcher)
    first = await dispatcher.deliver(session_start("w1"))
    # The very first event waits for the connection: it is buffered, then sent.
    assert first.outcome in (DeliveryOutcome.BUFFERED, DeliveryOutcome.SENT)
    assert (await asyncio.wait_for(peer.received.get(), 5))["type"] == "session_start"
    result = await pushed.next()
    assert result.outcome is DeliveryOutcome.OK
    assert result.actions == [SpeakAction(session_id="w1", text="welcome")]
    assert result.event_type is None
    assert peer.tokens == ["t0ken"]
    assert dispatcher.connected("w1")
    second = await dispatcher.deliver(user_speak("w1", "garbage"))
    assert second.outcome is DeliveryOutcome.SENT
    assert (await pushed.next()).outcome is DeliveryOutcome.INVALID_JSON
    await dispatcher.deliver(user_speak("w1", "foreign"))
    assert (await pushed.next()).outcome is DeliveryOutcome.WRONG_SESSION
    await dispatcher.aclose()
    assert not dispatcher.connected("w1")
    assert pushed.results.empty()  # the {"status": "hello"} frame was ignored


async def test_drop_mid_call_reconnects_and_sends_buffer_in_order(
    assistant: tuple[WsAssistant, str],
) -> None:
    peer, url = assistant
    peer.drop_after_first_event = True
    pushed = Pushed()
    dispatcher = WebSocketDispatcher(url, on_result=pushed.sink, reconnect_initial_s=0.05)
    await dispatcher.deliver(user_speak("w2", "one"))
    await asyncio.wait_for(peer.received.get(), 5)
    for text in ("two", "three", "four"):
        await dispatcher.deliver(user_speak("w2", text))
    texts = [(await asyncio.wait_for(peer.received.get(), 5))["text"] for _ in range(3)]
    assert texts == ["two", "three", "four"]
    assert len(peer.connections) == 2
    assert [frame["text"] for frame in peer.connections[1]] == ["two", "three", "four"]
    await dispatcher.close_session("w2")


async def test_unreachable_assistant_reports_connect_errors() -> None:
    pushed = Pushed()
    url = f"ws://127.0.0.1:{free_port()}/"
    dispatcher = WebSocketDispatcher(url, on_result=pushed.sink, reconnect_initial_s=0.01)
    result = await dispatcher.deliver(session_start("w3"))
    assert result.outcome is DeliveryOutcome.BUFFERED
    failures = [await pushed.next() for _ in range(3)]
    assert {f.outcome for f in failures} == {DeliveryOutcome.CONNECT_ERROR}
    assert [f.attempts for f in failures] == [1, 2, 3]
    assert url in (failures[0].error or "")
    await dispatcher.close_session("w3")


def test_url_scheme_is_checked() -> None:
    with pytest.raises(ConfigError, match="ws://"):
        WebSocketDispatcher("http://example.invalid/")
