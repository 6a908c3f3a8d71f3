"""``CallSession``: one call as the assistant sees it — a sans-IO state machine.

Inputs are what happened (a key press, the assistant's actions, a prompt got ready, the line
ended, time passed); outputs are :mod:`~voxflow.engine.commands` drained with :meth:`drain`, and
one 20 ms audio frame per media tick from :meth:`next_frame`. Time is passed in as ``now``
(monotonic seconds); ``wall_offset`` turns it into unix time for ``speech_started_at``.

The semantics are protocol.md §4:
- a key press always becomes one ``dtmf_received`` at once — while a prompt plays, while the
  assistant is still answering, during a transfer — and cuts the prompt unless its barge-in
  strategy is ``none``/``manual`` or ``allow_after_ms`` has not passed;
- prompts play in order; a ``hangup``/``transfer`` waits for the prompts queued before it in the
  same response but cuts earlier playback;
- the caller's voice (``speech_started``, ``partial_transcript``, ``utterance``) cuts a prompt
  by its strategy: ``immediate`` at voice onset, ``minimum_characters`` once the transcript is
  long enough, ``none``/``manual`` never; the ``user_speak`` then carries ``barged_in: true``;
- ``assistant_speech_ended`` when the queue runs empty; ``user_input_timeout`` after a prompt
  that asked for it (cancelled by a key, voice or a new prompt); ``session_end`` exactly once.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from voxflow.engine.commands import (
    Command,
    ConfigureListening,
    DeliverEvent,
    HangUp,
    Note,
    PreparePrompt,
    SetEndOfTurnSilence,
    Transfer,
)
from voxflow.engine.playback import Deferred, PlaybackQueue, Prompt, Samples
from voxflow.protocol import (
    DTMF_DIGITS,
    Action,
    AssistantSpeakEvent,
    AssistantSpeechEndedEvent,
    AudioAction,
    BargeInAction,
    BaseEvent,
    ConfigureTranscriptionAction,
    ConfigureVoiceToVoiceAction,
    DtmfReceivedEvent,
    HangupAction,
    MixAudioAction,
    SendSmsAction,
    Session,
    SessionEndEvent,
    SessionStartEvent,
    SmsFailedEvent,
    SpeakAction,
    TransferAction,
    UserInputTimeoutEvent,
    UserSpeakEvent,
    UserSpeechStartedEvent,
    VadConfig,
)


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Per-call behaviour that is configuration, not protocol."""

    sample_rate: int = 8000
    frame_samples: int = 160
    max_consecutive_failures: int = 3
    #: ``user_speech_started`` is a WebSocket-only event (protocol.md §2).
    emit_speech_started: bool = False
    fallback_text: str = "Sorry, we are having technical difficulties. Please call again later."


@dataclass(slots=True)
class _Background:
    samples: Samples
    volume: float
    position: int = 0


class CallSession:
    """The state of one call between the line and the assistant."""

    def __init__(
        self, session: Session, *, config: SessionConfig | None = None, wall_offset: float = 0.0
    ) -> None:
        self.session = session
        self.config = config or SessionConfig()
        self._wall_offset = wall_offset
        self._commands: deque[Command] = deque()
        self._queue = PlaybackQueue(self.config.frame_samples)
        self._ids = itertools.count(1)
        self._responses = itertools.count(1)
        self._pending_mix: dict[int, float] = {}
        self._background: _Background | None = None
        self._input_timeout_at: float | None = None
        self._timeout_after_drain: float | None = None
        self._failures = 0
        self._turn_barged_in = False  # the caller's current utterance interrupted a prompt
        self.started = False
        self.ending = False  # a hangup or a fallback is under way: no new actions
        self.transferring = False
        self._transfer_timeout: int | None = None
        self.ended = False

    # ---------------------------------------------------------------- outputs

    def drain(self) -> list[Command]:
        """Every command queued since the last call, in order."""
        commands = list(self._commands)
        self._commands.clear()
        return commands

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` must be called next, if ever."""
        return None if self.ended else self._input_timeout_at

    # ---------------------------------------------------------------- inputs

    def start(self, now: float) -> None:
        """The call was answered: tell the assistant."""
        if self.started:
            return
        self.started = True
        self._emit(SessionStartEvent(session=self.session))

    def key_pressed(self, key: str, now: float) -> None:
        """A key press the arbiter accepted: one ``dtmf_received``, and maybe cut the prompt."""
        if self.ended:
            return
        if key not in DTMF_DIGITS:
            self._note("info", f"key {key!r} pressed; not a dtmf_received digit, not delivered")
            return
        self._input_timeout_at = None
        self._emit(DtmfReceivedEvent(session=self.session, digit=key))
        current = self._queue.current
        if current is not None and current.interruptible_by_key(now):
            self._stop_playback()

    def speech_started(self, now: float) -> None:
        """Voice activity began (VAD onset): cancels the input timeout, may cut the prompt."""
        if self.ended:
            return
        self._input_timeout_at = None
        self._turn_barged_in = False
        if self.config.emit_speech_started:
            self._emit(UserSpeechStartedEvent(session=self.session))
        current = self._queue.current
        if current is not None and current.interruptible_by_voice(now):
            self._barge_in_by_speech()

    def partial_transcript(self, text: str, now: float) -> None:
        """Recognition so far: cuts a prompt once it reaches its ``minimum_characters``."""
        if self.ended:
            return
        current = self._queue.current
        if current is not None and current.interruptible_by_text(text, now):
            self._barge_in_by_speech()

    def utterance(self, text: str, now: float) -> None:
        """The caller's turn ended with this transcript: one ``user_speak`` (none if empty)."""
        if self.ended:
            return
        self._input_timeout_at = None
        self.partial_transcript(text, now)
        if text.strip():
            barged_in = True if self._turn_barged_in else None
            self._emit(UserSpeakEvent(session=self.session, text=text, barged_in=barged_in))
        self._turn_barged_in = False

    def actions_received(self, actions: Sequence[Action], now: float) -> None:
        """Carry out one response of the assistant, in order."""
        if not actions:
            return
        self._failures = 0
        response_id = next(self._responses)
        for action in actions:
            if self.ended or self.ending:
                self._note("warning", f"ignored {action.type} action: the call is ending")
                continue
            self._apply(action, response_id, now)

    def delivery_failed(self, reason: str, now: float) -> None:
        """An event could not be delivered or its answer was unusable."""
        self._failures += 1
        self._note("error", f"assistant failed ({self._failures} in a row): {reason}")
        limit = self.config.max_consecutive_failures
        if self._failures >= limit and not (self.ending or self.ended):
            self._note("error", f"{limit} consecutive assistant failures: playing the fallback")
            self._queue.clear()
            fallback = SpeakAction(session_id=self.session.id, text=self.config.fallback_text)
            response_id = next(self._responses)
            self._enqueue_prompt(fallback, response_id)
            self._queue.append(Deferred(HangupAction(session_id=self.session.id), response_id))
            self.ending = True

    def delivery_succeeded(self) -> None:
        """The assistant answered usably (possibly with no action)."""
        self._failures = 0

    def prompt_ready(self, item_id: int, samples: Samples) -> None:
        """A prompt (or background loop) was prepared: it may play from the next tick."""
        if item_id in self._pending_mix:
            volume = self._pending_mix.pop(item_id)
            self._background = _Background(samples, volume) if len(samples) else None
            return
        prompt = self._queue.find(item_id)
        if prompt is not None:
            prompt.samples = samples
            prompt.sample_rate = self.config.sample_rate

    def prompt_failed(self, item_id: int, reason: str, now: float) -> None:
        """A prompt could not be prepared: skip it (logged), keep the rest of the queue."""
        self._pending_mix.pop(item_id, None)
        prompt = self._queue.remove(item_id)
        self._note("error", f"prompt {item_id} could not be played: {reason}")
        if prompt is not None and self._queue.take_drained():
            self._speech_ended(now)

    def transfer_result(self, success: bool, detail: str, now: float) -> None:
        """The line reports how a transfer went."""
        if not self.transferring:
            return
        self.transferring = False
        if success:
            self._note("info", f"transfer succeeded: {detail}")
            self.ending = True
            self._commands.append(HangUp(f"transferred: {detail}"))
            return
        self._note("warning", f"transfer failed: {detail}")
        if self._transfer_timeout is not None:
            self._emit(SessionStartEvent(session=self.session))  # the call came back
        else:
            self.ending = True
            self._commands.append(HangUp(f"transfer failed: {detail}"))

    def line_ended(self, reason: str, now: float) -> None:
        """The call is over on the line, whoever ended it: ``session_end``, exactly once."""
        if self.ended:
            return
        self._note("info", f"call ended: {reason}")
        self._queue.clear()
        self._background = None
        self._input_timeout_at = None
        self.ended = True
        self._emit(SessionEndEvent(session=self.session))

    def handle_timer(self, now: float) -> None:
        """Fire what is due: the user-input timeout."""
        if self._input_timeout_at is not None and now >= self._input_timeout_at and not self.ended:
            self._input_timeout_at = None
            self._emit(UserInputTimeoutEvent(session=self.session))

    def next_frame(self, now: float) -> Samples | None:
        """The next 20 ms of audio to send (None: silence), advancing playback."""
        if self.ended:
            return None
        result = self._queue.next_frame(now)
        if result.due is not None:
            self._execute_final(result.due.action)
            return self._mix(None)
        if result.started is not None:
            self._speech_started(result.started, now)
        for prompt in result.finished:
            if prompt.action.type == "speak" and prompt.action.user_input_timeout_seconds:
                self._timeout_after_drain = prompt.action.user_input_timeout_seconds
        if result.drained:
            self._speech_ended(now)
        return self._mix(result.frame)

    # ---------------------------------------------------------------- internals

    def _apply(self, action: Action, response_id: int, now: float) -> None:
        match action:
            case SpeakAction() | AudioAction():
                self._input_timeout_at = None
                if isinstance(action, SpeakAction) and action.vad is not None:
                    self._apply_vad(action.vad)
                self._enqueue_prompt(action, response_id)
            case BargeInAction():
                self._stop_playback()
            case HangupAction() | TransferAction():
                if self._queue.drop_other_responses(response_id):
                    self._speech_ended(now)
                if self._queue.has_prompts_of(response_id):
                    self._queue.append(Deferred(action, response_id))
                    self.ending = isinstance(action, HangupAction)
                else:
                    self._execute_final(action)
            case MixAudioAction():
                if action.stop:
                    self._background = None
                else:
                    item_id = next(self._ids)
                    self._pending_mix[item_id] = action.volume
                    self._commands.append(PreparePrompt(item_id, action))
            case ConfigureTranscriptionAction():
                if action.vad is not None:
                    self._apply_vad(action.vad)
                self._commands.append(ConfigureListening(action))
            case ConfigureVoiceToVoiceAction():
                self._note("warning", "configure_voice_to_voice is a preview feature of the "
                           "hosted service and is not supported by voxflow; action ignored")
            case SendSmsAction():
                reason = "no SMS provider configured"
                self._note("warning", f"send_sms: {reason}")
                self._emit(SmsFailedEvent(session=self.session, reason=reason))

    def _apply_vad(self, vad: VadConfig) -> None:
        if vad.end_of_turn_silence_ms is not None:
            self._commands.append(SetEndOfTurnSilence(vad.end_of_turn_silence_ms))

    def _enqueue_prompt(self, action: SpeakAction | AudioAction, response_id: int) -> None:
        item_id = next(self._ids)
        self._queue.append(Prompt(item_id, action, response_id, self.config.sample_rate))
        self._commands.append(PreparePrompt(item_id, action))

    def _execute_final(self, action: HangupAction | TransferAction) -> None:
        if isinstance(action, HangupAction):
            self.ending = True
            self._commands.append(HangUp("hangup action"))
            return
        self.transferring = True
        self._transfer_timeout = action.timeout
        self._commands.append(
            Transfer(action.target_phone_number, action.caller_id_name,
                     action.caller_id_number, action.timeout)
        )

    def _barge_in_by_speech(self) -> None:
        self._turn_barged_in = True
        self._stop_playback()

    def _stop_playback(self) -> None:
        if self._queue.clear():
            self._timeout_after_drain = None
            self._emit(AssistantSpeechEndedEvent(session=self.session))

    def _speech_started(self, prompt: Prompt, now: float) -> None:
        action = prompt.action
        text = action.text if isinstance(action, SpeakAction) else None
        ssml = action.ssml if isinstance(action, SpeakAction) else None
        self._emit(
            AssistantSpeakEvent(
                session=self.session, text=text, ssml=ssml,
                duration_ms=round(prompt.duration_ms),
                speech_started_at=round((now + self._wall_offset) * 1000),
            )
        )

    def _speech_ended(self, now: float) -> None:
        self._emit(AssistantSpeechEndedEvent(session=self.session))
        if self._timeout_after_drain:
            self._input_timeout_at = now + self._timeout_after_drain
        self._timeout_after_drain = None

    def _mix(self, frame: Samples | None) -> Samples | None:
        background = self._background
        if background is None:
            return frame
        n = self.config.frame_samples
        indices = (background.position + np.arange(n)) % len(background.samples)
        background.position = (background.position + n) % len(background.samples)
        loop = background.samples[indices].astype(np.float32) * background.volume
        mixed = loop if frame is None else loop + frame.astype(np.float32)
        out: Samples = np.clip(mixed, -32768, 32767).astype(np.int16)
        return out

    def _emit(self, event: BaseEvent) -> None:
        self._commands.append(DeliverEvent(event))

    def _note(self, level: str, message: str) -> None:
        self._commands.append(Note(level, message))
