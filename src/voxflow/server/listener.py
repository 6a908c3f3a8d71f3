"""``CallListener``: one call's inbound audio turned into the session's listening inputs.

Per inbound 20 ms frame: the WebRTC VAD, the DTMF guard (a key tone is not speech), the echo
rule (against the level of what the call is playing to the caller) and the
:class:`~voxflow.media.vad.TurnDetector`, all on the event loop (microseconds per frame). At
``SpeechStarted`` a recognizer opens for the turn and gets every frame of it (plus a short
pre-roll, since the onset is confirmed a few frames late); partial transcripts go to
``session.partial_transcript`` (barge-in by ``minimum_characters``), the final one at
``TurnEnded`` to ``session.utterance``. The recognizer's CPU work runs on a one-thread executor
of the call's own, so its jobs run in order and never stall the loop (keys, media, other calls).

Grammar hints: the latest ``configure_transcription.custom_vocabulary``; else the words of the
assistant's last ``speak`` (a menu naming "sales" makes "sales" recognisable); else none
(free-form recognition).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np

from voxflow.engine.session import CallSession
from voxflow.errors import MediaError, SttError, SttNotConfiguredError
from voxflow.lines.calls import Call, Int16Array
from voxflow.media.vad import (
    DEFAULT_END_OF_TURN_SILENCE_MS,
    FRAME_MS,
    FRAME_SAMPLES,
    SILENCE_DBFS,
    SpeechStarted,
    TurnDetector,
    TurnEnded,
    TurnSettings,
    WebRtcVad,
    frame_level_dbfs,
    looks_like_dtmf,
    make_vad,
)
from voxflow.protocol import ConfigureTranscriptionAction
from voxflow.server.config import ServeSettings
from voxflow.speech.azure_stt import AzureSttSettings
from voxflow.speech.deepgram import DeepgramSettings
from voxflow.speech.stt import AnyRecognizer, SttProvider, SttRegistry, SttSettings, Transcript
from voxflow.speech.vosk_stt import VoskSettings
from voxflow.speech.whisper_stt import WhisperSettings

log = logging.getLogger(__name__)

Note = Callable[[str, str], None]
"""``(level, message)``: a log line and a call-record entry."""

_FRAME_S: Final = FRAME_MS / 1000
_PRE_ROLL_FRAMES: Final = 10  # 200 ms before the confirmed onset: the first phoneme
_FEED_EVERY: Final = 5  # frames per recognizer job (100 ms): one thread hop, one partial
_ECHO_WINDOW: Final = 10  # outbound frames averaged for the echo rule (200 ms)
_GAP_S: Final = 0.1  # no frame for this long: the line is quiet (the simulated line pauses)
_SILENT_FRAME: Final = np.zeros(FRAME_SAMPLES, dtype=np.int16)
_WORD = re.compile(r"[a-z']+")
_TAG = re.compile(r"<[^>]*>")
_MAX_HINTS: Final = 100


@dataclass(frozen=True)
class ListenSettings:
    """Whether calls listen, with which recognizer, and the default end-of-turn silence.

    ``stt`` configures the providers (model directories, hosted keys); its default provider is
    ``stt_provider``.
    """

    enabled: bool = True
    stt_provider: str = "pocketsphinx"
    end_of_turn_silence_ms: int = DEFAULT_END_OF_TURN_SILENCE_MS
    vad_mode: int = 2
    stt: SttSettings | None = None
    vad: str = "webrtc"

    @classmethod
    def from_serve(cls, settings: ServeSettings) -> ListenSettings:
        """The listening part of ``voxflow serve``'s settings."""
        return cls(settings.listen, settings.stt_provider, settings.end_of_turn_silence_ms,
                   stt=stt_settings(settings), vad=settings.vad)

    def stt_settings(self) -> SttSettings:
        """The providers' settings with ``stt_provider`` as the default."""
        return replace(self.stt or SttSettings(), default_provider=self.stt_provider)


def stt_settings(settings: ServeSettings) -> SttSettings:
    """The STT providers ``voxflow serve``'s settings configure.

    ``stt_model_path`` is the model of ``stt_provider`` when that is whisper or vosk (only that
    one loads: models are large); the hosted providers come with their keys.
    """
    provider = settings.stt_provider.strip().lower()
    path = settings.stt_model_path
    return SttSettings(
        default_provider=settings.stt_provider,
        whisper=WhisperSettings(model_path=path) if provider == "whisper" and path else None,
        vosk=VoskSettings(model_path=path) if provider == "vosk" and path else None,
        deepgram=(DeepgramSettings(api_key=settings.deepgram_api_key)
                  if settings.deepgram_api_key else None),
        azure=(AzureSttSettings(subscription_key=settings.azure_speech_key,
                                region=settings.azure_speech_region)
               if settings.azure_speech_key else None),
    )


_registries: dict[SttSettings, SttRegistry] = {}
_registries_lock = threading.Lock()


def shared_stt_registry(settings: ListenSettings) -> SttRegistry:
    """The process's STT providers, built once per configuration (loading a decoder takes
    about 0.2 s, a whisper or vosk model a second or two).

    Blocking; call it off the event loop the first time.
    """
    key = settings.stt_settings()
    with _registries_lock:
        registry = _registries.get(key)
        if registry is None:
            registry = SttRegistry.from_settings(key)
            _registries[key] = registry
        return registry


# Words of a prompt that are not answers: function words, numbers and menu boilerplate. Each
# grammar word is a place for the recogniser to land; these ones made "I want to talk to sales"
# come out as "... to the" or "... to two" on phone audio.
_NOT_ANSWER_WORDS: Final = """
    a about after again all also am an and any are as at be because been before but by can
    could did do does for from had has have he her here him his how i if in into is it its just
    let like may me more most my no not now of off on or our out over please she so some such
    than that the their them then there these they this those to too under up us very was we
    were what when where which while who why will with would you your yours
    zero oh one two three four five six seven eight nine ten hundred thousand first second
    third press pressed dial key keys hash pound star say said tell told speak talk talking
    want need call calling called thank thanks welcome hello hi goodbye bye menu option options
    choose choice select repeat hear hold line stay moment shortly sorry okay ok yes
"""
_NOT_ANSWERS: Final = frozenset(_NOT_ANSWER_WORDS.split())


def words_of(text: str) -> tuple[str, ...]:
    """The likely answers among a prompt's words (SSML tags dropped), as grammar hints.

    "Press one for sales, two for support" gives ("sales", "support").
    """
    words = _WORD.findall(_TAG.sub(" ", text).lower())
    useful = (w.strip("'") for w in words)
    return tuple(dict.fromkeys(w for w in useful if len(w) > 2 and w not in _NOT_ANSWERS))[
        :_MAX_HINTS
    ]


@dataclass
class _Turn:
    """One caller turn's recognition; its recognizer lives on the executor's thread."""

    number: int
    pending: list[Int16Array] = field(default_factory=list)
    recognizer: AnyRecognizer | None = None
    error: str | None = None
    fallback: str | None = None
    partial: str = ""


class CallListener:
    """Listens to one call; see the module docstring."""

    def __init__(
        self,
        call: Call,
        session: CallSession,
        pump: Callable[[], None],
        *,
        stt: SttRegistry,
        settings: ListenSettings,
        note: Note,
    ) -> None:
        self._call = call
        self._session = session
        self._pump = pump
        self._note = note
        self._stt = stt
        self._provider: SttProvider = stt.get(settings.stt_provider)
        self._language: str | None = None
        self._vocabulary: tuple[str, ...] | None = None
        self._prompt_words: tuple[str, ...] = ()
        self._vad = (WebRtcVad(settings.vad_mode) if settings.vad == "webrtc"
                     else make_vad(settings.vad))
        self._turns = TurnDetector(
            TurnSettings(end_of_turn_silence_ms=settings.end_of_turn_silence_ms)
        )
        self._media_ms = 0
        self._covered_until = time.monotonic()  # wall time the frames fed so far account for
        self._recent: deque[Int16Array] = deque(maxlen=_PRE_ROLL_FRAMES)
        self._outbound: deque[float] = deque(maxlen=_ECHO_WINDOW)
        self._prompt_level: float | None = None
        self._turn: _Turn | None = None
        self._turn_count = 0
        self._executor: ThreadPoolExecutor | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self._watchdog: asyncio.TimerHandle | None = None

    # -- what the runner tells the listener -------------------------------------------------------

    def played(self, frame: Int16Array | None) -> None:
        """The frame the call sends the caller now (None: nothing plays), for the echo rule.

        The level is a power average over the last 200 ms: a prompt's echo is delayed and
        smeared by the line, so one frame's level says little about the echo heard with it.
        """
        if frame is None:
            self._outbound.clear()
            self._prompt_level = None
            return
        samples = np.asarray(frame, dtype=np.int16)
        self._outbound.append(float(np.mean(np.square(samples.astype(np.float64)))))
        power = sum(self._outbound) / len(self._outbound) / 32768.0**2
        self._prompt_level = max(10.0 * float(np.log10(max(power, 1e-30))), SILENCE_DBFS)

    def prompt_spoken(self, text: str) -> None:
        """The assistant's latest ``speak`` text: its words are the hints without a vocabulary."""
        self._prompt_words = words_of(text)

    def configure(self, action: ConfigureTranscriptionAction) -> None:
        """Apply ``configure_transcription``: provider, languages, vocabulary (vad: the session)."""
        if action.provider is not None:
            name = str(action.provider.value if hasattr(action.provider, "value")
                       else action.provider)
            try:
                self._provider = self._stt.get(name)
            except SttNotConfiguredError as exc:
                self._note("warning", f"configure_transcription: provider {name} cannot be "
                           f"used ({exc}); keeping {self._provider.name}")
        if action.languages:
            self._language = action.languages[0]
        if action.custom_vocabulary is not None:
            self._vocabulary = tuple(action.custom_vocabulary) or None

    def set_end_of_turn_silence(self, milliseconds: int) -> None:
        """A ``vad.end_of_turn_silence_ms`` from the assistant (holds until changed)."""
        try:
            self._turns.set_end_of_turn_silence(milliseconds)
        except MediaError as exc:
            self._note("warning", f"vad ignored: {exc}")

    @property
    def hints(self) -> tuple[str, ...]:
        """What the next turn's recognizer is told to expect."""
        if self._vocabulary is not None:
            return self._vocabulary
        return self._prompt_words

    @property
    def frames_heard(self) -> int:
        """20 ms frames run through the VAD, DTMF guard and turn detector so far (lost ones and
        the silence counted for a quiet line included): it stops growing once listening stops."""
        return self._media_ms // FRAME_MS

    # -- the frame loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Listen until the call's frames end; then release the recognizer."""
        loop = asyncio.get_running_loop()
        self._covered_until = time.monotonic()
        self._watchdog = loop.call_later(_GAP_S, self._watch)
        try:
            async for frame in self._call.frames():
                self._covered_until = max(self._covered_until, time.monotonic())
                self._frame(frame.samples, frame.lost)
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop the watchdog, give an open turn's recognizer back, stop the thread."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        turn, self._turn = self._turn, None
        executor, self._executor = self._executor, None
        if executor is None:
            return
        if turn is not None:
            executor.submit(_finish_quietly, turn)  # a pooled decoder must go back
        for task in list(self._tasks):
            task.cancel()
        executor.shutdown(wait=False)

    def _watch(self) -> None:
        """The line went quiet (no frames): count the time as silence so a turn can end."""
        now = time.monotonic()
        gap = now - self._covered_until
        if gap >= _GAP_S:
            missing = int(gap / _FRAME_S)
            self._covered_until += missing * _FRAME_S
            if self._turns.in_speech:  # outside a turn silence changes nothing
                for _ in range(missing):
                    self._frame(_SILENT_FRAME, True)
                    if not self._turns.in_speech:
                        break
        self._watchdog = asyncio.get_running_loop().call_later(_GAP_S, self._watch)

    def _frame(self, samples: Int16Array, lost: bool) -> None:
        at_ms = self._media_ms
        self._media_ms += FRAME_MS
        if lost:
            voiced, level, dtmf = False, SILENCE_DBFS, False
        else:
            voiced = self._vad.is_speech(samples)
            dtmf = voiced and bool(looks_like_dtmf(samples)[0])
            # The turn detector reads the level only for a voiced frame that is no key tone
            # (the echo rule); most frames are silence, and the level costs more than the VAD.
            level = float(frame_level_dbfs(samples)[0]) if voiced and not dtmf else SILENCE_DBFS
        events = self._turns.feed(
            at_ms, voiced, level, dtmf=dtmf, prompt_level_dbfs=self._prompt_level
        )
        turn = self._turn
        if turn is not None:
            turn.pending.append(samples)
            if len(turn.pending) >= _FEED_EVERY:
                self._feed(turn)
        else:
            self._recent.append(samples)
        for event in events:
            if isinstance(event, SpeechStarted):
                self._turn_started()
            elif isinstance(event, TurnEnded):
                self._turn_ended()

    # -- turns -------------------------------------------------------------------------------------

    def _turn_started(self) -> None:
        self._session.speech_started(time.monotonic())
        self._pump()
        self._turn_count += 1
        turn = _Turn(self._turn_count, pending=list(self._recent))
        self._recent.clear()
        self._turn = turn
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="voxflow-stt")
        self._executor.submit(_open, turn, self._provider, self._language, self.hints)
        self._feed(turn)

    def _feed(self, turn: _Turn) -> None:
        if not turn.pending or self._executor is None:
            return
        chunk = np.concatenate(turn.pending)
        turn.pending = []
        job = asyncio.get_running_loop().run_in_executor(self._executor, _feed, turn, chunk)
        self._track(job)
        job.add_done_callback(lambda done: self._partial(turn, done))

    def _partial(self, turn: _Turn, done: asyncio.Future[str]) -> None:
        if done.cancelled() or done.exception() is not None or turn is not self._turn:
            return
        text = done.result()
        if text and text != turn.partial:
            turn.partial = text
            self._session.partial_transcript(text, time.monotonic())
            self._pump()

    def _turn_ended(self) -> None:
        turn, self._turn = self._turn, None
        if turn is None:
            return
        self._feed(turn)
        task = asyncio.ensure_future(self._finish(turn))
        self._track(task)

    async def _finish(self, turn: _Turn) -> None:
        executor = self._executor
        if executor is None:
            return
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(executor, _finish, turn)
        if inspect.isawaitable(result):  # a hosted provider: the network part runs here
            try:
                result = await result
            except SttError as exc:
                turn.error = str(exc)
                result = Transcript("")
        if turn.fallback is not None:
            self._note("warning", f"speech recognition: {turn.fallback}; used the provider's "
                       "default language")
        if turn.error is not None:
            self._note("warning", f"speech recognition failed: {turn.error}")
        assert isinstance(result, Transcript)
        self._session.utterance(result.text, time.monotonic())
        self._pump()

    def _track(self, future: asyncio.Future[Any]) -> None:
        self._tasks.add(future)
        future.add_done_callback(self._tasks.discard)


# -- the executor's side (one thread per call, jobs in order) --------------------------------------


def _open(turn: _Turn, provider: SttProvider, language: str | None,
          hints: Sequence[str]) -> None:
    try:
        turn.recognizer = provider.start(language, hints)
    except SttNotConfiguredError as exc:  # e.g. a language the provider lacks: try its default
        turn.fallback = str(exc)
        try:
            turn.recognizer = provider.start(None, hints)
        except SttError as again:
            turn.error = str(again)
    except SttError as exc:
        turn.error = str(exc)


def _feed(turn: _Turn, chunk: Int16Array) -> str:
    recognizer = turn.recognizer
    if recognizer is None:
        return ""
    try:
        recognizer.feed(chunk)
        return recognizer.partial()
    except SttError as exc:
        turn.error = str(exc)
        turn.recognizer = None
        return ""


def _finish(turn: _Turn) -> object:
    """The final transcript; for a hosted provider, the coroutine that fetches it."""
    recognizer, turn.recognizer = turn.recognizer, None
    if recognizer is None:
        return Transcript("")
    try:
        return recognizer.finish()
    except SttError as exc:
        turn.error = str(exc)
        return Transcript("")


def _finish_quietly(turn: _Turn) -> None:
    result = _finish(turn)
    if inspect.iscoroutine(result):
        result.close()


__all__ = ["CallListener", "ListenSettings", "shared_stt_registry", "words_of"]
