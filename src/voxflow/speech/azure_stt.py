"""Azure Speech recognition over the short-audio REST API.

``POST {endpoint}/speech/recognition/conversation/cognitiveservices/v1?language=…&format=detailed``
with ``Ocp-Apim-Subscription-Key`` and a 16 kHz PCM WAV body (the format that API documents;
the 8 kHz call audio is upsampled). The API takes up to 60 s of audio and has no phrase lists,
so hints are not sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx

from voxflow.errors import SttNotConfiguredError, SttProviderError
from voxflow.media.audio import Int16Array, encode_wav, resample
from voxflow.speech.stt import (
    SAMPLE_RATE,
    Transcript,
    WholeUtteranceRecognizer,
    post_for_json,
)

PATH: Final = "/speech/recognition/conversation/cognitiveservices/v1"
UPLOAD_RATE: Final = 16000
# Statuses meaning "nothing was said", which is an empty transcript, not a failure.
_NOTHING_SAID: Final = frozenset({"NoMatch", "InitialSilenceTimeout", "BabbleTimeout"})


@dataclass(frozen=True)
class AzureSttSettings:
    """Azure Speech key and region; ``endpoint`` overrides the regional URL (tests, clouds)."""

    subscription_key: str | None = None
    region: str | None = None
    endpoint: str | None = None
    default_language: str = "en-US"
    timeout_seconds: float = 10.0
    max_seconds: float = 60.0


def parse_answer(body: dict[str, Any]) -> Transcript:
    """The best result of a ``format=detailed`` (or simple) short-audio answer."""
    status = body.get("RecognitionStatus")
    if status in _NOTHING_SAID:
        return Transcript("", 0.0)
    if status != "Success":
        raise SttProviderError(f"azure STT: recognition status {status!r}", AzureSttProvider.name)
    best = body.get("NBest")
    try:
        if isinstance(best, list) and best:
            return Transcript(
                str(best[0]["Display"]).strip(),
                min(1.0, max(0.0, float(best[0].get("Confidence", 0.0)))),
            )
        return Transcript(str(body["DisplayText"]).strip(), 0.0)
    except (KeyError, TypeError, ValueError):
        raise SttProviderError(
            "azure STT: answer has neither NBest[0].Display nor DisplayText",
            AzureSttProvider.name,
        ) from None


class AzureSttProvider:
    """Azure's hosted recognition; needs a subscription key and a region (or an endpoint)."""

    name = "azure"

    def __init__(self, settings: AzureSttSettings, client: httpx.AsyncClient | None = None):
        if not settings.subscription_key:
            raise SttNotConfiguredError("azure STT: no subscription_key configured")
        if not settings.endpoint and not settings.region:
            raise SttNotConfiguredError("azure STT: configure a region (or an endpoint)")
        self.settings = settings
        self.url = (
            settings.endpoint or f"https://{settings.region}.stt.speech.microsoft.com"
        ).rstrip("/") + PATH
        self._client = client or httpx.AsyncClient(timeout=settings.timeout_seconds)

    def start(self, language: str | None = None, hints: Sequence[str] = ()) -> AzureRecognizer:
        """A recognizer that sends the utterance when finished (hints are not supported)."""
        return AzureRecognizer(self, language or self.settings.default_language)

    async def recognize(self, samples: Int16Array, language: str) -> Transcript:
        """One short-audio request for a whole utterance."""
        wav = encode_wav(resample(samples, SAMPLE_RATE, UPLOAD_RATE), UPLOAD_RATE)
        body = await post_for_json(
            self._client,
            self.name,
            self.url,
            headers={
                "Ocp-Apim-Subscription-Key": str(self.settings.subscription_key),
                "Content-Type": f"audio/wav; codecs=audio/pcm; samplerate={UPLOAD_RATE}",
                "Accept": "application/json",
            },
            content=wav,
            params={"language": language, "format": "detailed"},
        )
        return parse_answer(body)

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.aclose()


class AzureRecognizer(WholeUtteranceRecognizer):
    """Buffers one utterance (the short-audio API answers only at the end); :meth:`finish`
    sends it."""

    def __init__(self, provider: AzureSttProvider, language: str) -> None:
        super().__init__(provider.settings.max_seconds)
        self._provider = provider
        self._language = language

    async def finish(self) -> Transcript:
        """Send the utterance, return Azure's best transcript."""
        return await self._provider.recognize(self.audio.samples(), self._language)
