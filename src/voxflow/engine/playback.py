"""The per-call playback queue: prompts play in order, 20 ms at a time, from the media tick.

Entries are prompts (``speak``/``audio`` turned into samples) and deferred call-ending actions
(a ``hangup``/``transfer`` that must wait for the prompts queued before it in the same response).
Everything here is pure: the session asks for the next frame with the current time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from voxflow.protocol import (
    AudioAction,
    BargeInConfig,
    BargeInStrategy,
    HangupAction,
    SpeakAction,
    TransferAction,
)

Samples = npt.NDArray[np.int16]

#: Barge-in behaviour of a prompt that does not say (protocol.md §3: minimum_characters, 3, 0).
DEFAULT_BARGE_IN = BargeInConfig()


@dataclass(slots=True)
class Prompt:
    """One ``speak`` or ``audio`` item; ``samples`` is None until it has been prepared."""

    item_id: int
    action: SpeakAction | AudioAction
    response_id: int
    sample_rate: int = 8000
    samples: Samples | None = None
    position: int = 0
    started_at: float | None = None

    @property
    def barge_in(self) -> BargeInConfig:
        return self.action.barge_in or DEFAULT_BARGE_IN

    @property
    def duration_ms(self) -> float:
        return 0.0 if self.samples is None else 1000.0 * len(self.samples) / self.sample_rate

    def interruptible_by_key(self, now: float) -> bool:
        """A key press cuts this prompt (classic IVR) unless its strategy forbids it."""
        return self._interruptible(now, _AUTOMATIC)

    def interruptible_by_voice(self, now: float) -> bool:
        """Voice onset alone cuts this prompt: only with the ``immediate`` strategy."""
        return self._interruptible(now, (BargeInStrategy.IMMEDIATE,))

    def interruptible_by_text(self, text: str, now: float) -> bool:
        """Recognised caller text cuts this prompt once it is long enough for its strategy."""
        if not self._interruptible(now, _AUTOMATIC):
            return False
        config = self.barge_in
        needed = config.minimum_characters if config.strategy == _BY_CHARACTERS else 1
        return len(text.strip()) >= needed

    def _interruptible(self, now: float, strategies: tuple[BargeInStrategy, ...]) -> bool:
        if self.started_at is None or self.barge_in.strategy not in strategies:
            return False
        return (now - self.started_at) * 1000.0 >= self.barge_in.allow_after_ms


_BY_CHARACTERS = BargeInStrategy.MINIMUM_CHARACTERS
# Strategies under which the caller (not only the assistant's barge_in action) may interrupt.
_AUTOMATIC = (BargeInStrategy.MINIMUM_CHARACTERS, BargeInStrategy.IMMEDIATE)


@dataclass(slots=True)
class Deferred:
    """A ``hangup``/``transfer`` waiting for the prompts queued before it."""

    action: HangupAction | TransferAction
    response_id: int


Entry = Prompt | Deferred


@dataclass(slots=True)
class FrameResult:
    """What one media tick produced."""

    frame: Samples | None = None
    started: Prompt | None = None
    finished: list[Prompt] = field(default_factory=list)
    due: Deferred | None = None
    drained: bool = False  # the queue ran empty after playing something


class PlaybackQueue:
    """Prompts and deferred actions in order; hands out 20 ms frames."""

    def __init__(self, frame_samples: int = 160) -> None:
        self.frame_samples = frame_samples
        self._entries: deque[Entry] = deque()
        self._played_since_empty = False

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def current(self) -> Prompt | None:
        """The prompt at the head of the queue, if it has started playing."""
        head = self._entries[0] if self._entries else None
        return head if isinstance(head, Prompt) and head.started_at is not None else None

    def append(self, entry: Entry) -> None:
        self._entries.append(entry)

    def find(self, item_id: int) -> Prompt | None:
        for entry in self._entries:
            if isinstance(entry, Prompt) and entry.item_id == item_id:
                return entry
        return None

    def remove(self, item_id: int) -> Prompt | None:
        prompt = self.find(item_id)
        if prompt is not None:
            self._entries.remove(prompt)
        return prompt

    def take_drained(self) -> bool:
        """True once when no prompt is left after something played (then forgets it)."""
        if any(isinstance(e, Prompt) for e in self._entries) or not self._played_since_empty:
            return False
        self._played_since_empty = False
        return True

    def has_prompts_of(self, response_id: int) -> bool:
        return any(isinstance(e, Prompt) and e.response_id == response_id for e in self._entries)

    def drop_other_responses(self, response_id: int) -> bool:
        """Cut everything that did not come with ``response_id``; True if speech ended."""
        self._entries = deque(e for e in self._entries if e.response_id == response_id)
        return self.take_drained()

    def clear(self) -> bool:
        """Stop playing and drop every queued prompt; True if speech ended by it.

        Deferred hangups/transfers stay: cutting a goodbye must not cancel the hangup after it.
        """
        self._entries = deque(e for e in self._entries if isinstance(e, Deferred))
        return self.take_drained()

    def next_frame(self, now: float) -> FrameResult:
        """Advance playback by one frame at time ``now``."""
        result = FrameResult()
        head = self._entries[0] if self._entries else None
        if isinstance(head, Deferred):
            self._entries.popleft()
            result.due = head
            return result
        if head is None or head.samples is None:
            return result  # nothing to play, or the head prompt is still being prepared
        if head.started_at is None:
            head.started_at = now
            result.started = head
            self._played_since_empty = True
        end = head.position + self.frame_samples
        chunk = head.samples[head.position : end]
        head.position = end
        if len(chunk) < self.frame_samples:
            chunk = np.concatenate([chunk, np.zeros(self.frame_samples - len(chunk), np.int16)])
        result.frame = chunk
        if head.position >= len(head.samples):
            self._entries.popleft()
            result.finished.append(head)
            result.drained = self.take_drained()
        return result
