"""The TTS provider interface: a request of segments in, int16 mono samples out.

Providers implement one call, :meth:`SegmentSynthesizer.synthesize_text` (one text segment at one
rate and voice); :class:`SegmentedProvider` renders a whole request from it, inserting breaks as
silence, so every provider treats SSML the same way.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

import numpy as np

from voxflow.errors import MediaError
from voxflow.media.audio import Int16Array, silence
from voxflow.speech.ssml import BreakSegment, Segment, parse_ssml, text_segments

SUPPORTED_RATES: Final = (8000, 16000)


@dataclass(frozen=True)
class SynthesisRequest:
    """What to say, in which voice and language, at which output sample rate."""

    segments: tuple[Segment, ...]
    voice: str | None = None
    language: str | None = None
    sample_rate: int = 8000

    def __post_init__(self) -> None:
        if self.sample_rate not in SUPPORTED_RATES:
            raise MediaError(
                f"TTS output rate {self.sample_rate} Hz is not supported; use 8000 or 16000"
            )

    @classmethod
    def from_text(
        cls,
        text: str,
        voice: str | None = None,
        language: str | None = None,
        sample_rate: int = 8000,
    ) -> SynthesisRequest:
        """A request for plain text."""
        return cls(text_segments(text), voice, language, sample_rate)

    @classmethod
    def from_ssml(
        cls,
        ssml: str,
        voice: str | None = None,
        language: str | None = None,
        sample_rate: int = 8000,
    ) -> SynthesisRequest:
        """A request for SSML (raises :class:`~voxflow.errors.SsmlError` when malformed)."""
        return cls(parse_ssml(ssml, language), voice, language, sample_rate)

    @property
    def text(self) -> str:
        """All spoken words, for logs and transcripts (``assistant_speak``)."""
        return " ".join(s.text for s in self.segments if not isinstance(s, BreakSegment))


@dataclass(frozen=True, eq=False)
class Synthesis:
    """Synthesised audio: int16 mono ``samples`` at ``sample_rate``."""

    samples: Int16Array
    sample_rate: int
    provider: str
    voice: str

    @property
    def duration_ms(self) -> int:
        """Length of the audio in milliseconds."""
        return self.samples.size * 1000 // self.sample_rate


@runtime_checkable
class TtsProvider(Protocol):
    """Anything that turns a :class:`SynthesisRequest` into audio."""

    name: str

    async def synthesize(self, request: SynthesisRequest) -> Synthesis:
        """Synthesise the whole request at ``request.sample_rate``."""
        ...


class SegmentedProvider(abc.ABC):
    """Base for providers that synthesise one text segment at a time."""

    name: str
    default_voice: str

    @abc.abstractmethod
    async def synthesize_text(
        self, text: str, rate: float, voice: str, language: str | None, sample_rate: int
    ) -> Int16Array:
        """Synthesise ``text`` at speed ``rate`` (1.0 normal) as int16 mono at ``sample_rate``."""

    async def resolve_voice(self, voice: str | None, language: str | None) -> str:
        """The provider voice for a requested voice/language (here: as given, or the default)."""
        return voice or self.default_voice

    async def synthesize(self, request: SynthesisRequest) -> Synthesis:
        """Render every segment in order: text through the provider, breaks as silence."""
        base_voice = await self.resolve_voice(request.voice, request.language)
        parts: list[Int16Array] = []
        for segment in request.segments:
            if isinstance(segment, BreakSegment):
                parts.append(silence(segment.duration_ms, request.sample_rate))
                continue
            voice = (
                await self.resolve_voice(segment.voice, request.language)
                if segment.voice
                else base_voice
            )
            parts.append(
                await self.synthesize_text(
                    segment.text, segment.rate, voice, request.language, request.sample_rate
                )
            )
        samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
        return Synthesis(samples.astype(np.int16), request.sample_rate, self.name, base_voice)
