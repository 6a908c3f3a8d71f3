"""The offline default STT: CMU pocketsphinx with the en-US model its wheel ships.

The acoustic model is 16 kHz only, so call audio is upsampled (streaming, per frame) before the
decoder sees it. Everything above 4 kHz is missing from phone audio, and an empty band is
something the model never heard in training: fricatives such as the "s" of "sales" vanished.
A faint, seeded noise floor in the 4–8 kHz band (about -53 dBFS) makes that band look like a
quiet room again; on espeak speech through G.711 it turned "i want to talk to" into
"i want to talk to sales". Three search modes:

- ``grammar`` (the default whenever the call gave hints): a JSGF grammar of the hint phrases,
  each optionally led by a carrier such as "I want to talk to" and followed by "please" /
  "thank you". Measured best on phone audio (see ``benchmarks/speech_bench.py``); speech outside
  the grammar is forced onto it or ends on a carrier without a hint, so check the words.
- ``keywords``: keyword spotting of the hints in free speech (a threshold per phrase);
  misses often on synthetic voices.
- ``lm``: the bundled general English language model, free speech, no hints needed.

Decoders take about 0.2 s to load, so the provider keeps idle ones in a pool and each
recognizer borrows one for its utterance. Each :meth:`PocketsphinxRecognizer.feed` runs the
search on just the new audio, so the final result costs little more than the last frame.
Every utterance starts from the model's initial cepstral mean rather than the previous caller's,
so a result depends on the utterance alone, not on which pooled decoder it got.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
import re
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pocketsphinx
from scipy.signal import butter, sosfilt, sosfilt_zi

from voxflow.errors import ConfigError, SttNotConfiguredError, SttProviderError
from voxflow.media.audio import Int16Array, Resampler
from voxflow.speech.stt import Transcript, as_samples

logger = logging.getLogger(__name__)

MODEL_RATE: Final = 16000
HIGH_BAND_NOISE_RMS: Final = 100.0
_HIGH_BAND: Final = butter(8, 4200, "highpass", fs=MODEL_RATE, output="sos")
_WORD = re.compile(r"[a-z']+")
# Ways callers lead into a menu choice; optional, so a bare hint matches too.
_CARRIERS: Final = (
    "[i] ([would like | want | need] [to] (talk | speak) to | need | want) [a | an | the]"
    " | [please] (connect | put) me (to | through to) [a | an | the]"
    " | please"
)
_TAILS: Final = "please | thank you | thanks"


class PocketsphinxMode(enum.StrEnum):
    """Search mode; ``auto`` is grammar with hints, the language model without."""

    AUTO = "auto"
    GRAMMAR = "grammar"
    KEYWORDS = "keywords"
    LM = "lm"


@dataclass(frozen=True)
class PocketsphinxSettings:
    """Mode, keyword threshold, pool size and (optionally) another model directory."""

    mode: PocketsphinxMode = PocketsphinxMode.AUTO
    keyword_threshold: float = 1e-30
    max_idle_decoders: int = 4
    model_dir: str | None = None

    def __post_init__(self) -> None:
        try:
            PocketsphinxMode(self.mode)
        except ValueError:
            modes = ", ".join(m.value for m in PocketsphinxMode)
            raise ConfigError(f"pocketsphinx mode {self.mode!r} is not one of {modes}") from None
        if not 0.0 < self.keyword_threshold < 1.0:
            raise ConfigError(
                f"pocketsphinx keyword_threshold must be in (0, 1), got {self.keyword_threshold}"
            )
        if self.max_idle_decoders < 0:
            raise ConfigError(
                f"pocketsphinx max_idle_decoders must be ≥ 0, got {self.max_idle_decoders}"
            )


def hint_phrases(hints: Sequence[str], known: Any) -> tuple[str, ...]:
    """Hints as lower-case phrases of dictionary words; phrases with unknown words are dropped.

    ``known(word)`` says whether the dictionary has the word.
    """
    phrases: list[str] = []
    for hint in hints:
        words = _WORD.findall(str(hint).lower())
        if not words:
            continue
        missing = [w for w in words if not known(w)]
        if missing:
            logger.info("pocketsphinx: dropping hint %r, not in the dictionary: %s", hint, missing)
            continue
        phrase = " ".join(words)
        if phrase not in phrases:
            phrases.append(phrase)
    return tuple(phrases)


def grammar_for(phrases: Sequence[str]) -> str:
    """The JSGF grammar of the grammar mode for these hint phrases."""
    choices = " | ".join(phrases)
    return (
        "#JSGF V1.0;\ngrammar hints;\n"
        "public <utterance> = [<lead>] <hint> [<tail>];\n"
        f"<lead> = {_CARRIERS};\n<tail> = {_TAILS};\n<hint> = {choices};\n"
    )


def _check_language(language: str | None) -> None:
    if language and not language.lower().startswith("en"):
        raise SttNotConfiguredError(
            f"pocketsphinx STT has only the bundled English (en-US) model; "
            f"language {language!r} needs another provider"
        )


class _DecoderPool:
    """Idle decoders, each remembering the grammar/keyword searches it already built."""

    def __init__(self, settings: PocketsphinxSettings) -> None:
        self._settings = settings
        self._idle: list[tuple[Any, set[str]]] = []
        self._lock = threading.Lock()
        self.initial_cmn: str | None = None

    def _new(self) -> tuple[Any, set[str]]:
        config: dict[str, Any] = {"loglevel": "FATAL"}
        if self._settings.model_dir is not None:
            model = self._settings.model_dir
            config.update(
                hmm=os.path.join(model, "en-us"),
                lm=os.path.join(model, "en-us.lm.bin"),
                dict=os.path.join(model, "cmudict-en-us.dict"),
            )
        try:
            decoder = pocketsphinx.Decoder(**config)
        except (RuntimeError, ValueError) as exc:
            raise SttNotConfiguredError(f"pocketsphinx STT: cannot load the model: {exc}") from None
        if self.initial_cmn is None:
            self.initial_cmn = decoder.get_cmn()
        return decoder, {"_default"}

    def borrow(self) -> tuple[Any, set[str]]:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._new()

    def give_back(self, entry: tuple[Any, set[str]]) -> None:
        with self._lock:
            if len(self._idle) < self._settings.max_idle_decoders:
                self._idle.append(entry)


class HighBandFill:
    """Adds the seeded, high-passed noise floor to upsampled audio, chunk by chunk."""

    def __init__(self, rms: float = HIGH_BAND_NOISE_RMS, seed: int = 0) -> None:
        self._rms = rms
        self._rng = np.random.default_rng(seed)
        self._state = sosfilt_zi(_HIGH_BAND) * 0.0

    def process(self, samples: Int16Array) -> Int16Array:
        """``samples`` (16 kHz) plus the next stretch of the noise floor."""
        noise, self._state = sosfilt(
            _HIGH_BAND, self._rng.normal(0.0, self._rms, samples.size), zi=self._state
        )
        mixed = samples.astype(np.float64) + noise
        out: Int16Array = np.clip(np.rint(mixed), -32768, 32767).astype(np.int16)
        return out


class PocketsphinxProvider:
    """Offline en-US recognition; hints (``custom_vocabulary``) select the grammar mode."""

    name = "pocketsphinx"

    def __init__(self, settings: PocketsphinxSettings | None = None) -> None:
        self.settings = settings if settings is not None else PocketsphinxSettings()
        self._pool = _DecoderPool(self.settings)
        # Load one decoder now: a broken install fails at configuration, not mid-call.
        self._pool.give_back(self._pool.borrow())

    def mode_for(self, phrases: Sequence[str]) -> PocketsphinxMode:
        """The mode a recognizer with these (usable) hint phrases runs in."""
        mode = PocketsphinxMode(self.settings.mode)
        if mode is PocketsphinxMode.AUTO:
            return PocketsphinxMode.GRAMMAR if phrases else PocketsphinxMode.LM
        if mode is not PocketsphinxMode.LM and not phrases:
            logger.info("pocketsphinx: %s mode without usable hints, using the LM", mode.value)
            return PocketsphinxMode.LM
        return mode

    def start(
        self, language: str | None = None, hints: Sequence[str] = ()
    ) -> PocketsphinxRecognizer:
        """Borrow a decoder, set up the search for ``hints``, start the utterance."""
        _check_language(language)
        entry = self._pool.borrow()
        decoder, searches = entry
        try:
            phrases = hint_phrases(hints, lambda w: decoder.lookup_word(w) is not None)
            mode = self.mode_for(phrases)
            search = self._activate(decoder, searches, mode, phrases)
            decoder.set_cmn(self._pool.initial_cmn)
            decoder.start_utt()
        except RuntimeError as exc:
            raise SttProviderError(f"pocketsphinx STT: cannot start: {exc}", self.name) from None
        return PocketsphinxRecognizer(self, entry, mode, search)

    def _activate(
        self, decoder: Any, searches: set[str], mode: PocketsphinxMode, phrases: Sequence[str]
    ) -> str:
        if mode is PocketsphinxMode.LM:
            decoder.activate_search("_default")
            return "_default"
        key = hashlib.sha1("\n".join([mode.value, *phrases]).encode()).hexdigest()[:16]
        name = f"{mode.value}_{key}"
        if name not in searches:
            if mode is PocketsphinxMode.GRAMMAR:
                decoder.add_jsgf_string(name, grammar_for(phrases))
            else:
                self._add_keywords(decoder, name, phrases)
            searches.add(name)
        decoder.activate_search(name)
        return name

    def _add_keywords(self, decoder: Any, name: str, phrases: Sequence[str]) -> None:
        # The decoder reads keyword lists only from a file.
        threshold = f"{self.settings.keyword_threshold:.0e}"
        lines = "".join(f"{phrase} /{threshold}/\n" for phrase in phrases)
        with tempfile.NamedTemporaryFile("w", suffix=".kws", delete=False) as file:
            file.write(lines)
        try:
            decoder.add_kws(name, file.name)
        finally:
            os.unlink(file.name)

    def release(self, entry: tuple[Any, set[str]]) -> None:
        """Return a decoder after its utterance (used by the recognizer)."""
        self._pool.give_back(entry)


class PocketsphinxRecognizer:
    """One utterance on a borrowed decoder; finishing returns the decoder to the pool."""

    def __init__(
        self,
        provider: PocketsphinxProvider,
        entry: tuple[Any, set[str]],
        mode: PocketsphinxMode,
        search: str,
    ) -> None:
        self.mode = mode
        self.search = search
        self._provider = provider
        self._entry: tuple[Any, set[str]] | None = entry
        self._upsampler = Resampler(8000, MODEL_RATE)
        self._fill = HighBandFill()
        self._final: Transcript | None = None

    def _decoder(self) -> Any:
        if self._entry is None:
            raise SttProviderError(
                "pocketsphinx STT: the utterance is already finished", PocketsphinxProvider.name
            )
        return self._entry[0]

    def feed(self, samples: Int16Array) -> None:
        """Upsample and decode the new samples."""
        decoder = self._decoder()
        upsampled = self._upsampler.process(as_samples(samples))
        if upsampled.size:
            decoder.process_raw(self._fill.process(upsampled).tobytes(), False, False)

    def partial(self) -> str:
        """The current best hypothesis."""
        if self._final is not None:
            return self._final.text
        hypothesis = self._decoder().hyp()
        return _clean(hypothesis.hypstr) if hypothesis is not None else ""

    def finish(self) -> Transcript:
        """End the utterance; the same transcript is returned when called again."""
        if self._final is not None:
            return self._final
        decoder = self._decoder()
        try:
            tail = self._upsampler.flush()
            if tail.size:
                decoder.process_raw(self._fill.process(tail).tobytes(), False, False)
            decoder.end_utt()
            hypothesis = decoder.hyp()
        except RuntimeError as exc:
            raise SttProviderError(
                f"pocketsphinx STT: decoding failed: {exc}", PocketsphinxProvider.name
            ) from None
        finally:
            entry, self._entry = self._entry, None
            if entry is not None:
                self._provider.release(entry)
        if hypothesis is None:
            self._final = Transcript("", 0.0)
        else:
            confidence = min(1.0, max(0.0, float(hypothesis.prob)))
            self._final = Transcript(_clean(hypothesis.hypstr), confidence)
        return self._final


def _clean(text: str) -> str:
    # Keyword spotting reports each hit followed by spaces; fillers come as <sil>, [noise] ...
    return " ".join(w for w in text.split() if not w.startswith(("<", "[", "+")))
