"""Offline streaming STT with a Vosk (Kaldi) model read from a directory.

Install with ``pip install 'voxflow[vosk]'`` and point ``model_path`` at an unpacked Vosk model
(``am/``, ``conf/``, ``graph/``); nothing is downloaded. A model serves one language, so
``language`` (when given) must match the settings' ``language`` by its base code (``ko-KR`` and
``ko`` match), else :class:`SttNotConfiguredError` (the listener then retries without one).

The model loads once per provider; each utterance gets its own ``KaldiRecognizer`` at 8 kHz
(the library resamples to the model's rate), fed as the call goes, so :meth:`VoskRecognizer.partial`
is the live best guess and ``finish`` costs little more than the last frames.

Hints (``custom_vocabulary``) become a grammar (a JSON list of phrases) when ``grammar`` is on
(the default): the decoder then only chooses among those phrases, which on a small model is
much more reliable than free speech (see ``tests/speech/test_stt_vosk.py``). Hint words the
model's vocabulary lacks are dropped (a phrase with none left is dropped); with no usable hint
the recognizer runs free-form. Speech outside the grammar is forced onto it unless the model
knows ``[unk]``, which is then added as the way out.

Transcripts are lower case with punctuation dropped; the confidence is the mean of the words'
confidences.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from voxflow.errors import SttNotConfiguredError, SttProviderError
from voxflow.media.audio import Int16Array
from voxflow.speech.stt import SAMPLE_RATE, Transcript, as_samples
from voxflow.speech.whisper_stt import base_language, check_model_dir, clean_text

logger = logging.getLogger(__name__)

PIP_HINT: Final = "pip install 'voxflow[vosk]'"
_MODEL_PARTS: Final = ("am", "conf")
_UNKNOWN: Final = "[unk]"
_quiet_lock = threading.Lock()


@dataclass(frozen=True)
class VoskSettings:
    """The model directory, its language (``None``: accept any) and whether hints constrain."""

    model_path: str | None = None
    language: str | None = None
    grammar: bool = True


def _import_vosk() -> Any:
    try:
        import vosk
    except ImportError:
        raise SttNotConfiguredError(f"vosk STT needs the vosk package: {PIP_HINT}") from None
    with _quiet_lock:
        vosk.SetLogLevel(-1)
    return vosk


class VoskProvider:
    """Vosk on a local model directory; one model, a recognizer per utterance."""

    name = "vosk"

    def __init__(self, settings: VoskSettings | None) -> None:
        if settings is None:
            raise SttNotConfiguredError("vosk STT is not configured (no model_path given)")
        self.settings = settings
        directory = check_model_dir(settings.model_path, self.name, _MODEL_PARTS)
        self._vosk = _import_vosk()
        try:
            self._model: Any = self._vosk.Model(model_path=str(directory))
        except Exception as exc:  # the library raises a bare Exception on a bad model
            raise SttNotConfiguredError(
                f"vosk STT: cannot load the model at {str(directory)!r}: {exc}"
            ) from None
        self._has_unknown = self.knows(_UNKNOWN)

    def knows(self, word: str) -> bool:
        """Whether the model's vocabulary has ``word``."""
        return int(self._model.vosk_model_find_word(word)) >= 0

    def grammar_phrases(self, hints: Sequence[str]) -> tuple[str, ...]:
        """Hints as phrases of known words (unknown words dropped, duplicates once)."""
        phrases: list[str] = []
        for hint in hints:
            words = clean_text(str(hint)).split()
            known = [w for w in words if self.knows(w)]
            if len(known) < len(words):
                logger.info("vosk: hint %r has words the model lacks: %s", hint,
                            [w for w in words if w not in known])
            phrase = " ".join(known)
            if phrase and phrase not in phrases:
                phrases.append(phrase)
        return tuple(phrases)

    def _check_language(self, language: str | None) -> None:
        wanted, have = base_language(language), base_language(self.settings.language)
        if wanted is not None and have is not None and wanted != have:
            raise SttNotConfiguredError(
                f"vosk STT: the model at {self.settings.model_path!r} is for {have!r}; "
                f"language {language!r} needs another model or provider"
            )

    def start(self, language: str | None = None, hints: Sequence[str] = ()) -> VoskRecognizer:
        """A streaming recognizer, constrained to the hint phrases when grammar is on."""
        self._check_language(language)
        phrases = self.grammar_phrases(hints) if self.settings.grammar else ()
        try:
            if phrases:
                grammar = [*phrases, _UNKNOWN] if self._has_unknown else list(phrases)
                recognizer = self._vosk.KaldiRecognizer(
                    self._model, float(SAMPLE_RATE), json.dumps(grammar, ensure_ascii=False)
                )
            else:
                recognizer = self._vosk.KaldiRecognizer(self._model, float(SAMPLE_RATE))
            recognizer.SetWords(True)
        except Exception as exc:  # bare Exception from the library
            raise SttProviderError(f"vosk STT: cannot start: {exc}", self.name) from None
        return VoskRecognizer(recognizer, phrases)


class VoskRecognizer:
    """One utterance on its own ``KaldiRecognizer``."""

    def __init__(self, recognizer: Any, phrases: tuple[str, ...]) -> None:
        self.phrases = phrases
        self._recognizer: Any = recognizer
        self._done: list[str] = []  # text of segments the decoder already closed (pauses)
        self._confidences: list[float] = []
        self._final: Transcript | None = None

    def _live(self) -> Any:
        if self._recognizer is None:
            raise SttProviderError("vosk STT: the utterance is already finished", VoskProvider.name)
        return self._recognizer

    def _keep(self, answer: str) -> None:
        result = json.loads(answer)
        text = _text(result)
        if text:
            self._done.append(text)
        self._confidences.extend(
            float(word.get("conf", 0.0))
            for word in result.get("result", [])
            if word.get("word") != _UNKNOWN
        )

    def feed(self, samples: Int16Array) -> None:
        """Decode the new samples (a pause may close a segment; its text is kept)."""
        recognizer = self._live()
        pcm = as_samples(samples)
        if pcm.size and recognizer.AcceptWaveform(pcm.tobytes()):
            self._keep(recognizer.Result())

    def partial(self) -> str:
        """Closed segments plus the current partial hypothesis."""
        if self._final is not None:
            return self._final.text
        answer = json.loads(self._live().PartialResult())
        current = clean_text(_drop_unknown(str(answer.get("partial", ""))))
        return " ".join([*self._done, current]).strip()

    def finish(self) -> Transcript:
        """End the utterance; the same transcript is returned when called again."""
        if self._final is None:
            recognizer = self._live()
            try:
                self._keep(recognizer.FinalResult())
            finally:
                self._recognizer = None
            text = " ".join(self._done)
            scores = self._confidences if text else []
            confidence = sum(scores) / len(scores) if scores else 0.0
            self._final = Transcript(text, min(1.0, max(0.0, confidence)))
        return self._final


def _drop_unknown(text: str) -> str:
    return " ".join(w for w in text.split() if w != _UNKNOWN)


def _text(result: dict[str, Any]) -> str:
    return clean_text(_drop_unknown(str(result.get("text", ""))))
