"""Deepgram speech-to-text over its pre-recorded REST API (``POST /v1/listen``, raw audio).

The utterance is buffered while the caller talks and sent once at the end of the turn as raw
16-bit little-endian PCM at 8 kHz, described by the query (``encoding=linear16``,
``sample_rate``, ``channels``); ``Authorization: Token <key>``. Hints go out as ``keywords``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx

from voxflow.errors import SttNotConfiguredError, SttProviderError
from voxflow.media.audio import Int16Array
from voxflow.speech.stt import (
    SAMPLE_RATE,
    Transcript,
    WholeUtteranceRecognizer,
    post_for_json,
)

PATH: Final = "/v1/listen"
MAX_KEYWORDS: Final = 100


@dataclass(frozen=True)
class DeepgramSettings:
    """Deepgram credentials and model; ``base_url`` is overridable (tests, self-hosted)."""

    api_key: str | None = None
    base_url: str = "https://api.deepgram.com"
    model: str = "nova-2"
    timeout_seconds: float = 10.0
    max_seconds: float = 60.0


def parse_answer(body: dict[str, Any]) -> Transcript:
    """The first alternative of the first channel of a ``/v1/listen`` answer."""
    try:
        alternative = body["results"]["channels"][0]["alternatives"][0]
        text = str(alternative["transcript"])
        confidence = float(alternative.get("confidence", 0.0))
    except (KeyError, IndexError, TypeError, ValueError):
        raise SttProviderError(
            "deepgram STT: answer has no results.channels[0].alternatives[0].transcript",
            DeepgramProvider.name,
        ) from None
    return Transcript(text.strip(), min(1.0, max(0.0, confidence)))


class DeepgramProvider:
    """Deepgram's hosted recognition; needs an API key."""

    name = "deepgram"

    def __init__(self, settings: DeepgramSettings, client: httpx.AsyncClient | None = None):
        if not settings.api_key:
            raise SttNotConfiguredError("deepgram STT: no api_key configured")
        self.settings = settings
        self._client = client or httpx.AsyncClient(timeout=settings.timeout_seconds)

    def start(self, language: str | None = None, hints: Sequence[str] = ()) -> DeepgramRecognizer:
        """A recognizer that sends the utterance when finished."""
        return DeepgramRecognizer(self, language, tuple(hints)[:MAX_KEYWORDS])

    async def recognize(
        self, samples: Int16Array, language: str | None, hints: Sequence[str]
    ) -> Transcript:
        """One ``/v1/listen`` request for a whole utterance."""
        params: dict[str, str | list[str]] = {
            "model": self.settings.model,
            "encoding": "linear16",
            "sample_rate": str(SAMPLE_RATE),
            "channels": "1",
            "punctuate": "true",
        }
        if language:
            params["language"] = language
        if hints:
            params["keywords"] = [str(h) for h in hints]
        body = await post_for_json(
            self._client,
            self.name,
            self.settings.base_url.rstrip("/") + PATH,
            headers={
                "Authorization": f"Token {self.settings.api_key}",
                "Content-Type": "application/octet-stream",
            },
            content=samples.astype("<i2").tobytes(),
            params=params,
        )
        return parse_answer(body)

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.aclose()


class DeepgramRecognizer(WholeUtteranceRecognizer):
    """Buffers one utterance (the pre-recorded API answers only at the end); :meth:`finish`
    sends it."""

    def __init__(self, provider: DeepgramProvider, language: str | None, hints: Sequence[str]):
        super().__init__(provider.settings.max_seconds)
        self._provider = provider
        self._language = language
        self._hints = hints

    async def finish(self) -> Transcript:
        """Send the utterance, return Deepgram's transcript."""
        return await self._provider.recognize(self.audio.samples(), self._language, self._hints)
