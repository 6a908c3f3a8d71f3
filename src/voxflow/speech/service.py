"""Speech out for the engine: pick the provider, build the request, go through the cache."""

from __future__ import annotations

from voxflow.speech.cache import PromptCache
from voxflow.speech.registry import TtsRegistry, TtsSelection
from voxflow.speech.tts import Synthesis, SynthesisRequest


class TtsService:
    """``speak``-action synthesis: registry selection plus the shared prompt cache."""

    def __init__(self, registry: TtsRegistry, cache: PromptCache | None = None) -> None:
        self.registry = registry
        self.cache = cache if cache is not None else PromptCache()

    async def speak(
        self,
        *,
        text: str | None = None,
        ssml: str | None = None,
        tts: TtsSelection | None = None,
        sample_rate: int = 8000,
    ) -> Synthesis:
        """Synthesise ``text`` or ``ssml`` in the voice ``tts`` asks for.

        Raises :class:`~voxflow.errors.SsmlError` for malformed SSML (callers may fall back to
        :func:`voxflow.speech.ssml.strip_ssml`) and :class:`~voxflow.errors.TtsError` otherwise.
        """
        provider = self.registry.select(tts)
        voice = tts.voice if tts is not None else None
        language = tts.language if tts is not None else None
        if ssml is not None:
            request = SynthesisRequest.from_ssml(ssml, voice, language, sample_rate)
        else:
            request = SynthesisRequest.from_text(text or "", voice, language, sample_rate)
        return await self.cache.synthesize(provider, request)
