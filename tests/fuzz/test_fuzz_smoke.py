"""Every atheris harness runs a few seconds in CI: it must execute inputs and find no crash.

Seven targets at five seconds each keeps the whole smoke run under a minute; the long runs go
through ``fuzz/run.py --seconds N`` by hand.
"""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

FUZZ_DIR = Path(__file__).resolve().parents[2] / "fuzz"
SECONDS_PER_TARGET = 5.0
# A fixed libFuzzer seed keeps CI reproducible: new finds belong to the long runs (fuzz/run.py).
SEED = 1


def load_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_run", FUZZ_DIR / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_run"] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


RUNNER = load_runner()


@pytest.mark.slow
@pytest.mark.parametrize("target", RUNNER.TARGETS)
def test_harness_runs_without_crashes(target: str, tmp_path: Path) -> None:
    result = RUNNER.run_target(
        target, SECONDS_PER_TARGET, tmp_path, log=tmp_path / "log", seed=SEED
    )
    log = (tmp_path / "log").read_text(errors="replace")
    crashes = {name: Path(name).read_bytes()[:300] for name in result.crash_files}
    assert result.crashes == 0, f"{target} crashed on {crashes}\n{log[-3000:]}"
    assert result.exit_codes == [0], log[-3000:]
    assert result.executions > 0, f"{target} executed nothing\n{log[-3000:]}"
    seeds = len(list((tmp_path / "corpus" / target).glob("seed-*")))
    assert seeds > 0 and result.corpus >= seeds


def test_every_target_has_a_harness_and_seeds() -> None:
    sys.path.insert(0, str(FUZZ_DIR))
    try:
        from seeds import SEEDS
    finally:
        sys.path.remove(str(FUZZ_DIR))
    harnesses = {p.stem.removeprefix("fuzz_") for p in FUZZ_DIR.glob("fuzz_*.py")}
    assert harnesses == set(RUNNER.TARGETS) == set(SEEDS)
    assert all(SEEDS[name]() for name in SEEDS)
