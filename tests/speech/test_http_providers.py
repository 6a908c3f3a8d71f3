"""Azure and ElevenLabs providers against a real local HTTP server that records requests."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import numpy.typing as npt
import pytest
from recording_http_server import RecordingServer

from voxflow.errors import ConfigError, TtsNotConfiguredError, TtsProviderError
from voxflow.media.audio import encode_wav
from voxflow.media.g711 import ulaw_encode
from voxflow.speech.azure import AzureProvider, AzureSettings
from voxflow.speech.elevenlabs import ElevenLabsProvider, ElevenLabsSettings
from voxflow.speech.tts import SynthesisRequest

SSML_NS = "{http://www.w3.org/2001/10/synthesis}"


def half_second_tone(rate: int) -> npt.NDArray[np.int16]:
    t = np.arange(rate // 2) / rate
    return np.round(8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


def azure(server: RecordingServer) -> AzureProvider:
    return AzureProvider(AzureSettings(subscription_key="secret-key", endpoint=server.url))


def eleven(server: RecordingServer, output_format: str = "pcm_16000") -> ElevenLabsProvider:
    settings = ElevenLabsSettings(
        api_key="xi-secret", base_url=server.url, output_format=output_format
    )
    return ElevenLabsProvider(settings)


@pytest.mark.parametrize("sample_rate", [8000, 16000])
async def test_azure_request_and_audio(recording_server: RecordingServer, sample_rate: int) -> None:
    recording_server.body = encode_wav(half_second_tone(sample_rate), sample_rate)
    provider = azure(recording_server)
    request = SynthesisRequest.from_ssml(
        '<speak>Hallo &amp; willkommen <prosody rate="1.2">schnell</prosody></speak>',
        voice="de-DE-KatjaNeural",
        sample_rate=sample_rate,
    )
    result = await provider.synthesize(request)
    await provider.aclose()

    assert len(recording_server.requests) == 2  # one per segment
    first, second = recording_server.requests
    assert first.method == "POST"
    assert first.path == "/cognitiveservices/v1"
    assert first.headers["ocp-apim-subscription-key"] == "secret-key"
    assert first.headers["content-type"] == "application/ssml+xml"
    expected_format = f"riff-{sample_rate // 1000}khz-16bit-mono-pcm"
    assert first.headers["x-microsoft-outputformat"] == expected_format
    root = ET.fromstring(first.body)
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "de-DE"
    voice = root.find(f"{SSML_NS}voice")
    assert voice is not None
    assert voice.get("name") == "de-DE-KatjaNeural"
    assert voice.text == "Hallo & willkommen"
    prosody = ET.fromstring(second.body).find(f"{SSML_NS}voice/{SSML_NS}prosody")
    assert prosody is not None
    assert prosody.get("rate") == "+20%"
    assert prosody.text == "schnell"

    assert result.provider == "azure"
    assert result.voice == "de-DE-KatjaNeural"
    assert result.sample_rate == sample_rate
    assert result.samples.size == sample_rate  # two half-second answers
    assert result.duration_ms == 1000


async def test_azure_answer_at_another_rate_is_resampled(
    recording_server: RecordingServer,
) -> None:
    recording_server.body = encode_wav(half_second_tone(24000), 24000)
    provider = azure(recording_server)
    result = await provider.synthesize(SynthesisRequest.from_text("hi", sample_rate=8000))
    await provider.aclose()
    assert result.samples.size == 4000


async def test_azure_error_names_status_and_service_text(
    recording_server: RecordingServer,
) -> None:
    recording_server.status = 401
    recording_server.body = b"Access denied due to invalid subscription key."
    provider = azure(recording_server)
    with pytest.raises(TtsProviderError, match=r"HTTP 401.*invalid subscription key") as caught:
        await provider.synthesize(SynthesisRequest.from_text("hi"))
    await provider.aclose()
    assert caught.value.status == 401
    assert caught.value.provider == "azure"


async def test_azure_garbage_audio_is_a_provider_error(recording_server: RecordingServer) -> None:
    recording_server.body = b"<html>not audio</html>"
    provider = azure(recording_server)
    with pytest.raises(TtsProviderError, match="unusable audio"):
        await provider.synthesize(SynthesisRequest.from_text("hi"))
    await provider.aclose()


def test_azure_without_key_or_region_is_not_configured() -> None:
    with pytest.raises(TtsNotConfiguredError, match="subscription key"):
        AzureProvider(AzureSettings(region="westeurope"))
    with pytest.raises(TtsNotConfiguredError, match="region"):
        AzureProvider(AzureSettings(subscription_key="k"))


def test_azure_regional_url() -> None:
    provider = AzureProvider(AzureSettings(subscription_key="k", region="westeurope"))
    assert provider.url == "https://westeurope.tts.speech.microsoft.com/cognitiveservices/v1"


@pytest.mark.parametrize("sample_rate", [8000, 16000])
async def test_elevenlabs_request_and_audio(
    recording_server: RecordingServer, sample_rate: int
) -> None:
    recording_server.body = half_second_tone(16000).astype("<i2").tobytes()
    provider = eleven(recording_server)
    request = SynthesisRequest.from_text("Hello there", voice="voice/1", sample_rate=sample_rate)
    result = await provider.synthesize(request)
    await provider.aclose()

    (recorded,) = recording_server.requests
    assert recorded.method == "POST"
    assert recorded.path == "/v1/text-to-speech/voice%2F1"
    assert recorded.query == {"output_format": "pcm_16000"}
    assert recorded.headers["xi-api-key"] == "xi-secret"
    assert recorded.headers["content-type"] == "application/json"
    assert json.loads(recorded.body) == {
        "text": "Hello there",
        "model_id": "eleven_multilingual_v2",
    }
    assert result.provider == "eleven_labs"
    assert result.voice == "voice/1"
    assert result.sample_rate == sample_rate
    assert result.samples.size == sample_rate // 2


async def test_elevenlabs_ulaw_and_speed(recording_server: RecordingServer) -> None:
    recording_server.body = ulaw_encode(half_second_tone(8000)).tobytes()
    provider = eleven(recording_server, output_format="ulaw_8000")
    request = SynthesisRequest.from_ssml('<prosody rate="x-slow">slowly</prosody>')
    result = await provider.synthesize(request)
    await provider.aclose()
    (recorded,) = recording_server.requests
    assert recorded.query == {"output_format": "ulaw_8000"}
    assert json.loads(recorded.body)["voice_settings"] == {"speed": 0.7}
    assert recorded.path == "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM"
    assert result.samples.size == 4000
    assert np.max(np.abs(result.samples.astype(np.int32))) > 7000


async def test_elevenlabs_error(recording_server: RecordingServer) -> None:
    recording_server.status = 422
    recording_server.body = b'{"detail": {"status": "voice_not_found"}}'
    provider = eleven(recording_server)
    with pytest.raises(TtsProviderError, match=r"HTTP 422.*voice_not_found"):
        await provider.synthesize(SynthesisRequest.from_text("x"))
    await provider.aclose()


async def test_unreachable_service_is_a_provider_error() -> None:
    provider = ElevenLabsProvider(
        ElevenLabsSettings(api_key="k", base_url="http://127.0.0.1:9", timeout_seconds=2)
    )
    with pytest.raises(TtsProviderError, match="failed"):
        await provider.synthesize(SynthesisRequest.from_text("x"))
    await provider.aclose()


def test_elevenlabs_configuration_errors() -> None:
    with pytest.raises(TtsNotConfiguredError, match="API key"):
        ElevenLabsProvider(ElevenLabsSettings())
    with pytest.raises(ConfigError, match="mp3_44100"):
        ElevenLabsProvider(ElevenLabsSettings(api_key="k", output_format="mp3_44100"))
