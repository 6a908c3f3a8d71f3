"""Azure Speech text-to-speech over its REST API (``POST …/cognitiveservices/v1`` with SSML)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from xml.sax.saxutils import escape, quoteattr

import httpx

from voxflow.errors import MediaError, TtsNotConfiguredError, TtsProviderError
from voxflow.media.audio import Int16Array, decode_wav, resample
from voxflow.speech.http import post_for_audio
from voxflow.speech.tts import SegmentedProvider

# RIFF output so the answer is self-describing; 16-bit PCM at the rate we play.
OUTPUT_FORMATS: Final = {8000: "riff-8khz-16bit-mono-pcm", 16000: "riff-16khz-16bit-mono-pcm"}
PATH: Final = "/cognitiveservices/v1"


@dataclass(frozen=True)
class AzureSettings:
    """Azure Speech credentials; ``endpoint`` overrides the regional URL (tests, other clouds)."""

    subscription_key: str | None = None
    region: str | None = None
    endpoint: str | None = None
    default_voice: str = "en-US-JennyNeural"
    timeout_seconds: float = 10.0


def rate_attribute(rate: float) -> str:
    """``<prosody rate>`` as a relative change: 1.2 → ``+20%``."""
    return f"{round((rate - 1) * 100):+d}%"


def voice_language(voice: str) -> str:
    """The locale an Azure voice name starts with: ``de-DE-KatjaNeural`` → ``de-DE``."""
    parts = voice.split("-")
    return "-".join(parts[:2]) if len(parts) >= 3 else "en-US"


def ssml_body(text: str, rate: float, voice: str, language: str) -> bytes:
    """The SSML document Azure wants for one segment."""
    inner = escape(text)
    if rate != 1.0:
        inner = f"<prosody rate={quoteattr(rate_attribute(rate))}>{inner}</prosody>"
    return (
        f'<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis" '
        f"xml:lang={quoteattr(language)}><voice name={quoteattr(voice)}>{inner}</voice></speak>"
    ).encode()


class AzureProvider(SegmentedProvider):
    """Azure neural voices; needs a subscription key and a region (or an endpoint)."""

    name = "azure"

    def __init__(self, settings: AzureSettings, client: httpx.AsyncClient | None = None) -> None:
        if not settings.subscription_key:
            raise TtsNotConfiguredError(
                "azure TTS is not configured: set the Azure Speech subscription key"
            )
        if not settings.region and not settings.endpoint:
            raise TtsNotConfiguredError(
                "azure TTS is not configured: set the Azure Speech region (e.g. 'westeurope')"
            )
        base = settings.endpoint or f"https://{settings.region}.tts.speech.microsoft.com"
        self.url = base.rstrip("/") + PATH
        self.default_voice = settings.default_voice
        self._key = settings.subscription_key
        self._client = client or httpx.AsyncClient(timeout=settings.timeout_seconds)

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.aclose()

    async def synthesize_text(
        self, text: str, rate: float, voice: str, language: str | None, sample_rate: int
    ) -> Int16Array:
        """One REST call for one segment; the RIFF answer is decoded and resampled if needed."""
        headers = {
            "Ocp-Apim-Subscription-Key": self._key,
            "Content-Type": "application/ssml+xml",
            "X-Microsoft-OutputFormat": OUTPUT_FORMATS[sample_rate],
            "User-Agent": "voxflow",
        }
        body = ssml_body(text, rate, voice, language or voice_language(voice))
        audio = await post_for_audio(
            self._client, self.name, self.url, headers=headers, content=body
        )
        try:
            samples, rate_in = decode_wav(audio)
        except MediaError as exc:
            raise TtsProviderError(f"azure TTS: unusable audio: {exc}", self.name) from None
        return resample(samples, rate_in, sample_rate)
