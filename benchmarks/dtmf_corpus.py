"""DTMF test corpora, generated locally from offline material (nothing large is committed).

Three corpora, all 8 kHz int16 and all passed through a G.711 round trip like real call audio:

* **talk-off** (:func:`talkoff_clips`): audio that contains no key press and must yield no digit
  — Debian's ``asterisk-core-sounds-en-wav`` prompts, ``asterisk-moh-opsound-wav`` music,
  espeak-ng speech in many voices/speeds/pitches, pitch-shifted and tempo-changed prompts,
  sox-made sweeps and call-progress tones, organ-like chords with vibrato — each at several gains,
  every one µ-law, the 0 dB copy also A-law.
* **must-accept / must-reject** (:func:`must_accept_clips`, :func:`must_reject_clips`): the
  synthetic receiver cases of the DTMF spec (frequency offsets, durations, levels, twist, noise,
  gaps, fast sequences, near-miss tone sets), each at several start offsets within a block.
* **talk-down** (:func:`talkdown_clips`): random key sequences mixed with real speech at several
  speech levels.

Material made by sox/espeak-ng is cached as ``.npy`` under :func:`corpus_dir`, keyed by a hash of
its recipe (tool versions, arguments, source file sizes and times), so later runs only load it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import wave
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from voxflow.media.dtmf.generator import generate_sequence, generate_tone, level_to_amplitude
from voxflow.media.dtmf.keys import COLUMN_FREQUENCIES, KEYPAD, ROW_FREQUENCIES
from voxflow.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

Int16Array = npt.NDArray[np.int16]
FloatArray = npt.NDArray[np.float64]

SAMPLE_RATE: Final = 8000
PROMPTS_DIR: Final = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
MUSIC_DIR: Final = Path("/usr/share/asterisk/moh")
_CACHE_VERSION: Final = "1"
ALL_KEYS_IN_ORDER: Final = "".join(KEYPAD)
# Level of a tone set at 0 dB gain, before the talk-off gains are applied.
_SYNTH_TONE_DBM0: Final = -6.0


class CorpusMaterialError(RuntimeError):
    """Offline material (a Debian package or tool) needed for the corpus is missing."""


@dataclass(frozen=True, slots=True)
class Clip:
    """One piece of test audio and what a correct receiver must report for it.

    ``onsets`` holds the sample index at which each expected key's tone starts (when known).
    """

    name: str
    category: str
    samples: Int16Array
    expected: str = ""
    onsets: tuple[int, ...] = ()

    @property
    def minutes(self) -> float:
        """Length of the clip in minutes."""
        return len(self.samples) / SAMPLE_RATE / 60.0


# --------------------------------------------------------------------------- line and levels


def line_roundtrip(signal: npt.ArrayLike, codec: str = "ulaw") -> Int16Array:
    """Clip ``signal`` to int16 and pass it through a G.711 encode/decode (``ulaw``/``alaw``)."""
    pcm = np.clip(np.rint(np.asarray(signal, dtype=np.float64)), -32768, 32767).astype(np.int16)
    if codec == "ulaw":
        return ulaw_decode(ulaw_encode(pcm))
    if codec == "alaw":
        return alaw_decode(alaw_encode(pcm))
    raise ValueError(f"codec must be 'ulaw' or 'alaw', got {codec!r}")


def dbm0_of_power(mean_square: float) -> float:
    """dBm0 of a signal with the given mean square (int16 scale); a 0 dBm0 sine gives 0."""
    reference = level_to_amplitude(0.0) ** 2 / 2.0
    return float(10.0 * np.log10(max(mean_square, 1e-12) / reference))


def active_level_dbm0(samples: npt.ArrayLike, *, floor_dbm0: float = -50.0) -> float:
    """Mean level over the 20 ms frames louder than ``floor_dbm0`` (a simple active level)."""
    audio = np.asarray(samples, dtype=np.float64)
    frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)
    power = np.mean(frames**2, axis=1)
    reference = level_to_amplitude(0.0) ** 2 / 2.0
    active = power[power > reference * 10.0 ** (floor_dbm0 / 10.0)]
    return dbm0_of_power(float(np.mean(active))) if active.size else -np.inf


def scale_to_level(samples: npt.ArrayLike, target_dbm0: float) -> FloatArray:
    """``samples`` as float, scaled so that :func:`active_level_dbm0` equals ``target_dbm0``."""
    audio = np.asarray(samples, dtype=np.float64)
    return np.asarray(audio * 10.0 ** ((target_dbm0 - active_level_dbm0(audio)) / 20.0))


# --------------------------------------------------------------------------- cache and tools


def corpus_dir() -> Path:
    """Cache directory: ``$VOXFLOW_CORPUS_DIR`` or ``voxflow-dtmf-corpus`` in the temp dir."""
    configured = os.environ.get("VOXFLOW_CORPUS_DIR")
    path = Path(configured) if configured else Path(tempfile.gettempdir()) / "voxflow-dtmf-corpus"
    path.mkdir(parents=True, exist_ok=True)
    return path


@cache
def _tool_version(tool: str) -> str:
    try:
        done = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise CorpusMaterialError(f"{tool} is not installed (Debian package {tool})") from None
    return (done.stdout or done.stderr).strip().splitlines()[0]


def _cached(recipe: Sequence[object], build: Callable[[], Int16Array]) -> Int16Array:
    """Load the array made by ``recipe`` from the cache, building and storing it if needed."""
    digest = hashlib.sha256(repr((_CACHE_VERSION, *recipe)).encode()).hexdigest()[:20]
    path = corpus_dir() / f"{recipe[0]}-{digest}.npy"
    if path.exists():
        return np.asarray(np.load(path), dtype=np.int16)
    samples = build()
    # Write then rename, so a concurrent reader never sees half a file.
    partial = path.with_suffix(f".{os.getpid()}.part")
    with partial.open("wb") as handle:
        np.save(handle, samples)
    partial.replace(path)
    return samples


def _file_identity(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return (str(path), stat.st_size, stat.st_mtime_ns)


def _run_to_pcm(command: Sequence[str], stdin: bytes | None = None) -> Int16Array:
    """Run a pipeline stage that writes raw 8 kHz int16 mono to stdout."""
    done = subprocess.run(command, input=stdin, capture_output=True, check=False)
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise CorpusMaterialError(f"{' '.join(command[:2])} failed: {message}")
    return np.frombuffer(done.stdout, dtype=np.int16).copy()


_SOX_RAW_OUT: Final = ("-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1", "-")


def _sox_effect(samples: Int16Array, effects: Sequence[str]) -> Int16Array:
    """Apply sox effects to 8 kHz int16 audio."""
    raw_in = ("-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1", "-")
    command = ["sox", "-q", "-D", *raw_in, *_SOX_RAW_OUT, *effects, "rate", "8000"]
    return _run_to_pcm(command, samples.tobytes())


def _sox_synth(arguments: Sequence[str]) -> Int16Array:
    return _run_to_pcm(["sox", "-q", "-n", *_SOX_RAW_OUT, "synth", *arguments])


def _read_wav(path: Path) -> Int16Array:
    """A WAV file as 8 kHz mono int16 (sox converts anything else)."""
    with wave.open(str(path), "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (SAMPLE_RATE, 1, 2):
            return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)
    return _run_to_pcm(["sox", "-q", str(path), *_SOX_RAW_OUT])


# --------------------------------------------------------------------------- recorded material


def _prompt_files(quick: bool) -> list[Path]:
    files = sorted(PROMPTS_DIR.rglob("*.wav"))
    if not files:
        raise CorpusMaterialError(
            f"no prompts under {PROMPTS_DIR}; install Debian asterisk-core-sounds-en-wav"
        )
    return files[::4] if quick else files


def _music_files(quick: bool) -> list[Path]:
    files = sorted(MUSIC_DIR.glob("*.wav"))
    if not files:
        raise CorpusMaterialError(
            f"no music under {MUSIC_DIR}; install Debian asterisk-moh-opsound-wav"
        )
    return files[:1] if quick else files


def prompts_material(*, quick: bool = False) -> Int16Array:
    """All (or every fourth, ``quick``) recorded prompt, joined with 200 ms of silence."""
    files = _prompt_files(quick)
    gap = np.zeros(SAMPLE_RATE // 5, dtype=np.int16)

    def build() -> Int16Array:
        return np.concatenate([part for f in files for part in (_read_wav(f), gap)])

    return _cached(("prompts", *[_file_identity(f) for f in files]), build)


def music_material(path: Path, *, max_seconds: float | None = None) -> Int16Array:
    """One music-on-hold track (optionally only its first ``max_seconds``)."""

    def build() -> Int16Array:
        track = _read_wav(path)
        return track if max_seconds is None else track[: int(max_seconds * SAMPLE_RATE)]

    return _cached(("music", _file_identity(path), max_seconds), build)


# --------------------------------------------------------------------------- synthetic speech

_TTS_TEXTS: Final = (
    "Thank you for calling. Please listen carefully, as our menu options have changed. "
    "For billing questions, say billing. To speak with an agent, stay on the line.",
    "My account number is four seven one, nine nine two, three zero eight. "
    "I was charged twice on the fourteenth of March and I would like a refund please.",
    "Oh really? Well, I never! She sang so high that the glasses rang, ooh, aah, eee, "
    "and the whole choir hummed along, mmm, for a long, long time.",
    "Seven hundred and seventy seven, eight hundred and fifty two, nine hundred forty one, "
    "twelve oh nine, thirteen thirty six, fourteen seventy seven, sixteen thirty three.",
    "The quick brown fox jumps over the lazy dog while the weather forecast promises "
    "sunshine, light winds from the west and a high of twenty three degrees.",
    "Hello? Hello? Can you hear me? I'm calling from the car, the signal is terrible, "
    "I'll try again later. Yes, yes, no, maybe, okay, bye bye.",
    "Aaaaaaaah. Eeeeeeeee. Iiiiiiiiii. Oooooooooh. Uuuuuuuuu. Wheeeeeee! Heeeeeey!",
    "Ich möchte bitte meinen Termin am Dienstag verschieben, geht das auch am Donnerstag?",
)
_TTS_VOICES: Final = (
    "en-us",
    "en-gb",
    "en-us+f3",
    "en-us+m7",
    "en-gb-scotland",
    "en-us+f5",
    "en-029",
    "de",
    "en-us+klatt",
    "en-gb-x-rp+f2",
)


def _tts_recipes(quick: bool) -> list[tuple[str, int, int, str]]:
    """(voice, words per minute, pitch 0-99, text) for every synthetic utterance."""
    rng = np.random.default_rng(4733)
    recipes = []
    for index, text in enumerate(_TTS_TEXTS):
        voices = _TTS_VOICES[:2] if quick else _TTS_VOICES
        for voice in voices:
            speed = int(rng.choice((90, 130, 170, 220, 300)))
            pitch = int(rng.choice((0, 20, 50, 80, 99)))
            if voice == "de" and index != len(_TTS_TEXTS) - 1:
                continue
            recipes.append((voice, speed, pitch, text))
    return recipes


def _espeak(voice: str, speed: int, pitch: int, text: str) -> Int16Array:
    espeak = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text]
    wav = subprocess.run(espeak, capture_output=True, check=False)
    if wav.returncode != 0 or not wav.stdout:
        raise CorpusMaterialError(f"espeak-ng failed for voice {voice}: {wav.stderr!r}")
    return _run_to_pcm(["sox", "-q", "-t", "wav", "-", *_SOX_RAW_OUT], wav.stdout)


def tts_material(*, quick: bool = False) -> Int16Array:
    """espeak-ng speech in varied voices, speeds and pitches, joined with short silences."""
    recipes = _tts_recipes(quick)

    def build() -> Int16Array:
        gap = np.zeros(SAMPLE_RATE // 4, dtype=np.int16)
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            utterances = list(pool.map(lambda r: _espeak(*r), recipes))
        return np.concatenate([part for u in utterances for part in (u, gap)])

    return _cached(("tts", _tool_version("espeak-ng"), _tool_version("sox"), *recipes), build)


def _variant_effects(quick: bool) -> list[tuple[str, ...]]:
    effects: list[tuple[str, ...]] = [
        ("pitch", "400"),
        ("pitch", "-400"),
        ("pitch", "200"),
        ("pitch", "-200"),
        ("tempo", "0.8"),
        ("tempo", "1.25"),
    ]
    return effects[:2] if quick else effects


def speech_variants(*, quick: bool = False) -> Iterator[tuple[str, Int16Array]]:
    """Prompts (a few minutes of them) pitch-shifted and tempo-changed by sox."""
    source = prompts_material(quick=True)[: (60 if quick else 240) * SAMPLE_RATE]
    source_hash = hashlib.sha256(source.tobytes()).hexdigest()
    for effect in _variant_effects(quick):
        samples = _cached(
            ("variant", _tool_version("sox"), source_hash, *effect),
            partial(_sox_effect, source, effect),
        )
        yield " ".join(effect), samples


def music_variant(*, quick: bool = False) -> Int16Array:
    """A music track pitch-shifted up a major third (puts more notes into the DTMF bands)."""
    track = music_material(_music_files(True)[0], max_seconds=60 if quick else 240)
    track_hash = hashlib.sha256(track.tobytes()).hexdigest()
    return _cached(
        ("music-variant", _tool_version("sox"), track_hash, "pitch", "400"),
        lambda: _sox_effect(track, ("pitch", "400")),
    )


# --------------------------------------------------------------------------- tones, sweeps, chords


def _normalised(samples: npt.ArrayLike, tones: int) -> FloatArray:
    """Scale a tone set so each of its ``tones`` sits at the synthetic base level."""
    total = _SYNTH_TONE_DBM0 + 10.0 * np.log10(tones)
    return scale_to_level(samples, total)


def _cadenced(on_s: float, off_s: float, total_s: float, tone: FloatArray) -> FloatArray:
    """Switch a continuous ``tone`` on and off with the given cadence."""
    t = np.arange(len(tone)) / SAMPLE_RATE
    gate = (t % (on_s + off_s)) < on_s
    return np.asarray(tone[: int(total_s * SAMPLE_RATE)] * gate[: int(total_s * SAMPLE_RATE)])


# Geometric midpoints between neighbouring DTMF tones of one group and just outside the groups:
# every one is ≥ 4.5 % away from any DTMF frequency, well inside the must-reject band.
ROW_GAPS: Final = (660.0, 732.6, 810.0, 895.4, 990.0)
COLUMN_GAPS: Final = (1150.0, 1270.9, 1404.7, 1553.1, 1720.0)


def _sweep_recipes() -> list[tuple[str, int, tuple[str, ...]]]:
    """(name, tone count, sox synth arguments) for the sweeps and call-progress tones."""
    seconds = "20"
    recipes: list[tuple[str, int, tuple[str, ...]]] = [
        ("sweep single 300-3400 Hz", 1, (seconds, "sine", "300:3400")),
        ("sweep single 3400-300 Hz", 1, (seconds, "sine", "3400:300")),
        (
            "sweep rows together 600-1000/650-1050",
            2,
            (seconds, "sine", "600:1000", "sine", "650:1050"),
        ),
        (
            "sweep columns together 1100-1700/1180-1780",
            2,
            (seconds, "sine", "1100:1700", "sine", "1180:1780"),
        ),
    ]
    for column_gap in COLUMN_GAPS[1:4]:
        recipes.append(
            (
                f"sweep rows 640-1000 + {column_gap} Hz",
                2,
                (seconds, "sine", "640:1000", "sine", f"{column_gap}"),
            )
        )
    for row_gap in ROW_GAPS[1:4]:
        recipes.append(
            (
                f"sweep columns 1150-1700 + {row_gap} Hz",
                2,
                (seconds, "sine", f"{row_gap}", "sine", "1150:1700"),
            )
        )
    return recipes


_CALL_PROGRESS: Final = (
    # name, frequencies, on s, off s
    ("dial tone 350+440", ("350", "440"), 10.0, 0.0),
    ("ringback 440+480", ("440", "480"), 2.0, 4.0),
    ("busy 480+620", ("480", "620"), 0.5, 0.5),
    ("reorder 480+620", ("480", "620"), 0.25, 0.25),
    ("milliwatt 1004", ("1004",), 10.0, 0.0),
    ("fax CNG 1100", ("1100",), 0.5, 3.0),
    ("answer tone 2100", ("2100",), 3.3, 0.0),
)


def tone_materials() -> Iterator[tuple[str, FloatArray]]:
    """Sox-made sweeps and call-progress tones, each tone at the synthetic base level."""
    version = _tool_version("sox")
    for name, tones, arguments in _sweep_recipes():
        made = _cached(("synth", version, *arguments), partial(_sox_synth, arguments))
        yield name, _normalised(made, tones)
    for name, frequencies, on_s, off_s in _CALL_PROGRESS:
        total = 12.0
        arguments = (str(total), *[part for f in frequencies for part in ("sine", f)])
        made = _cached(("synth", version, *arguments), partial(_sox_synth, arguments))
        level = _normalised(made, len(frequencies))
        yield name, _cadenced(on_s, off_s, total, level) if off_s else level


def _near_dtmf_pair(frequencies: Sequence[float], margin: float = 0.035) -> bool:
    """Whether some partial lies within ``margin`` of a row and another within it of a column."""

    def near(group: Sequence[float]) -> bool:
        return any(abs(f / g - 1.0) < margin for f in frequencies for g in group)

    return near(ROW_FREQUENCIES) and near(COLUMN_FREQUENCIES)


def _organ_note(
    fundamental: float, seconds: float, rng: np.random.Generator, harmonics: int
) -> tuple[FloatArray, list[float]]:
    """A note with decaying harmonics and a slow vibrato (±0.6 %); returns its partials too."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    vibrato = 1.0 + 0.006 * np.sin(2 * np.pi * rng.uniform(4.0, 6.5) * t)
    phase = 2 * np.pi * fundamental * np.cumsum(vibrato) / SAMPLE_RATE
    note = np.zeros_like(t)
    partials = []
    for harmonic in range(1, harmonics + 1):
        note += np.sin(harmonic * phase + rng.uniform(0, 2 * np.pi)) / harmonic**1.5
        partials.append(fundamental * harmonic)
    return note, partials


def chord_materials(*, quick: bool = False) -> Iterator[tuple[str, FloatArray]]:
    """Organ-like chords and pure two-tone pairs near (never within 3.5 % of) DTMF pairs.

    Equal-tempered dyads and triads are drawn at random; any chord whose partials come within
    3.5 % of a row *and* a column frequency at once is skipped, because that would be a real
    key press (pure F5 + F#6, for one, is key 3 within 0.2 %).
    """
    rng = np.random.default_rng(1633)
    midi_notes = np.arange(53, 92)  # F3 … G6
    made = 0
    wanted = 12 if quick else 60
    while made < wanted:
        chord_size = int(rng.choice((2, 3)))
        notes = rng.choice(midi_notes, size=chord_size, replace=False)
        harmonics = int(rng.choice((1, 3, 6)))
        fundamentals = [440.0 * 2.0 ** ((n - 69) / 12.0) for n in sorted(notes)]
        voices = [_organ_note(f, 2.0, rng, harmonics) for f in fundamentals]
        partials = [p * s for _, ps in voices for p in ps for s in (0.994, 1.006)]
        if _near_dtmf_pair([p for p in partials if p < 3900]):
            continue
        made += 1
        label = "+".join(f"{f:.0f}" for f in fundamentals)
        yield f"chord {label} Hz x{harmonics}", _normalised(sum(v for v, _ in voices), chord_size)
    t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    for row in ROW_FREQUENCIES:
        for column in COLUMN_GAPS:
            yield f"pair {row}+{column} Hz", _normalised(_two_sines(row, column, t), 2)
    for row in ROW_GAPS:
        for column in COLUMN_FREQUENCIES:
            yield f"pair {row}+{column} Hz", _normalised(_two_sines(row, column, t), 2)


def _two_sines(first: float, second: float, t: FloatArray) -> FloatArray:
    return np.asarray(np.sin(2 * np.pi * first * t) + np.sin(2 * np.pi * second * t + 1.0))


# --------------------------------------------------------------------------- talk-off corpus

#: Gains (dB) applied to every talk-off item; every gain is µ-law, the 0 dB copy also A-law.
TALKOFF_GAINS_DB: Final = (6.0, 0.0, -10.0, -20.0)
QUICK_TALKOFF_GAINS_DB: Final = (6.0, 0.0, -10.0)


def talkoff_materials(*, quick: bool = False) -> Iterator[tuple[str, str, npt.ArrayLike]]:
    """``(category, name, audio at 0 dB gain)`` for every talk-off source."""
    yield "speech", "asterisk prompts", prompts_material(quick=quick)
    for path in _music_files(quick):
        yield "music", path.stem, music_material(path, max_seconds=180 if quick else None)
    yield "music", "music pitch +400", music_variant(quick=quick)
    yield "tts", "espeak-ng", tts_material(quick=quick)
    for effect, variant in speech_variants(quick=quick):
        yield "speech-variant", f"prompts {effect}", variant
    for name, tones in tone_materials():
        yield "tones", name, tones
    for name, chord in chord_materials(quick=quick):
        yield "chords", name, chord


def talkoff_clips(*, quick: bool = False) -> Iterator[Clip]:
    """Every talk-off item at every gain through G.711; a correct receiver reports nothing."""
    gains = QUICK_TALKOFF_GAINS_DB if quick else TALKOFF_GAINS_DB
    for category, name, audio in talkoff_materials(quick=quick):
        base = np.asarray(audio, dtype=np.float64)
        for gain in gains:
            scaled = base * 10.0 ** (gain / 20.0)
            yield Clip(f"{name} {gain:+.0f} dB ulaw", category, line_roundtrip(scaled, "ulaw"))
            if gain == 0.0:
                yield Clip(f"{name} {gain:+.0f} dB alaw", category, line_roundtrip(scaled, "alaw"))


# --------------------------------------------------------------------------- synthetic cases

#: Leading silences (samples) that move a tone's onset through a 102-sample analysis block.
START_OFFSETS: Final = (0, 29, 58, 87)
_LEAD: Final = 400
_TAIL: Final = 1600


def _framed(
    name: str, group: str, tone: npt.ArrayLike, expected: str, offset: int, codec: str = "ulaw"
) -> Clip:
    """Put ``tone`` after ``_LEAD + offset`` samples of silence and before a silent tail."""
    lead = _LEAD + offset
    audio = np.concatenate([np.zeros(lead), np.asarray(tone, dtype=np.float64), np.zeros(_TAIL)])
    onsets = (lead,) if len(expected) == 1 else ()
    return Clip(f"{name} @{offset} {codec}", group, line_roundtrip(audio, codec), expected, onsets)


def _key_cases(group: str, cases: Sequence[tuple[str, Int16Array | FloatArray, str]]) -> list[Clip]:
    """Each ``(name, audio, expected)`` at every start offset, µ-law; A-law at 0."""
    clips = []
    for name, audio, expected in cases:
        for offset in START_OFFSETS:
            clips.append(_framed(name, group, audio, expected, offset))
        clips.append(_framed(name, group, audio, expected, START_OFFSETS[1], "alaw"))
    return clips


def _with_noise(tone: Int16Array, snr_db: float, seed: int) -> FloatArray:
    signal = tone.astype(np.float64)
    noise_power = np.mean(signal**2) * 10.0 ** (-snr_db / 10.0)
    noise = np.random.default_rng(seed).normal(0.0, np.sqrt(noise_power), len(signal))
    return np.asarray(signal + noise)


def _interrupted(key: str, gap_ms: float) -> FloatArray:
    tone = generate_tone(key, 200, level_dbm0=-10.0).astype(np.float64)
    start = 800
    tone[start : start + int(gap_ms * SAMPLE_RATE / 1000)] = 0.0
    return tone


def must_accept_clips() -> list[Clip]:
    """Signals a Q.24 receiver must decode exactly (dtmf.md §2, "must detect" column)."""
    rng = np.random.default_rng(941)
    cases: list[tuple[str, Int16Array | FloatArray, str]] = []
    for level in (-4.0, -7.0, -10.0):
        sequence = generate_sequence(
            ALL_KEYS_IN_ORDER, on_ms=50, off_ms=50, level_dbm0=level, seed=int(level) + 100
        )
        cases.append((f"all keys 50/50 ms {level:.0f} dBm0", sequence, ALL_KEYS_IN_ORDER))
    for key in ALL_KEYS_IN_ORDER:
        for offset in ((1.5, 1.5), (-1.5, -1.5), (1.5, -1.5), (-1.5, 1.5), (1.5, 0.0), (0.0, -1.5)):
            tone = generate_tone(key, 60, freq_offset_pct=offset)
            cases.append((f"key {key} offset {offset[0]:+}/{offset[1]:+} %", tone, key))
    for level in (0.0, -5.0, -10.0, -15.0, -20.0, -25.0):
        for key in "159#D":
            tone = generate_tone(key, 60, level_dbm0=level)
            cases.append((f"key {key} {level:.0f} dBm0", tone, key))
    for twist in (8.0, 6.0, 4.0, -2.0, -4.0):
        for key in "3*0C":
            # The mean level of -14 dBm0 keeps the weaker tone at or above -18 dBm0.
            tone = generate_tone(key, 60, level_dbm0=-14.0, twist_db=twist)
            cases.append((f"key {key} twist {twist:+.0f} dB", tone, key))
    for duration in (40, 45, 50, 60, 80):
        for key in "2580":
            cases.append((f"key {key} {duration} ms", generate_tone(key, duration), key))
    for key in "48#":
        cases.append((f"key {key} held 2 s", generate_tone(key, 2000), key))
        cases.append(
            (
                f"key {key}{key} 40/40 ms",
                generate_sequence(key * 2, on_ms=40, off_ms=40, seed=3),
                key * 2,
            )
        )
        for gap in (5.0, 10.0):
            cases.append((f"key {key} 200 ms, {gap:.0f} ms gap", _interrupted(key, gap), key))
    for index, key in enumerate("1470"):
        tone = generate_tone(key, 80, level_dbm0=-15.0)
        for snr in (15.0, 20.0):
            cases.append((f"key {key} S/N {snr:.0f} dB", _with_noise(tone, snr, index), key))
    for on_ms, off_ms in ((50, 50), (50, 43)):
        keys = "".join(rng.choice(list("0123456789*#"), size=20))
        sequence = generate_sequence(keys, on_ms=on_ms, off_ms=off_ms, seed=on_ms + off_ms)
        cases.append((f"20 keys {on_ms}/{off_ms} ms", sequence, keys))
    return _key_cases("must-accept", cases)


def _tone_set(frequencies: Sequence[float], level_dbm0: float, duration_ms: float) -> FloatArray:
    """Equal-level sines (local synth: the key generator only makes valid key pairs)."""
    t = np.arange(int(duration_ms * SAMPLE_RATE / 1000)) / SAMPLE_RATE
    amplitude = level_to_amplitude(level_dbm0)
    return np.asarray(
        sum(amplitude * np.sin(2 * np.pi * f * t + i) for i, f in enumerate(frequencies))
    )


def must_reject_clips() -> list[Clip]:
    """Signals a Q.24 receiver must not report (dtmf.md §2, "must NOT detect" column)."""
    cases: list[tuple[str, Int16Array | FloatArray, str]] = []
    for key in ALL_KEYS_IN_ORDER:
        for pct in (3.5, -3.5, 5.0, -5.0):
            for offset in ((pct, pct), (pct, 0.0), (0.0, pct)):
                tone = generate_tone(key, 80, freq_offset_pct=offset)
                cases.append((f"key {key} offset {offset[0]:+}/{offset[1]:+} %", tone, ""))
    for duration in (15, 20, 23):
        for key in "2580":
            cases.append((f"key {key} {duration} ms", generate_tone(key, duration), ""))
    for level in (-55.0, -60.0):
        for key in "159#":
            cases.append(
                (f"key {key} {level:.0f} dBm0", generate_tone(key, 80, level_dbm0=level), "")
            )
    for twist in (14.0, -10.0):
        for key in "3*0C":
            tone = generate_tone(key, 80, level_dbm0=-10.0, twist_db=twist)
            cases.append((f"key {key} twist {twist:+.0f} dB", tone, ""))
    tone_sets: list[tuple[float, ...]] = [(f,) for f in (*ROW_FREQUENCIES, *COLUMN_FREQUENCIES)]
    tone_sets += [(697.0, 852.0), (770.0, 941.0), (1209.0, 1477.0), (1336.0, 1633.0)]
    tone_sets += [(697.0, 1209.0, 1336.0), (852.0, 941.0, 1477.0), (770.0, 1336.0, 1633.0)]
    for frequencies in tone_sets:
        label = "+".join(f"{f:.0f}" for f in frequencies)
        cases.append((f"tones {label} Hz", _tone_set(frequencies, -10.0, 100), ""))
    return _key_cases("must-reject", cases)


# --------------------------------------------------------------------------- talk-down

#: Active speech levels (dBm0) mixed under keys sent at -10 dBm0 per tone.
TALKDOWN_SPEECH_DBM0: Final = (-40.0, -30.0, -25.0, -20.0, -15.0)
TALKDOWN_KEY_DBM0: Final = -10.0


def talkdown_clip(speech_dbm0: float, *, keys: int = 100, seed: int = 697) -> Clip:
    """``keys`` random key presses (70 ms on, 80 ms off) mixed with prompts at ``speech_dbm0``."""
    rng = np.random.default_rng(seed)
    sequence = "".join(rng.choice(list("0123456789*#"), size=keys))
    on_ms, off_ms, lead_ms = 70, 80, 100
    tones = generate_sequence(
        sequence,
        on_ms=on_ms,
        off_ms=off_ms,
        lead_ms=lead_ms,
        level_dbm0=TALKDOWN_KEY_DBM0,
        seed=seed,
    )
    speech = _continuous_speech(len(tones))
    mixed = tones.astype(np.float64) + scale_to_level(speech, speech_dbm0)
    step = (on_ms + off_ms) * SAMPLE_RATE // 1000
    onsets = tuple(lead_ms * SAMPLE_RATE // 1000 + i * step for i in range(keys))
    name = f"talk-down speech {speech_dbm0:.0f} dBm0"
    return Clip(name, "talk-down", line_roundtrip(mixed, "ulaw"), sequence, onsets)


def _continuous_speech(length: int) -> Int16Array:
    """Real speech with the silences between prompts squeezed out, ``length`` samples long."""
    prompts = prompts_material(quick=True).astype(np.float64)
    frames = prompts[: len(prompts) // 160 * 160].reshape(-1, 160)
    loud = frames[np.mean(frames**2, axis=1) > level_to_amplitude(-45.0) ** 2 / 2]
    speech = loud.reshape(-1)
    repeats = int(np.ceil(length / len(speech)))
    return np.tile(speech, repeats)[:length].astype(np.int16)


def talkdown_clips(levels: Sequence[float] = TALKDOWN_SPEECH_DBM0) -> list[Clip]:
    """One :func:`talkdown_clip` per speech level."""
    return [talkdown_clip(level) for level in levels]


# --------------------------------------------------------------------------- latency


def latency_clips(*, per_key: int = 8, seed: int = 1209) -> list[Clip]:
    """Every key, 100 ms at -10 dBm0, at ``per_key`` random onsets within a 20 ms frame."""
    rng = np.random.default_rng(seed)
    clips = []
    for key in ALL_KEYS_IN_ORDER:
        for _ in range(per_key):
            offset = int(rng.integers(0, 160))
            phase = (float(rng.uniform(0, 6.3)), float(rng.uniform(0, 6.3)))
            tone = generate_tone(key, 100, phase=phase)
            clips.append(_framed(f"latency {key}", "latency", tone, key, offset))
    return clips


# --------------------------------------------------------------------------- scoring


def matched_keys(expected: str, detected: str) -> int:
    """Length of the longest common subsequence: expected keys found, in order."""
    previous = [0] * (len(detected) + 1)
    for want in expected:
        current = [0]
        for index, got in enumerate(detected):
            best = previous[index] + 1 if want == got else max(previous[index + 1], current[-1])
            current.append(best)
        previous = current
    return previous[-1]
