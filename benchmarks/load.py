"""Load ramp: how many concurrent SIP calls this machine's engine carries with every key
delivered exactly once and p99 key press -> webhook latency under 100 ms.

Built on ``event_latency.py`` (same processes: ``voxflow serve``, a uvicorn webhook, caller
processes from :mod:`sip_caller` with RTP both ways and RFC 4733 keys, all on 127.0.0.1), run
once per step of the ramp. Added here: the engine's memory per call (peak RSS while the calls
are up minus its RSS when it became ready, divided by the number of calls; the first call's
one-off loads, e.g. the speech recogniser, are part of it) and the verdict per step.
Run: ``.venv/bin/python benchmarks/load.py [--calls 50 100 200 300 400] [--presses 8]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import event_latency

P99_LIMIT_MS = 100.0
DEFAULT_RAMP = [50, 100, 200, 300, 400]


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class RssWatch:
    """Samples the engine's RSS: at start (ready, no calls) and the peak until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.idle = rss_bytes(pid)
        self.peak = self.idle
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, rss_bytes(self.pid))

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join(1)


_watches: list[RssWatch] = []
_start_engine = event_latency.start_engine


def _watched_engine(*args: Any, **kwargs: Any
                    ) -> tuple[subprocess.Popen[str], int, range, list[str]]:
    # event_latency.run starts the engine itself; wrapping its starter is how the RSS watch
    # learns the engine's pid the moment it is ready, without a copy of the run.
    started = _start_engine(*args, **kwargs)
    _watches.append(RssWatch(started[0].pid))
    return started


def run_step(calls: int, procs: int, presses: int, workdir: Path,
             engine_log: Path | None = None) -> dict[str, Any]:
    """One step of the ramp: event_latency's run plus memory and a verdict."""
    event_latency.start_engine = _watched_engine
    try:
        row: dict[str, Any] = dict(event_latency.run(calls, procs, presses, workdir, engine_log))
    except RuntimeError as error:
        row = {"calls": calls, "error": str(error)}
    finally:
        event_latency.start_engine = _start_engine
    watch = _watches.pop() if _watches else None
    if watch is not None:
        watch.stop()
        row["rss_idle_mb"] = watch.idle / 2**20
        row["mem_call_kb"] = (watch.peak - watch.idle) / 1024 / calls
    row["ok"] = ("error" not in row and row["lost"] == 0 and row["dup"] == 0
                 and row["odd"] == 0 and row["p99"] < P99_LIMIT_MS)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs="+", default=DEFAULT_RAMP)
    parser.add_argument("--presses", type=int, default=8, help="keys per call")
    parser.add_argument("--fleet-procs", type=int, default=2, help="caller processes")
    parser.add_argument("--engine-log", type=Path, help="append the engine's stderr here")
    parser.add_argument("--keep-going", action="store_true",
                        help="run every step even after one failed")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for calls in args.calls:
            row = run_step(calls, args.fleet_procs, args.presses, Path(tmp), args.engine_log)
            rows.append(row)
            print(f"  {calls} calls: {'ok' if row['ok'] else 'FAILED'}", flush=True)
            if not row["ok"] and not args.keep_going:
                break
            time.sleep(1)
    print(f"\nload ramp: {args.presses} RFC 4733 keys per call, RTP both ways, "
          f"{os.cpu_count()} CPUs, {args.fleet_procs} caller processes, "
          f"1-min load before {load_before:.1f}")
    print(f"{'calls':>5} {'handled':>7} {'sent':>5} {'deliv':>5} {'lost':>4} {'dup':>3} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'CPU/call':>8} {'CPU':>6} {'mem/call':>9} "
          f"{'drops':>5} {'verdict':>7}")
    for r in rows:
        if "error" in r:
            print(f"{r['calls']:>5} error: {r['error']}")
            continue
        print(f"{r['calls']:>5} {r['calls']:>7} {r['sent']:>5} {r['delivered']:>5} "
              f"{r['lost']:>4} {r['dup']:>3} {r['median']:>7.1f} {r['p99']:>7.1f} "
              f"{r['cpu_call']:>7.2f}% {r['cpu_total']:>5.1f}% "
              f"{r.get('mem_call_kb', float('nan')):>6.0f} KB {r['drops']:>5} "
              f"{'ok' if r['ok'] else 'over':>7}")
    passed = [r["calls"] for r in rows if r["ok"]]
    print(f"largest N sustained (p99 < {P99_LIMIT_MS:.0f} ms, 0 lost, 0 dup): "
          f"{max(passed) if passed else 'none'}")
    print("sent: keys whose first packet left the caller; deliv: exactly one dtmf_received "
          "of that key; CPU: the engine's, % of one core; mem/call: (peak RSS with the calls "
          "up - RSS at ready) / calls")


if __name__ == "__main__":
    main()
