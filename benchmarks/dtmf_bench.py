"""In-band DTMF receiver benchmark: voxflow vs spandsp on the same generated corpora.

Run ``python benchmarks/dtmf_bench.py`` (``--quick`` for a short run). Prints one table with
must-accept detection rate, must-reject false rate, talk-off false digits, talk-down rate vs
speech level, detection latency after onset and throughput in real-time channels per CPU core,
then the cases each receiver got wrong.

Latency is measured the way the engine sees it: audio arrives in 20 ms frames, and a key counts
as reported at the end of the frame whose processing produced it.

Throughput is CPU time (``time.process_time``, all threads of this process) with BLAS/OpenMP
pinned to one thread, so the figures are per core. voxflow runs its batched detector over
``[channels, 160]`` frames; spandsp runs one C receiver per channel, measured twice: fed one
second per call (pure C cost, the anchor) and fed 20 ms frames through ctypes (what a Python
engine driving spandsp per channel would pay).
"""
# ruff: noqa: E402  (thread pinning must happen before numpy is imported)

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import re
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

import dtmf_corpus as corpus
import numpy as np
import numpy.typing as npt
from dtmf_receivers import (
    FRAME,
    FRAME_MS,
    Receiver,
    spandsp_frame_receiver,
    spandsp_receiver,
    voxflow_receiver,
)
from rich.console import Console
from rich.table import Table

Int16Array = npt.NDArray[np.int16]
CHANNEL_COUNTS: Final = (1, 100, 1000)


# --------------------------------------------------------------------------- measurements


@dataclass
class Scores:
    """Everything measured for one receiver."""

    accept_passed: int = 0
    accept_total: int = 0
    reject_false: int = 0
    reject_total: int = 0
    talkoff_false_digits: int = 0
    talkdown: dict[float, tuple[int, int, int]] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    latency_missed: int = 0
    channels_per_core: dict[int, float] = field(default_factory=dict)
    failures: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    seconds: dict[str, float] = field(default_factory=dict)


def _case_family(name: str) -> str:
    """A clip name without its start offset and codec (``key 1 @29 ulaw`` -> ``key 1``)."""
    return re.sub(r"( @\d+ \w+| #\d+)$", "", name)


def score_synthetic(
    receiver: Receiver, accept: Sequence[corpus.Clip], reject: Sequence[corpus.Clip], scores: Scores
) -> None:
    """Must-accept: exact key string; must-reject: no key at all."""
    for clip in accept:
        got = receiver.digits(clip.samples)
        scores.accept_total += 1
        if got == clip.expected:
            scores.accept_passed += 1
        else:
            scores.failures["must-accept"].append((clip.name, f"heard {got!r}"))
    for clip in reject:
        got = receiver.digits(clip.samples)
        scores.reject_total += 1
        if got:
            scores.reject_false += 1
            scores.failures["must-reject"].append((clip.name, f"heard {got!r}"))


def score_talkoff(receiver: Receiver, clips: Sequence[corpus.Clip], scores: Scores) -> None:
    """Every key heard in talk-off material is a false digit."""
    for clip in clips:
        got = receiver.digits(clip.samples)
        if got:
            scores.talkoff_false_digits += len(got)
            scores.failures["talk-off"].append((f"{clip.category}/{clip.name}", f"heard {got!r}"))


def score_talkdown(
    receiver: Receiver, clips: Sequence[tuple[float, corpus.Clip]], scores: Scores
) -> None:
    """Keys found in order (longest common subsequence) and extra keys, per speech level; the
    keys not reported within 200 ms of their onset are listed as failures."""
    for level, clip in clips:
        got = receiver.digits(clip.samples)
        matched = corpus.matched_keys(clip.expected, got)
        scores.talkdown[level] = (matched, len(clip.expected), len(got) - matched)
        reported = receiver.key_downs(clip.samples)
        for index, (key, onset) in enumerate(zip(clip.expected, clip.onsets, strict=True)):
            window = range(onset, onset + corpus.SAMPLE_RATE // 5)
            if not any(k == key and sample in window for k, sample in reported):
                at_s = onset / corpus.SAMPLE_RATE
                scores.failures["talk-down"].append(
                    (f"{clip.name} #{index}", f"key {key!r} at {at_s:.2f} s not reported")
                )


def score_latency(receiver: Receiver, clips: Sequence[corpus.Clip], scores: Scores) -> None:
    """Time from tone onset to the end of the frame that reported the key."""
    for clip in clips:
        reported = receiver.key_downs(clip.samples)
        if [key for key, _ in reported] != [clip.expected]:
            scores.latency_missed += 1
            scores.failures["latency"].append((clip.name, f"reported {reported}"))
            continue
        scores.latencies_ms.append((reported[0][1] - clip.onsets[0]) * 1000.0 / corpus.SAMPLE_RATE)


def channel_audio(channels: int, seconds: float, source: Int16Array) -> Int16Array:
    """``[channels, samples]``: ``source`` (speech with keys) at a different phase per channel."""
    length = int(seconds * 1000 / FRAME_MS) * FRAME
    starts = (np.arange(channels) * 7919) % max(len(source) - length, 1)
    return np.stack([source[s : s + length] for s in starts])


def channels_per_core(receiver: Receiver, audio: Int16Array, min_cpu_seconds: float) -> float:
    """Real-time channels one core sustains: channel-seconds processed per CPU second."""
    channels, samples = audio.shape
    prepared = receiver.prepare(audio)
    runs = 0
    start = time.process_time()
    while True:
        receiver.run_channels(prepared)
        runs += 1
        spent = time.process_time() - start
        if spent >= min_cpu_seconds:
            return float(channels * samples / corpus.SAMPLE_RATE * runs / spent)


# --------------------------------------------------------------------------- report


def _rate(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f} % ({part}/{whole})" if whole else "-"


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


@dataclass(frozen=True)
class Row:
    """One metric: each receiver's shown value, and a number where bigger is better."""

    metric: str
    shown: dict[str, str]
    merit: dict[str, float]


def _metrics(scores: Scores, talkoff_label: str) -> list[tuple[str, str, float]]:
    """``(metric, shown value, merit)`` for one receiver, in table order; bigger merit wins."""
    lat = scores.latencies_ms
    metrics = [
        (
            "must-accept detection rate",
            _rate(scores.accept_passed, scores.accept_total),
            scores.accept_passed / max(scores.accept_total, 1),
        ),
        (
            "must-reject false rate",
            _rate(scores.reject_false, scores.reject_total),
            -scores.reject_false / max(scores.reject_total, 1),
        ),
        (
            f"talk-off false digits ({talkoff_label})",
            str(scores.talkoff_false_digits),
            -scores.talkoff_false_digits,
        ),
    ]
    for level, (found, sent, extra) in sorted(scores.talkdown.items()):
        metric = f"talk-down, speech at {level:.0f} dBm0"
        metrics.append((metric, f"{_rate(found, sent)} +{extra} extra", found - extra))
    metrics += [
        (
            "latency after onset, median",
            f"{statistics.median(lat):.1f} ms" if lat else "-",
            -statistics.median(lat) if lat else -1e9,
        ),
        (
            "latency after onset, p99",
            f"{_percentile(lat, 99):.1f} ms",
            -_percentile(lat, 99) if lat else -1e9,
        ),
        ("latency clips missed/wrong", str(scores.latency_missed), -scores.latency_missed),
    ]
    for channels, rate in sorted(scores.channels_per_core.items()):
        metrics.append((f"RT channels per core, {channels} ch", f"{rate:,.0f}", rate))
    return metrics


def build_rows(results: dict[str, Scores], talkoff_label: str) -> list[Row]:
    """Merge every receiver's metrics into table rows."""
    per_receiver = {name: _metrics(scores, talkoff_label) for name, scores in results.items()}
    first = next(iter(per_receiver.values()))
    rows = []
    for index, (metric, _, _) in enumerate(first):
        shown = {name: values[index][1] for name, values in per_receiver.items()}
        merit = {name: values[index][2] for name, values in per_receiver.items()}
        rows.append(Row(metric, shown, merit))
    return rows


def print_report(
    console: Console, rows: Sequence[Row], names: Sequence[str], frame_driven: dict[int, float]
) -> None:
    """One table side by side, and a verdict column (voxflow at least as good as spandsp?)."""
    table = Table(title="In-band DTMF receivers on the same corpora", show_lines=False)
    table.add_column("metric")
    for name in names:
        table.add_column(name, justify="right")
    comparing = "voxflow" in names and "spandsp" in names
    if comparing:
        table.add_column("voxflow ≥ spandsp?", justify="center")
    for row in rows:
        cells = [row.metric, *[row.shown[n] for n in names]]
        if comparing:
            good = row.merit["voxflow"] >= row.merit["spandsp"] - 1e-12
            cells.append("[green]yes[/]" if good else "[bold red]NO[/]")
        table.add_row(*cells)
    console.print(table)
    console.print(
        f"talk-down: keys at {corpus.TALKDOWN_KEY_DBM0:.0f} dBm0 per tone, 70 ms on / 80 ms off, "
        "under real speech at the given active level; latency: 20 ms frames, key counted at the "
        "end of the frame that reported it"
    )
    ctypes_line = ", ".join(f"{c} ch {v:,.0f}" for c, v in frame_driven.items())
    console.print(
        "throughput: voxflow = batched detector over \\[channels, 160] ticks; spandsp = one C "
        "receiver per channel, one call per channel-second; spandsp fed 20 ms frames through "
        f"ctypes: {ctypes_line}"
    )


def print_failures(console: Console, results: dict[str, Scores], limit: int) -> None:
    """What each receiver got wrong, grouped by case family (offset/codec variants folded)."""
    for name, scores in results.items():
        for section, lines in scores.failures.items():
            families: dict[str, list[str]] = defaultdict(list)
            for clip_name, detail in lines:
                family = _case_family(clip_name)
                variant = clip_name[len(family) :].strip()
                families[family].append(f"{variant} {detail}".strip())
            console.print(f"[bold]{name} — {section}: {len(lines)} wrong[/]")
            for family, examples in list(families.items())[:limit]:
                shown = "; ".join(examples[:4]) + ("; …" if len(examples) > 4 else "")
                console.print(f"  {family} ×{len(examples)}: {shown}", soft_wrap=True)
            if len(families) > limit:
                console.print(f"  … {len(families) - limit} more families")


# --------------------------------------------------------------------------- main


@dataclass(frozen=True)
class Corpora:
    """The synthetic corpora (small enough to keep in memory; talk-off is streamed)."""

    accept: list[corpus.Clip]
    reject: list[corpus.Clip]
    talkdown: list[tuple[float, corpus.Clip]]
    latency: list[corpus.Clip]
    throughput_source: Int16Array


def build_corpora(quick: bool) -> Corpora:
    """Render every synthetic corpus once, for all receivers."""
    talkdown = [(level, corpus.talkdown_clip(level)) for level in corpus.TALKDOWN_SPEECH_DBM0]
    return Corpora(
        accept=corpus.must_accept_clips(),
        reject=corpus.must_reject_clips(),
        talkdown=talkdown,
        latency=corpus.latency_clips(per_key=4 if quick else 8),
        # Speech with keys in it, so every channel of the throughput run does real work.
        throughput_source=talkdown[len(talkdown) // 2][1].samples,
    )


def measure_accuracy(receiver: Receiver, corpora: Corpora) -> Scores:
    """Accuracy on the synthetic corpora and latency of one receiver."""
    scores = Scores()
    start = time.perf_counter()
    score_synthetic(receiver, corpora.accept, corpora.reject, scores)
    score_talkdown(receiver, corpora.talkdown, scores)
    score_latency(receiver, corpora.latency, scores)
    scores.seconds["synthetic"] = time.perf_counter() - start
    return scores


def measure_throughput(receiver: Receiver, source: Int16Array, quick: bool) -> dict[int, float]:
    """Real-time channels per core at each channel count."""
    rates = {}
    for channels in CHANNEL_COUNTS:
        # Few channels get more audio, so set-up cost does not dominate.
        seconds = max(1.0 if quick else 2.0, (50.0 if quick else 200.0) / channels)
        audio = channel_audio(channels, seconds, source)
        rates[channels] = channels_per_core(receiver, audio, 0.3 if quick else 1.0)
    return rates


def score_talkoff_streamed(
    receivers: Sequence[Receiver], results: dict[str, Scores], quick: bool
) -> tuple[float, int]:
    """Run every receiver on each talk-off clip as it is made; returns (minutes, clips)."""
    minutes, clips = 0.0, 0
    for clip in corpus.talkoff_clips(quick=quick):
        minutes += clip.minutes
        clips += 1
        for receiver in receivers:
            scores = results[receiver.name]
            start = time.perf_counter()
            score_talkoff(receiver, [clip], scores)
            scores.seconds["talk-off"] = scores.seconds.get("talk-off", 0.0) + (
                time.perf_counter() - start
            )
    return minutes, clips


def main(argv: Iterable[str] | None = None) -> int:
    """Build the corpora, run both receivers, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller corpora, shorter timing")
    parser.add_argument("--failures", type=int, default=25, help="failure families to list")
    options = parser.parse_args(None if argv is None else list(argv))
    console = Console(width=160)

    receivers = [voxflow_receiver(), spandsp_receiver()]
    corpora = build_corpora(options.quick)
    results = {r.name: measure_accuracy(r, corpora) for r in receivers}
    source = corpora.throughput_source
    for receiver in receivers:
        results[receiver.name].channels_per_core = measure_throughput(
            receiver, source, options.quick
        )
    frame_driven = measure_throughput(spandsp_frame_receiver(), source, options.quick)
    start = time.perf_counter()
    minutes, clips = score_talkoff_streamed(receivers, results, options.quick)
    console.print(
        f"talk-off corpus: {clips} clips, {minutes:.0f} min, made and scored in "
        f"{time.perf_counter() - start:.0f} s (cache {corpus.corpus_dir()})"
    )

    names = [r.name for r in receivers]
    label = f"{minutes:.0f} min, {clips} clips"
    print_report(console, build_rows(results, label), names, frame_driven)
    for name, scores in results.items():
        spent = ", ".join(f"{k} {v:.1f} s" for k, v in scores.seconds.items())
        console.print(f"{name} wall time: {spent}")
    print_failures(console, results, options.failures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
