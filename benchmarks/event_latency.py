"""Key press to webhook: how long from the caller's first RFC 4733 packet to the assistant's
HTTP request, for 1, 50 and 200 concurrent calls, and the engine's CPU per call.

The engine runs as ``voxflow serve`` in its own process (so its CPU is measured alone, from
/proc). This process runs the callers (:mod:`sip_caller`, real UDP) and a minimal threaded HTTP
webhook that notes when each request arrives and answers 204. Both clocks are this machine's
wall clock. Run: ``.venv/bin/python benchmarks/event_latency.py [--calls 1 50 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sip_caller import HOST, CallerFleet

KEYS = "0123456789*#"
PRESSES_PER_CALL = 6
PRESS_GAP_S = 0.4
RAMP = 25
READY = re.compile(r"voxflow ready: sip:\S+@[\d.]+:(\d+)")


@dataclass
class Arrival:
    caller: str
    digit: str
    at: float


def serve_webhook(port: int, log_path: str) -> None:
    """The webhook process: note each dtmf_received (caller, digit, arrival), answer 204.

    A raw ASGI app under uvicorn in a process of its own, so neither the callers nor the engine
    compete with it for a core's interpreter lock.
    """
    import uvicorn

    log = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the process

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        arrived = time.time()
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        event = json.loads(body)
        if event.get("type") == "dtmf_received":
            caller = event["session"]["from_phone_number"]
            log.write(f"{caller} {event['digit']} {arrived!r}\n")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    uvicorn.run(app, host=HOST, port=port, log_level="warning", lifespan="off")


def start_webhook(log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, __file__, "--serve-webhook", str(port),
                                str(log_path)])
    for _ in range(200):
        with socket.socket() as probe:
            if probe.connect_ex((HOST, port)) == 0:
                return process, f"http://{HOST}:{port}/"
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("webhook process did not start")


def read_arrivals(log_path: Path) -> list[Arrival]:
    arrivals = []
    for line in log_path.read_text().splitlines():
        caller, digit, at = line.split()
        arrivals.append(Arrival(caller, digit, float(at)))
    return arrivals


def free_udp_block(size: int) -> int:
    import socket

    for _ in range(500):
        base = random.randrange(20000, 60000 - size) & ~1
        sockets = []
        try:
            for port in range(base, base + size):
                probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(probe)
                probe.bind((HOST, port))
            return base
        except OSError:
            continue
        finally:
            for probe in sockets:
                probe.close()
    raise RuntimeError(f"no block of {size} free UDP ports")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_engine(webhook: str, calls: int, records: Path) -> tuple[subprocess.Popen[str], int]:
    rtp = free_udp_block(2 * calls + 20)
    engine = subprocess.Popen(
        [sys.executable, "-m", "voxflow.server.cli", "serve", "--webhook", webhook,
         "--sip-listen", f"{HOST}:0", "--rtp-ports", f"{rtp}-{rtp + 2 * calls + 19}",
         "--records", str(records), "--log-level", "WARNING"],
        stderr=subprocess.PIPE, text=True,
    )
    assert engine.stderr is not None
    for line in engine.stderr:
        if found := READY.search(line):
            # Keep reading, so a chatty engine never blocks on a full pipe.
            threading.Thread(target=engine.stderr.read, daemon=True).start()
            return engine, int(found.group(1))
    raise RuntimeError("voxflow serve exited before it was ready")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(calls: int, workdir: Path) -> dict[str, float]:
    arrivals_log = workdir / f"arrivals-{calls}.txt"
    arrivals_log.touch()
    webhook, webhook_url = start_webhook(arrivals_log)
    engine, port = start_engine(webhook_url, calls, workdir / f"calls-{calls}.sqlite3")
    fleet = await CallerFleet(free_udp_block(2 * calls + 2)).start()
    try:
        dialled = []
        for first in range(0, calls, RAMP):  # calls arrive in waves, as on a real trunk
            dialled += await asyncio.gather(*(
                fleet.dial(f"sip:0049211555@{HOST}:{port}", f"4930{index:06d}")
                for index in range(first, min(calls, first + RAMP))
            ))
        await asyncio.sleep(0.5)
        cpu_before, wall_before = cpu_seconds(engine.pid), time.monotonic()
        rng = random.Random(calls)
        # Callers are not synchronised: each round, every call presses at its own moment.
        for _ in range(PRESSES_PER_CALL):
            offsets = sorted(((rng.uniform(0, PRESS_GAP_S), call) for call in dialled),
                             key=lambda pair: pair[0])
            started = time.monotonic()
            for offset, call in offsets:
                await asyncio.sleep(max(0.0, started + offset - time.monotonic()))
                call.press(rng.choice(KEYS), duration_ms=80)
            await asyncio.sleep(max(0.0, started + PRESS_GAP_S - time.monotonic()))
        await asyncio.sleep(0.5)
        cpu = cpu_seconds(engine.pid) - cpu_before
        wall = time.monotonic() - wall_before
    finally:
        await fleet.close()
        engine.terminate()
        engine.wait(20)
        webhook.terminate()
        webhook.wait(10)
    latencies: list[float] = []
    by_caller: dict[str, list[Arrival]] = {}
    for arrival in read_arrivals(arrivals_log):
        by_caller.setdefault(arrival.caller, []).append(arrival)
    lost = 0
    for call in dialled:
        arrivals = by_caller.get(f"+{call.from_user}", [])
        lost += len(call.keys) - len(arrivals)
        for key, arrival in zip(call.keys, arrivals, strict=False):
            if key.sent_at is not None and key.key == arrival.digit:
                latencies.append((arrival.at - key.sent_at) * 1000)
    return {
        "calls": calls, "presses": calls * PRESSES_PER_CALL, "lost": lost,
        "median": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99),
        "max": max(latencies, default=float("nan")),
        "cpu_call": 100 * cpu / wall / calls, "cpu_total": 100 * cpu / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[1, 50, 200])
    parser.add_argument("--serve-webhook", nargs=2, metavar=("PORT", "LOG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_webhook:
        serve_webhook(int(args.serve_webhook[0]), args.serve_webhook[1])
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for calls in args.calls:
            rows.append(asyncio.run(run(calls, Path(tmp))))
    print(f"key press (first RFC 4733 packet sent) -> webhook request arrives; "
          f"{PRESSES_PER_CALL} presses per call, {os.cpu_count()} CPUs")
    print(f"{'calls':>6} {'presses':>8} {'lost':>5} {'median ms':>10} {'p99 ms':>8} "
          f"{'max ms':>8} {'engine CPU/call':>16} {'engine CPU':>11}")
    for row in rows:
        print(f"{row['calls']:>6} {row['presses']:>8} {row['lost']:>5} {row['median']:>10.1f} "
              f"{row['p99']:>8.1f} {row['max']:>8.1f} {row['cpu_call']:>15.2f}% "
              f"{row['cpu_total']:>10.1f}%")


if __name__ == "__main__":
    main()
