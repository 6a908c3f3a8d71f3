"""Key press to webhook: how long from the caller's first RFC 4733 packet to the assistant's
HTTP request, for 1, 50 and 200 concurrent calls, and the engine's CPU per call.

Three kinds of process over real UDP/TCP on 127.0.0.1: the engine as ``voxflow serve`` (so its
CPU is measured alone, from /proc), a minimal uvicorn webhook that notes when each request
arrives and answers 204, and ``--fleet-procs`` caller processes (:mod:`sip_caller`, pre-built
RTP, paced 20 ms ticks) that press keys on a schedule fixed in advance. All clocks are this
machine's wall clock.

The table says, besides latency: presses scheduled, sent by the callers (first packet out),
delivered (exactly one ``dtmf_received`` of that key), lost and duplicated; how late the callers
themselves were (their own tick lateness and press send lag: if these are large, the fleet, not
the engine, is the bottleneck); the engine's media tick overruns (ticks started over one 20 ms
interval late, whole engine life) and datagrams the kernel dropped on the engine's sockets
(/proc/net/udp ``drops``). Run: ``.venv/bin/python benchmarks/event_latency.py [--calls 1 50
200] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sip_caller import HOST, run_worker

KEYS = "0123456789*#"
PRESSES_PER_CALL = 6  # --presses changes it (longer runs for profiling)
PRESS_GAP_S = 0.4
PRESS_MS = 80.0
READY = re.compile(r"voxflow ready: sip:\S+@[\d.]+:(\d+)")
TICK_STATS = re.compile(r"media tick: (\d+) ticks, (\d+) started over one tick late, (\d+) "
                        r"skipped, worst ([\d.]+) ms late")


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


def start_engine(webhook: str, ports: range, records: Path
                 ) -> tuple[subprocess.Popen[str], int, range, list[str]]:
    engine = subprocess.Popen(
        [sys.executable, "-m", "voxflow.server.cli", "serve", "--webhook", webhook,
         "--sip-listen", f"{HOST}:0", "--rtp-ports", f"{ports.start}-{ports.stop - 1}",
         "--records", str(records), "--log-level", "WARNING"],
        stderr=subprocess.PIPE, text=True,
    )
    assert engine.stderr is not None
    stderr = engine.stderr
    lines: list[str] = []
    for line in stderr:
        if found := READY.search(line):
            # Keep reading, so a chatty engine never blocks on a full pipe.
            threading.Thread(target=lambda: lines.extend(stderr), daemon=True).start()
            return engine, int(found.group(1)), ports, lines
    raise RuntimeError("voxflow serve exited before it was ready")


def socket_drops(ports: set[int]) -> int:
    """Datagrams the kernel dropped (receive buffer full) on UDP sockets bound to ``ports``."""
    drops = 0
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) in ports:
            drops += int(fields[-1])
    return drops


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def fleet_ports(calls: int, procs: int) -> int:
    """How many UDP ports :func:`start_fleet` may use from its block."""
    return procs * 2 * (calls // procs + 20)


def start_fleet(calls: int, procs: int, target: str, block: int
                ) -> tuple[list[multiprocessing.process.BaseProcess], list[Connection]]:
    context = multiprocessing.get_context("spawn")
    workers: list[multiprocessing.process.BaseProcess] = []
    pipes: list[Connection] = []
    users = [f"4930{index:06d}" for index in range(calls)]
    stride = fleet_ports(calls, procs) // procs
    for index in range(min(procs, calls)):
        mine, theirs = context.Pipe()
        share = users[index::procs]
        worker = context.Process(target=run_worker, daemon=True,
                                 args=(theirs, block + index * stride, target, share))
        worker.start()
        workers.append(worker)
        pipes.append(mine)
    return workers, pipes


def ask(pipes: list[Connection], command: str, argument: Any = None, timeout: float = 60
        ) -> list[Any]:
    for pipe in pipes:
        if command:
            pipe.send((command, argument))
    answers = []
    for pipe in pipes:
        if not pipe.poll(timeout):
            raise RuntimeError(f"caller process did not answer {command or 'ready'!r}")
        answers.append(pipe.recv()[1])
    return answers


def match(sent: list[tuple[str, float | None, float | None]], arrivals: list[Arrival]
          ) -> tuple[list[float], int, int, int]:
    """Pair one caller's sent presses with its webhook arrivals, in order.

    An arrival reports the first not yet reported press of its key that had been sent before
    it arrived (presses skipped over are lost). One that fits no press is a duplicate when it
    repeats the key matched last, else unexpected. Returns (latencies ms, delivered,
    duplicated, unexpected).
    """
    latencies: list[float] = []
    delivered = duplicated = unexpected = 0
    position = 0
    previous: str | None = None
    for arrival in arrivals:
        found = next((index for index in range(position, len(sent))
                      if sent[index][0] == arrival.digit
                      and (sent[index][2] or float("inf")) <= arrival.at), None)
        if found is not None:
            sent_at = sent[found][2]
            assert sent_at is not None
            latencies.append((arrival.at - sent_at) * 1000)
            delivered += 1
            previous = arrival.digit
            position = found + 1
        elif arrival.digit == previous:
            duplicated += 1
        else:
            unexpected += 1
    return latencies, delivered, duplicated, unexpected


def run(calls: int, procs: int, presses: int, workdir: Path,
        engine_log_path: Path | None = None) -> dict[str, float]:
    arrivals_log = workdir / f"arrivals-{calls}.txt"
    arrivals_log.write_text("")
    webhook, webhook_url = start_webhook(arrivals_log)
    # One block for both sides, so the callers never take ports of the engine's RTP range.
    engine_size = 2 * calls + 20
    block = free_udp_block(engine_size + fleet_ports(calls, procs))
    engine, port, engine_ports, engine_log = start_engine(
        webhook_url, range(block, block + engine_size),
        workdir / f"calls-{calls}-{time.time()}.sqlite3")
    workers, pipes = start_fleet(calls, procs, f"sip:0049211555@{HOST}:{port}",
                                 block + engine_size)
    watched = {port, *engine_ports}
    try:
        counts = ask(pipes, "", timeout=120)
        if any(count is None for count in counts) or sum(counts) != calls:
            raise RuntimeError(f"not all {calls} calls were answered: {counts}")
        time.sleep(0.5)
        rng = random.Random(calls)
        users = [f"4930{index:06d}" for index in range(calls)]
        start = time.time() + 0.5
        # Callers are not synchronised: each round, every call presses at its own moment.
        schedule = [
            (start + round_ * PRESS_GAP_S + rng.uniform(0, PRESS_GAP_S), user, rng.choice(KEYS),
             PRESS_MS)
            for round_ in range(presses) for user in users
        ]
        for index, pipe in enumerate(pipes):
            share = set(users[index::procs])
            pipe.send(("presses", [item for item in schedule if item[1] in share]))
        drops_before = socket_drops(watched)
        cpu_before, wall_before = cpu_seconds(engine.pid), time.monotonic()
        hook_before = cpu_seconds(webhook.pid)
        fleet_before = sum(cpu_seconds(worker.pid or 0) for worker in workers)
        time.sleep(max(0.0, start + presses * PRESS_GAP_S + 0.5 - time.time()))
        cpu = cpu_seconds(engine.pid) - cpu_before
        hook_cpu = cpu_seconds(webhook.pid) - hook_before
        fleet_cpu = sum(cpu_seconds(worker.pid or 0) for worker in workers) - fleet_before
        wall = time.monotonic() - wall_before
        drops = socket_drops(watched) - drops_before
        reports = ask(pipes, "report")
        ask(pipes, "close")
    finally:
        for worker in workers:
            worker.join(10)
            if worker.is_alive():
                worker.kill()
        engine.terminate()
        engine.wait(30)
        webhook.terminate()
        webhook.wait(10)
    time.sleep(0.2)  # the engine's last stderr lines
    if engine_log_path is not None:
        with engine_log_path.open("a") as out:
            out.write(f"--- {calls} calls, presses from {start:.3f}\n")
            out.writelines(engine_log)
    ticks = [TICK_STATS.search(line) for line in engine_log]
    tick = next((found for found in ticks if found), None)
    by_caller: dict[str, list[Arrival]] = {}
    for arrival in read_arrivals(arrivals_log):
        by_caller.setdefault(arrival.caller, []).append(arrival)
    latencies: list[float] = []
    sent = delivered = duplicated = unexpected = 0
    send_lag: list[float] = []
    for report in reports:
        for user, keys in report["keys"].items():
            sent += sum(1 for _, _, sent_at in keys if sent_at is not None)
            send_lag += [(sent_at - due) * 1000 for _, due, sent_at in keys
                         if sent_at is not None and due is not None]
            got = match(keys, by_caller.get(f"+{user}", []))
            latencies += got[0]
            delivered += got[1]
            duplicated += got[2]
            unexpected += got[3]
    fleet_late = [late for report in reports for late in report["late_ms"]]
    return {
        "calls": calls, "presses": calls * presses, "sent": sent,
        "delivered": delivered, "lost": calls * presses - delivered,
        "dup": duplicated, "odd": unexpected,
        "median": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99),
        "max": max(latencies, default=float("nan")),
        "cpu_call": 100 * cpu / wall / calls, "cpu_total": 100 * cpu / wall,
        "cpu_hook": 100 * hook_cpu / wall, "cpu_fleet": 100 * fleet_cpu / wall,
        "fleet_p99": percentile(fleet_late, 0.99), "fleet_max": max(fleet_late, default=0.0),
        "fleet_skipped": sum(report["skipped"] for report in reports),
        "send_lag_max": max(send_lag, default=float("nan")),
        # The engine logs its tick summary at WARNING only when a tick ran over.
        "overruns": int(tick.group(2)) if tick else 0,
        "tick_worst": float(tick.group(4)) if tick else float("nan"),
        "drops": drops,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[1, 50, 200])
    parser.add_argument("--repeat", type=int, default=1, help="runs per number of calls")
    parser.add_argument("--presses", type=int, default=PRESSES_PER_CALL, help="per call")
    parser.add_argument("--fleet-procs", type=int, default=2, help="caller processes")
    parser.add_argument("--engine-log", type=Path, help="append the engine's stderr here")
    parser.add_argument("--serve-webhook", nargs=2, metavar=("PORT", "LOG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_webhook:
        serve_webhook(int(args.serve_webhook[0]), args.serve_webhook[1])
        return
    rows = []
    loads = []
    with tempfile.TemporaryDirectory() as tmp:
        for calls in args.calls:
            for _ in range(args.repeat):
                loads.append(os.getloadavg()[0])
                rows.append(run(calls, args.fleet_procs, args.presses, Path(tmp), args.engine_log))
    print(f"key press (first RFC 4733 packet sent) -> webhook request arrives; "
          f"{args.presses} presses per call, {os.cpu_count()} CPUs, "
          f"{args.fleet_procs} caller processes, 1-min load before runs "
          f"{min(loads):.1f}-{max(loads):.1f}")
    print(f"{'calls':>5} {'presses':>7} {'sent':>5} {'deliv':>5} {'lost':>4} {'dup':>3} {'odd':>3} "
          f"{'median':>7} {'p99':>7} {'max':>7} {'CPU/call':>8} {'CPU':>6} "
          f"{'fleet p99':>9} {'fleet max':>9} {'skip':>4} {'send lag':>8} "
          f"{'overruns':>8} {'worst':>7} {'drops':>5}")
    for r in rows:
        print(f"{r['calls']:>5} {r['presses']:>7} {r['sent']:>5} {r['delivered']:>5} "
              f"{r['lost']:>4} {r['dup']:>3} {r['odd']:>3} {r['median']:>7.1f} {r['p99']:>7.1f} "
              f"{r['max']:>7.1f} {r['cpu_call']:>7.2f}% {r['cpu_total']:>5.1f}% "
              f"{r['cpu_hook']:>4.0f}% {r['cpu_fleet']:>4.0f}% "
              f"{r['fleet_p99']:>9.1f} {r['fleet_max']:>9.1f} {r['fleet_skipped']:>4} "
              f"{r['send_lag_max']:>8.1f} {r['overruns']:>8} "
              f"{'<20' if r['tick_worst'] != r['tick_worst'] else round(r['tick_worst'], 1):>7} "
              f"{r['drops']:>5}")
    print("dup: a key reported again; odd: a key no press matches; latencies in ms; "
          "CPU: the engine's, hook/fleet: the webhook's and all callers' (% of one core); "
          "fleet p99/max: how late the callers' own 20 ms ticks ran; send lag: "
          "worst delay from a press's due time to its first packet (includes up to one tick; "
          "presses queued behind the same call's previous press left out); "
          "overruns: engine media ticks started over 20 ms late (whole run, incl. call set-up); "
          "drops: datagrams the kernel dropped on the engine's sockets during the presses")


if __name__ == "__main__":
    main()
