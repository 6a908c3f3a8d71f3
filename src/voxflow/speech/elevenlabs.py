"""ElevenLabs text-to-speech over its REST API (``POST /v1/text-to-speech/{voice_id}``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import httpx
import numpy as np

from voxflow.errors import ConfigError, TtsNotConfiguredError
from voxflow.media.audio import Int16Array, resample
from voxflow.media.g711 import ulaw_decode
from voxflow.speech.http import post_for_audio
from voxflow.speech.tts import SegmentedProvider

# The speed range the service accepts in voice_settings.
MIN_SPEED: Final = 0.7
MAX_SPEED: Final = 1.2
_PCM_FORMAT: Final = re.compile(r"^pcm_(\d+)$")


@dataclass(frozen=True)
class ElevenLabsSettings:
    """ElevenLabs credentials and defaults; ``output_format`` is ``pcm_<rate>`` or ``ulaw_8000``."""

    api_key: str | None = None
    base_url: str = "https://api.elevenlabs.io"
    default_voice: str = "21m00Tcm4TlvDq8ikWAM"
    model_id: str = "eleven_multilingual_v2"
    output_format: str = "pcm_16000"
    timeout_seconds: float = 10.0


def format_rate(output_format: str) -> int:
    """Sample rate of a supported output format; :class:`ConfigError` for anything else."""
    if output_format == "ulaw_8000":
        return 8000
    match = _PCM_FORMAT.match(output_format)
    if match is None:
        raise ConfigError(
            f"elevenlabs output_format {output_format!r} is not supported; use pcm_<rate> or "
            "ulaw_8000"
        )
    return int(match.group(1))


def decode_body(body: bytes, output_format: str) -> Int16Array:
    """Raw response body → int16 samples (headerless little-endian PCM or µ-law)."""
    if output_format == "ulaw_8000":
        return ulaw_decode(body)
    usable = len(body) - len(body) % 2
    return np.frombuffer(body[:usable], dtype="<i2").astype(np.int16)


class ElevenLabsProvider(SegmentedProvider):
    """ElevenLabs voices, addressed by voice id; needs an API key."""

    name = "eleven_labs"

    def __init__(
        self, settings: ElevenLabsSettings, client: httpx.AsyncClient | None = None
    ) -> None:
        if not settings.api_key:
            raise TtsNotConfiguredError("eleven_labs TTS is not configured: set the API key")
        self._rate_in = format_rate(settings.output_format)
        self._settings = settings
        self.default_voice = settings.default_voice
        self._client = client or httpx.AsyncClient(timeout=settings.timeout_seconds)

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.aclose()

    async def synthesize_text(
        self, text: str, rate: float, voice: str, language: str | None, sample_rate: int
    ) -> Int16Array:
        """One REST call for one segment; the raw PCM answer is resampled if needed."""
        settings = self._settings
        url = f"{settings.base_url.rstrip('/')}/v1/text-to-speech/{quote(voice, safe='')}"
        payload: dict[str, Any] = {"text": text, "model_id": settings.model_id}
        if rate != 1.0:
            payload["voice_settings"] = {"speed": max(MIN_SPEED, min(MAX_SPEED, rate))}
        headers = {"xi-api-key": settings.api_key or "", "Accept": "audio/*"}
        body = await post_for_audio(
            self._client,
            self.name,
            url,
            headers=headers,
            json=payload,
            params={"output_format": settings.output_format},
        )
        return resample(decode_body(body, settings.output_format), self._rate_in, sample_rate)
