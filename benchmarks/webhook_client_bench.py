"""Webhook HTTP clients compared: client CPU per POST and requests per second.

    .venv/bin/python benchmarks/webhook_client_bench.py [--requests N] [--rounds R]

A Starlette app under uvicorn, in a process of its own, answers every POST with a small JSON
action (what an assistant sends back). Each client POSTs a ``dtmf_received``-sized JSON body
over keep-alive connections on 127.0.0.1, configured as the webhook dispatcher needs it (no
redirects, a response size cap enforced while reading, a total timeout), with 1 and with 8
connections (8 workers, each POSTing in a loop). "CPU" is the client process's
``time.process_time`` divided by the number of requests, so the server's work is not in it;
requests/s is wall clock, and with 8 connections depends on the server too. Each cell is the
best of ``--rounds`` rounds (the least disturbed by other load on the machine).

Rows: httpx (``AsyncClient``), aiohttp (``ClientSession`` + ``TCPConnector``), and
``WebhookDispatcher.deliver`` itself (encoding, headers, answer parsing included).

Measured on a 2-CPU machine shared with other work, best of 3 × 4000 (µs client CPU per request,
1 / 8 connections): httpx 803 / 782, aiohttp 168 / 113, and the asyncio-protocol + httptools
client the dispatcher used before aiohttp 53 / 31 (its dispatcher row: about 80-95). aiohttp is
about 3× that hand-written client and 5-7× cheaper than httpx, which is why the dispatcher uses it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
from rich.console import Console
from rich.table import Table

from voxflow.dispatch.webhook import WebhookDispatcher
from voxflow.protocol import parse_event

SESSION = {"id": "550e8400-e29b-41d4-a716-446655440000", "account_id": "a",
           "phone_number": "+1234567890", "direction": "inbound",
           "from_phone_number": "+9876543210", "to_phone_number": "+1234567890"}
EVENT = {"type": "dtmf_received", "digit": "9", "session": SESSION}
BODY = json.dumps(EVENT, separators=(",", ":")).encode()
ANSWER = json.dumps({"type": "speak", "session_id": SESSION["id"], "text": "You pressed 9"},
                    separators=(",", ":")).encode()
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
MAX_BYTES = 1 << 20
TIMEOUT_S = 5.0

Post = Callable[[], Awaitable[int]]


def serve(sock: socket.socket) -> None:
    """The assistant: every POST gets the same small JSON action."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def hook(request: Request) -> Response:
        await request.body()
        return Response(ANSWER, media_type="application/json")

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off",
                                  access_log=False)).run(sockets=[sock])


async def httpx_client(url: str, connections: int) -> tuple[Post, Callable[[], Awaitable[None]]]:
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(TIMEOUT_S),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        follow_redirects=False,
    )

    async def post() -> int:
        async with client.stream("POST", url, content=BODY, headers=HEADERS) as reply:
            size = 0
            async for chunk in reply.aiter_bytes():
                size += len(chunk)
                if size > MAX_BYTES:
                    raise RuntimeError("too large")
            return reply.status_code

    return post, client.aclose


async def aiohttp_client(url: str, connections: int) -> tuple[Post, Callable[[], Awaitable[None]]]:
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
        auto_decompress=False,
    )

    async def post() -> int:
        async with session.post(url, data=BODY, headers=HEADERS, allow_redirects=False) as reply:
            size = 0
            async for chunk in reply.content.iter_any():
                size += len(chunk)
                if size > MAX_BYTES:
                    raise RuntimeError("too large")
            return reply.status

    return post, session.close


async def dispatcher_client(
    url: str, connections: int
) -> tuple[Post, Callable[[], Awaitable[None]]]:
    dispatcher = WebhookDispatcher(url, timeout_s=TIMEOUT_S, max_connections=connections)
    event = parse_event(EVENT)

    async def post() -> int:
        result = await dispatcher.deliver(event)
        if result.failed:
            raise RuntimeError(result.error)
        return result.status or 0

    return post, dispatcher.aclose


CLIENTS: dict[str, Callable[[str, int], Awaitable[tuple[Post, Callable[[], Awaitable[None]]]]]] = {
    "httpx": httpx_client,
    "aiohttp": aiohttp_client,
    "WebhookDispatcher": dispatcher_client,
}


async def measure(make: Callable[[str, int], Awaitable[tuple[Post, Callable[[], Awaitable[None]]]]],
                  url: str, connections: int, requests: int) -> tuple[float, float]:
    """(µs client CPU per request, requests per second) for one round."""
    post, close = await make(url, connections)
    try:
        await asyncio.gather(*(post() for _ in range(connections * 20)))  # open and warm up
        per_worker = requests // connections

        async def worker() -> None:
            for _ in range(per_worker):
                if await post() != 200:
                    raise RuntimeError("unexpected status")

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await close()
    done = per_worker * connections
    return cpu / done * 1e6, done / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000, help="per round and cell")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(sock,), daemon=True)
    server.start()
    sock.close()
    try:
        cells: dict[tuple[str, int], tuple[float, float]] = {}
        for _ in range(args.rounds):
            for name, make in CLIENTS.items():
                for connections in (1, 8):
                    cpu_us, rate = asyncio.run(measure(make, url, connections, args.requests))
                    best = cells.get((name, connections))
                    cells[(name, connections)] = (
                        (cpu_us, rate) if best is None else (min(best[0], cpu_us),
                                                             max(best[1], rate)))
    finally:
        server.terminate()
        server.join()

    table = Table(title=f"webhook POST on 127.0.0.1, best of {args.rounds} × {args.requests}")
    for column in ("client", "µs CPU/req, 1 conn", "req/s, 1 conn",
                   "µs CPU/req, 8 conns", "req/s, 8 conns"):
        table.add_column(column, justify="left" if column == "client" else "right",
                         no_wrap=column == "client")
    for name in CLIENTS:
        one, eight = cells[(name, 1)], cells[(name, 8)]
        table.add_row(name, f"{one[0]:.0f}", f"{one[1]:.0f}", f"{eight[0]:.0f}", f"{eight[1]:.0f}")
    Console().print(table)


if __name__ == "__main__":
    main()
