"""``voxflow demo`` as a user runs it: the console script, from the repository root.

It places a real SIP/RTP call on 127.0.0.1 from the built-in softphone to the engine running
the seed IVR, so these tests also prove the whole path works on this machine.
"""

from __future__ import annotations

import re
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
VOXFLOW = Path(sys.executable).parent / "voxflow"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VOXFLOW), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={"COLUMNS": "160", "PATH": "/usr/bin:/bin"})


def read_stereo(path: Path) -> np.ndarray:
    with wave.open(str(path)) as wav:
        assert wav.getnchannels() == 2 and wav.getframerate() == 8000
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)


def test_demo_calls_the_seed_ivr_and_is_transferred(tmp_path: Path) -> None:
    wav = tmp_path / "call.wav"
    result = run("demo", "--wav", str(wav))
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    # the menu prompt with its audio length, twice (9 repeats it)
    assert out.count('assistant_speak "Welcome to the demo company') == 2
    assert len(re.findall(r"\(\d+\.\d\d s", out)) == 2
    # each key with the source it travelled by, one by RFC 4733 and one by SIP INFO
    assert "heard key 9 via rfc4733" in out and "heard key 1 via sip_info" in out
    assert "dtmf_received 9" in out and "dtmf_received 1" in out
    assert "transfer → +49211100200" in out
    assert "received REFER → +49211100200" in out
    assert "Outcome: the caller was transferred to +49211100200." in out
    assert re.search(r"\d+\.\d ms after the press", out)  # latencies are shown
    # the call's audio: both directions, and the menu is really in voxflow's channel
    assert str(wav) in out.replace("\n", "")
    audio = read_stereo(wav)
    assert audio.shape[0] >= 8000  # more than a second of call
    assert np.abs(audio[:, 1].astype(int)).max() > 1000


def test_demo_hash_key_hangs_up(tmp_path: Path) -> None:
    result = run("demo", "--keys", "#", "--wav", str(tmp_path / "hash.wav"))
    assert result.returncode == 0, result.stderr + result.stdout
    assert 'speak "Goodbye!"' in result.stdout and "hangup" in result.stdout
    assert "Outcome: the assistant hung up." in result.stdout
    assert (tmp_path / "hash.wav").stat().st_size > 44


def test_demo_names_bad_input() -> None:
    bad_key = run("demo", "--keys", "1x")
    assert bad_key.returncode == 2 and "'x'" in bad_key.stdout
    missing = run("demo", "--assistant", "no_such_module:assistant")
    assert missing.returncode == 2 and "no_such_module" in missing.stdout
