"""Every atheris harness runs a fixed time in CI: it must execute inputs and find no crash.

Seven targets at 30 seconds each, two at a time (one per core; libFuzzer runs in its own
process), add about two minutes to the suite; the long runs go through
``fuzz/run.py --seconds N`` by hand.
"""

import importlib.util
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

FUZZ_DIR = Path(__file__).resolve().parents[2] / "fuzz"
SECONDS_PER_TARGET = 30.0
PARALLEL_TARGETS = 2
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


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Path]]:
    """Each target's result and working directory, all targets run once per session."""
    workdirs = {target: tmp_path_factory.mktemp(f"fuzz-{target}") for target in RUNNER.TARGETS}

    def run(target: str) -> tuple[Any, Path]:
        workdir = workdirs[target]
        result = RUNNER.run_target(
            target, SECONDS_PER_TARGET, workdir, log=workdir / "log", seed=SEED
        )
        return result, workdir

    with ThreadPoolExecutor(max_workers=PARALLEL_TARGETS) as pool:
        return dict(zip(RUNNER.TARGETS, pool.map(run, RUNNER.TARGETS), strict=True))


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("target", RUNNER.TARGETS)
def test_harness_runs_without_crashes(
    target: str, smoke_runs: dict[str, tuple[Any, Path]]
) -> None:
    result, workdir = smoke_runs[target]
    log = (workdir / "log").read_text(errors="replace")
    crashes = {name: Path(name).read_bytes()[:300] for name in result.crash_files}
    assert result.crashes == 0, f"{target} crashed on {crashes}\n{log[-3000:]}"
    assert result.exit_codes == [0], log[-3000:]
    assert result.executions > 0, f"{target} executed nothing\n{log[-3000:]}"
    seeds = len(list((workdir / "corpus" / target).glob("seed-*")))
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
