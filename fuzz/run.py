"""Run the atheris fuzz targets for a fixed time each and print what they did.

    python fuzz/run.py --seconds 60                 # every target, one after the other
    python fuzz/run.py --seconds 300 --target sip   # one target (repeat --target for more)

Each target runs in its own subprocess (libFuzzer owns the process) on a working corpus under
``--workdir`` seeded by ``seeds.py``; crash inputs land in ``<workdir>/crashes/<target>/``.
After a crash the target is restarted for the time left, so one run can report several.
Exit status is 1 when any target crashed.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

FUZZ_DIR = Path(__file__).resolve().parent
TARGETS = ("sip", "sdp", "rtp", "sip_info", "actions", "wav", "useragent")
_EXECS = re.compile(rb"^#(\d+)\s", re.MULTILINE)
_DONE = re.compile(rb"Done (\d+) runs in")
_CRASH_FILE = re.compile(rb"Test unit written to (\S+)")


@dataclass
class Result:
    """What one target did in one run."""

    target: str
    seconds: float
    executions: int = 0
    crashes: int = 0
    corpus: int = 0
    crash_files: list[str] = field(default_factory=list)
    exit_codes: list[int] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Executions per second."""
        return self.executions / self.seconds if self.seconds > 0 else 0.0


def _executions(output: bytes) -> int:
    done = _DONE.findall(output)
    if done:
        return int(done[-1])
    counts = _EXECS.findall(output)  # a crash ends the run before the "Done" line
    return int(counts[-1]) if counts else 0


def run_target(
    target: str, seconds: float, workdir: Path, *, log: Path | None = None, seed: int | None = None
) -> Result:
    """Fuzz one target for ``seconds`` (wall clock, restarting after crashes).

    ``seed`` fixes libFuzzer's random sequence: a short run then tries a prefix of the same
    inputs every time, so CI fails only on a bug that run can reproduce, not on a lucky draw.
    """
    sys.path.insert(0, str(FUZZ_DIR))
    try:
        from seeds import write_dictionary, write_seeds
    finally:
        sys.path.remove(str(FUZZ_DIR))

    corpus = workdir / "corpus" / target
    if not corpus.exists() or not any(corpus.iterdir()):
        write_seeds(target, corpus)
    crashes = workdir / "crashes" / target
    crashes.mkdir(parents=True, exist_ok=True)
    dictionary = write_dictionary(target, workdir / "dict" / f"{target}.dict")
    result = Result(target, 0.0)
    start = time.monotonic()
    while (left := seconds - (time.monotonic() - start)) >= 1.0:
        command = [
            sys.executable,
            str(FUZZ_DIR / f"fuzz_{target}.py"),
            str(corpus),
            f"-max_total_time={int(left)}",
            f"-artifact_prefix={crashes}/",
            "-timeout=20",
            "-rss_limit_mb=2048",
            "-max_len=8192",
            "-print_final_stats=1",
        ]
        if dictionary is not None:
            command.append(f"-dict={dictionary}")
        if seed is not None:
            command.append(f"-seed={seed}")
        done = subprocess.run(command, capture_output=True, cwd=FUZZ_DIR, check=False)
        output = done.stdout + done.stderr
        if log is not None:
            with log.open("ab") as stream:
                stream.write(output)
        result.executions += _executions(output)
        result.exit_codes.append(done.returncode)
        written = [name.decode() for name in _CRASH_FILE.findall(output)]
        result.crash_files += written
        if done.returncode != 0:
            result.crashes += max(1, len(written))
        else:
            break
    result.seconds = time.monotonic() - start
    result.corpus = sum(1 for _ in corpus.iterdir())
    return result


def print_table(results: list[Result]) -> None:
    """A rich table: target, executions, exec/s, crashes, corpus size."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="fuzz run")
    for column in ("target", "seconds", "executions", "exec/s", "crashes", "corpus"):
        table.add_column(column, justify="left" if column == "target" else "right")
    for r in results:
        table.add_row(
            r.target,
            f"{r.seconds:.0f}",
            f"{r.executions:,}",
            f"{r.rate:,.0f}",
            f"[red]{r.crashes}[/red]" if r.crashes else "0",
            str(r.corpus),
        )
    Console().print(table)
    for r in results:
        for name in r.crash_files:
            print(f"crash input ({r.target}): {name}")


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="time per target")
    parser.add_argument("--target", action="append", choices=TARGETS, help="default: all")
    parser.add_argument("--workdir", type=Path, default=FUZZ_DIR / ".work")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    args = parser.parse_args(argv)
    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for target in args.target or TARGETS:
        log = workdir / f"{target}.log"
        log.unlink(missing_ok=True)
        results.append(run_target(target, args.seconds, workdir, log=log))
    if args.json:
        print(json.dumps([asdict(r) | {"rate": r.rate} for r in results], indent=2))
    else:
        print_table(results)
    return 1 if any(r.crashes for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
