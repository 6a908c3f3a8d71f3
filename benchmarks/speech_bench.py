"""Speech-in benchmark: STT word error rate and real-time factor, VAD cost and agreement.

Builds its corpus at run time: espeak-ng sentences in three voices through a G.711 round trip at
8 kHz, and Debian asterisk-core-sounds-en-wav prompts whose words the file name gives.

    .venv/bin/python benchmarks/speech_bench.py
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from voxflow.media.audio import decode_wav, frames, resample
from voxflow.media.dtmf.generator import generate_sequence
from voxflow.media.g711 import ulaw_decode, ulaw_encode
from voxflow.media.vad import (
    SileroVad,
    VoiceActivityDetector,
    WebRtcVad,
    frame_level_dbfs,
    looks_like_dtmf,
)
from voxflow.speech.pocketsphinx_stt import PocketsphinxMode, PocketsphinxProvider
from voxflow.speech.pocketsphinx_stt import PocketsphinxSettings as Settings
from voxflow.speech.stt import SttProvider, transcribe

VOICES = ("en-us", "en-us+m3", "en-us+f3")
SENTENCES = (
    "I want to talk to sales",
    "I would like to talk to support",
    "connect me to an agent please",
    "cancel my order",
    "yes please",
    "no thank you",
)
MENU_HINTS = ("sales", "support", "agent", "cancel my order", "yes", "no")
PROMPTS_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
PROMPTS = {
    "hello": "hello",
    "hello-world": "hello world",
    "goodbye": "goodbye",
    "vm-goodbye": "goodbye",
    "please-try-again": "please try again",
    "one-moment-please": "one moment please",
    "im-sorry": "i'm sorry",
    "sorry": "sorry",
    "hours": "hours",
    "minutes": "minutes",
    "minute": "minute",
    "seconds": "seconds",
    "second": "second",
    "number": "number",
    "extension": "extension",
    "telephone-number": "telephone number",
    "calling": "calling",
    "cancelled": "cancelled",
    "activated": "activated",
    "removed": "removed",
}

Corpus = list[tuple[np.ndarray, str]]


def espeak(text: str, voice: str) -> np.ndarray:
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True
    ).stdout
    samples, rate = decode_wav(wav)
    return ulaw_decode(ulaw_encode(resample(samples, rate, 8000)))


def espeak_corpus() -> Corpus:
    return [(espeak(s, v), s.lower()) for v in VOICES for s in SENTENCES]


def prompt_corpus() -> Corpus:
    corpus = []
    for name, words in PROMPTS.items():
        path = PROMPTS_DIR / f"{name}.wav"
        if path.is_file():
            samples, rate = decode_wav(path.read_bytes())
            corpus.append((resample(samples, rate, 8000), words))
    return corpus


def word_errors(reference: str, hypothesis: str) -> int:
    ref, hyp = reference.split(), hypothesis.lower().replace(".", "").split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def stt_row(provider: SttProvider, corpus: Corpus, hints: Sequence[str]) -> tuple[float, float]:
    errors = words = 0
    spent = 0.0
    audio = sum(len(s) for s, _ in corpus) / 8000
    for samples, reference in corpus:
        start = time.process_time()
        transcript = asyncio.run(transcribe(provider, samples, "en-US", hints))
        spent += time.process_time() - start
        errors += word_errors(reference, transcript.text)
        words += len(reference.split())
    return errors / words, spent / audio


def labelled_signal() -> tuple[np.ndarray, np.ndarray]:
    """1 s silence, speech, 1 s white noise, DTMF digits, speech, 1 s silence; speech truth
    marks the frames of the speech parts above -40 dBFS."""
    rng = np.random.default_rng(3)
    noise = np.clip(rng.normal(0, 300, 8000), -32768, 32767).astype(np.int16)
    dtmf = generate_sequence("123#", on_ms=100, off_ms=100)
    speech = [espeak(SENTENCES[0], "en-us"), espeak(SENTENCES[1], "en-us+f3")]
    parts = [np.zeros(8000, np.int16), speech[0], noise, dtmf, speech[1], np.zeros(8000, np.int16)]
    rows = [frames(p) for p in parts]
    truth = [
        (frame_level_dbfs(r) > -40) if i in (1, 4) else np.zeros(len(r), bool)
        for i, r in enumerate(rows)
    ]
    return np.concatenate(rows), np.concatenate(truth)


def vad_row(make: Callable[[], VoiceActivityDetector], signal: np.ndarray, truth: np.ndarray):
    detector = make()
    start = time.perf_counter()
    verdicts = np.array([detector.is_speech(f) for f in signal])
    per_frame = (time.perf_counter() - start) / len(signal) * 1e6
    guarded = verdicts & ~looks_like_dtmf(signal)
    return per_frame, float(np.mean(verdicts == truth)), float(np.mean(guarded == truth))


def main() -> None:
    corpora = {"espeak (3 voices, G.711)": espeak_corpus(), "asterisk prompts": prompt_corpus()}
    print("| STT provider / mode | corpus | utterances | WER | RTF |")
    print("|---|---|---:|---:|---:|")
    for mode in (PocketsphinxMode.GRAMMAR, PocketsphinxMode.KEYWORDS, PocketsphinxMode.LM):
        provider = PocketsphinxProvider(Settings(mode=mode))
        for label, corpus in corpora.items():
            hints = MENU_HINTS if label.startswith("espeak") else tuple(PROMPTS.values())
            wer, rtf = stt_row(provider, corpus, hints)
            print(
                f"| pocketsphinx {mode.value} | {label} | {len(corpus)} | {wer:.0%} | {rtf:.3f} |"
            )
    signal, truth = labelled_signal()
    makers: dict[str, Callable[[], VoiceActivityDetector]] = {
        f"webrtcvad mode {m}": (lambda m=m: WebRtcVad(mode=m)) for m in (0, 2, 3)
    }
    try:
        SileroVad()
        makers["silero"] = SileroVad
    except ImportError as exc:
        print(f"\n(silero not measured: {exc})")
    print("\n| VAD | µs per 20 ms frame | frame agreement | with DTMF guard |")
    print("|---|---:|---:|---:|")
    for name, make in makers.items():
        cost, agree, guarded = vad_row(make, signal, truth)
        print(f"| {name} | {cost:.1f} | {agree:.0%} | {guarded:.0%} |")
    guard_cost = time.perf_counter()
    looks_like_dtmf(np.zeros((1000, 160), np.int16))
    print(
        f"\nDTMF guard, batched over 1000 calls: "
        f"{(time.perf_counter() - guard_cost) * 1e3:.2f} ms per 20 ms tick"
    )


if __name__ == "__main__":
    main()
