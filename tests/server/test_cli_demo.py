"""``voxflow demo`` as a user runs it: the console script, from the repository root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VOXFLOW = Path(sys.executable).parent / "voxflow"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VOXFLOW), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"})


def test_demo_walks_the_seed_ivr_to_the_transfer() -> None:
    result = run("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "session_start" in out and "dtmf_received 9" in out and "dtmf_received 1" in out
    assert out.count("Welcome to the demo company") == 2  # the menu, then again after 9
    assert "transfer → +49211100200" in out
    assert "transferred to +49211100200" in out
    assert " ms " in out  # handler latency is shown


def test_demo_hash_key_hangs_up() -> None:
    result = run("demo", "--keys", "#")
    assert result.returncode == 0, result.stderr
    assert 'speak "Goodbye!"' in result.stdout and "hangup" in result.stdout


def test_demo_names_bad_input() -> None:
    bad_key = run("demo", "--keys", "1x")
    assert bad_key.returncode == 2 and "'x'" in bad_key.stdout
    missing = run("demo", "--assistant", "no_such_module:assistant")
    assert missing.returncode == 2 and "no_such_module" in missing.stdout
