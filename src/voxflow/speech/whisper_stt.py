"""Offline STT with a Whisper model in CTranslate2 form (faster-whisper), read from a directory.

Install with ``pip install 'voxflow[whisper]'`` and point ``model_path`` at a converted model
directory (``model.bin``, ``config.json``, ``tokenizer.json``, ``vocabulary.txt``); nothing is
downloaded. The model loads once per provider; recognizers share it.

Whisper hears 16 kHz audio and decodes whole windows, so the recognizer buffers the caller's
8 kHz utterance and transcribes it once, at :meth:`WhisperRecognizer.finish`.
:meth:`WhisperRecognizer.partial` returns "": every decode pads its input to a 30 s window, so
its cost does not shrink with the audio (about 0.45 s for tiny.en on two cores, whether the
utterance is 1 s or 10 s). Re-decoding every 100 ms feed would be several times slower than
real time and would hold up the call's recognizer thread; barge-in on partials needs a
streaming provider (pocketsphinx, vosk).

Hints (``custom_vocabulary``) go to faster-whisper as ``hotwords`` (a prompt of the phrases
before the audio). Languages: ``en-US`` → ``en``. An English-only model (``*.en``) refuses any
other language with :class:`SttNotConfiguredError` (the listener then retries in the
provider's default language and notes it); a multilingual model takes any language its
tokenizer knows and detects the language when none is given.

Transcripts come out lower case without punctuation (like pocketsphinx's); the confidence is
``exp`` of the segments' average log-probability per token.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from voxflow.errors import ConfigError, SttNotConfiguredError, SttProviderError
from voxflow.media.audio import Int16Array, resample
from voxflow.speech.stt import SAMPLE_RATE, BufferedUtterance, Transcript

MODEL_RATE: Final = 16000
PIP_HINT: Final = "pip install 'voxflow[whisper]'"
_MODEL_FILES: Final = ("model.bin", "config.json")
_PUNCTUATION = re.compile(r"[^\w\s']")


@dataclass(frozen=True)
class WhisperSettings:
    """Where the model is and how to run it (CPU int8 and few threads suit a call server)."""

    model_path: str | None = None
    device: str = "cpu"
    compute_type: str = "int8"
    beam_size: int = 5
    cpu_threads: int = 2
    max_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ConfigError(f"whisper beam_size must be ≥ 1, got {self.beam_size}")
        if self.cpu_threads < 0:
            raise ConfigError(f"whisper cpu_threads must be ≥ 0, got {self.cpu_threads}")
        if not 0 < self.max_seconds <= 30:
            raise ConfigError(f"whisper max_seconds must be in (0, 30], got {self.max_seconds}")


def base_language(language: str | None) -> str | None:
    """``en-US`` → ``en``; ``None`` or "" stays ``None``."""
    if not language:
        return None
    return language.strip().replace("_", "-").split("-")[0].lower() or None


def clean_text(text: str) -> str:
    """Lower case, punctuation dropped (apostrophes kept), single spaces."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def check_model_dir(path: str | None, provider: str, files: Sequence[str]) -> Path:
    """The model directory, or SttNotConfiguredError naming the path and what is missing."""
    if not path:
        raise SttNotConfiguredError(f"{provider} STT: no model_path configured (a model directory)")
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise SttNotConfiguredError(
            f"{provider} STT: model path {str(directory)!r} is not a directory"
        )
    missing = [name for name in files if not (directory / name).exists()]
    if missing:
        raise SttNotConfiguredError(
            f"{provider} STT: model path {str(directory)!r} has no {', '.join(missing)}"
        )
    return directory


class WhisperProvider:
    """faster-whisper on a local model directory; one model, many recognizers."""

    name = "whisper"

    def __init__(self, settings: WhisperSettings | None) -> None:
        if settings is None:
            raise SttNotConfiguredError("whisper STT is not configured (no model_path given)")
        self.settings = settings
        directory = check_model_dir(settings.model_path, self.name, _MODEL_FILES)
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise SttNotConfiguredError(
                f"whisper STT needs faster-whisper: {PIP_HINT}"
            ) from None
        try:
            self._model: Any = WhisperModel(
                str(directory),
                device=settings.device,
                compute_type=settings.compute_type,
                cpu_threads=settings.cpu_threads,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise SttNotConfiguredError(
                f"whisper STT: cannot load the model at {str(directory)!r}: {exc}"
            ) from None
        self.multilingual = bool(self._model.model.is_multilingual)
        self.languages: frozenset[str] = (
            frozenset(self._model.supported_languages) if self.multilingual else frozenset({"en"})
        )
        # CTranslate2 runs one decode at a time well; calls queue here instead of oversubscribing.
        self._lock = threading.Lock()

    def language_for(self, language: str | None) -> str | None:
        """The model's language code for a call language (``None``: detect, multilingual only)."""
        code = base_language(language)
        if code is None:
            return None if self.multilingual else "en"
        if code not in self.languages:
            kind = "an English-only model" if not self.multilingual else "this model"
            raise SttNotConfiguredError(
                f"whisper STT: language {language!r} is not supported by {kind} "
                f"({self.settings.model_path})"
            )
        return code

    def start(self, language: str | None = None, hints: Sequence[str] = ()) -> WhisperRecognizer:
        """A recognizer that buffers the utterance and transcribes it when finished."""
        code = self.language_for(language)
        phrases = [" ".join(str(h).split()) for h in hints]
        return WhisperRecognizer(self, code, ", ".join(p for p in phrases if p) or None)

    def transcribe(
        self, samples: Int16Array, language: str | None, hotwords: str | None
    ) -> Transcript:
        """Transcribe a whole 8 kHz utterance."""
        if samples.size == 0:
            return Transcript("", 0.0)
        audio = resample(samples, SAMPLE_RATE, MODEL_RATE).astype(np.float32) / 32768.0
        try:
            with self._lock:
                segments, _info = self._model.transcribe(
                    audio,
                    language=language,
                    beam_size=self.settings.beam_size,
                    hotwords=hotwords,
                    condition_on_previous_text=False,
                    without_timestamps=True,
                    vad_filter=False,
                )
                found = list(segments)
        except (RuntimeError, ValueError) as exc:
            raise SttProviderError(f"whisper STT: decoding failed: {exc}", self.name) from None
        text = clean_text(" ".join(segment.text for segment in found))
        if not text:
            return Transcript("", 0.0)
        logprob = sum(segment.avg_logprob for segment in found) / len(found)
        return Transcript(text, min(1.0, max(0.0, math.exp(logprob))))


class WhisperRecognizer:
    """One utterance: ``feed`` buffers, ``finish`` transcribes (once)."""

    def __init__(self, provider: WhisperProvider, language: str | None, hotwords: str | None):
        self.language = language
        self.hotwords = hotwords
        self._provider = provider
        self._buffer = BufferedUtterance(provider.settings.max_seconds)
        self._final: Transcript | None = None

    def feed(self, samples: Int16Array) -> None:
        """Keep the samples for the final decode."""
        if self._final is not None:
            raise SttProviderError(
                "whisper STT: the utterance is already finished", WhisperProvider.name
            )
        self._buffer.add(samples)

    def partial(self) -> str:
        """"" until finished (see the module docstring for why), then the final text."""
        return self._final.text if self._final is not None else ""

    def finish(self) -> Transcript:
        """Transcribe the utterance; the same transcript is returned when called again."""
        if self._final is None:
            samples = self._buffer.samples()
            self._buffer.chunks.clear()
            self._final = self._provider.transcribe(samples, self.language, self.hotwords)
        return self._final
