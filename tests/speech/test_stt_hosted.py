"""Deepgram and Azure STT against a real local HTTP server; the STT registry."""

from __future__ import annotations

import json

import numpy as np
import pytest
from recording_http_server import RecordingServer

from voxflow.errors import ConfigError, MediaError, SttNotConfiguredError, SttProviderError
from voxflow.media.audio import decode_wav
from voxflow.protocol import TranscriptionProvider
from voxflow.speech.azure_stt import AzureSttProvider, AzureSttSettings
from voxflow.speech.deepgram import DeepgramProvider, DeepgramSettings
from voxflow.speech.pocketsphinx_stt import PocketsphinxProvider
from voxflow.speech.stt import SttRegistry, SttSettings, transcribe

TONE = (3000 * np.sin(np.arange(8000) * 2 * np.pi * 440 / 8000)).astype(np.int16)


def answer(server: RecordingServer, body: object, status: int = 200) -> None:
    server.body = json.dumps(body).encode()
    server.status = status
    server.content_type = "application/json"


async def test_deepgram_request_shape_and_transcript(recording_server: RecordingServer) -> None:
    answer(
        recording_server,
        {"results": {"channels": [{"alternatives": [{"transcript": "sales", "confidence": 0.9}]}]}},
    )
    provider = DeepgramProvider(DeepgramSettings(api_key="k1", base_url=recording_server.url))
    try:
        transcript = await transcribe(provider, TONE, "en-US", ["sales", "support"])
    finally:
        await provider.aclose()
    assert (transcript.text, transcript.confidence) == ("sales", 0.9)
    (request,) = recording_server.requests
    assert request.path == "/v1/listen"
    assert request.query["keywords"] == "support"  # repeated; the recorder keeps the last
    assert request.query["encoding"] == "linear16"
    assert request.query["sample_rate"] == "8000"
    assert request.query["language"] == "en-US"
    assert request.headers["authorization"] == "Token k1"
    assert np.array_equal(np.frombuffer(request.body, "<i2"), TONE)


async def test_azure_request_shape_and_best_result(recording_server: RecordingServer) -> None:
    answer(
        recording_server,
        {
            "RecognitionStatus": "Success",
            "NBest": [{"Display": "Talk to sales.", "Confidence": 0.8}],
        },
    )
    settings = AzureSttSettings(subscription_key="k2", endpoint=recording_server.url)
    provider = AzureSttProvider(settings)
    try:
        transcript = await transcribe(provider, TONE, "de-DE")
    finally:
        await provider.aclose()
    assert (transcript.text, transcript.confidence) == ("Talk to sales.", 0.8)
    (request,) = recording_server.requests
    assert request.path == "/speech/recognition/conversation/cognitiveservices/v1"
    assert request.query == {"language": "de-DE", "format": "detailed"}
    assert request.headers["ocp-apim-subscription-key"] == "k2"
    assert "samplerate=16000" in request.headers["content-type"]
    samples, rate = decode_wav(request.body)
    assert rate == 16000 and abs(samples.size - 16000) < 100


async def test_azure_nothing_said_is_an_empty_transcript(
    recording_server: RecordingServer,
) -> None:
    answer(recording_server, {"RecognitionStatus": "InitialSilenceTimeout"})
    provider = AzureSttProvider(
        AzureSttSettings(subscription_key="k", endpoint=recording_server.url)
    )
    try:
        assert (await transcribe(provider, TONE)).text == ""
    finally:
        await provider.aclose()


@pytest.mark.parametrize(
    ("status", "body", "match"),
    [
        (401, {"err_msg": "Invalid credentials"}, "HTTP 401.*Invalid credentials"),
        (200, {"results": {}}, "alternatives"),
        (200, [1, 2], "not a JSON object"),
    ],
)
async def test_deepgram_failures_name_the_problem(
    recording_server: RecordingServer, status: int, body: object, match: str
) -> None:
    answer(recording_server, body, status)
    provider = DeepgramProvider(DeepgramSettings(api_key="k", base_url=recording_server.url))
    try:
        with pytest.raises(SttProviderError, match=match) as info:
            await transcribe(provider, TONE)
    finally:
        await provider.aclose()
    assert info.value.provider == "deepgram"


async def test_unreachable_service_is_a_provider_error() -> None:
    provider = DeepgramProvider(DeepgramSettings(api_key="k", base_url="http://127.0.0.1:9"))
    try:
        with pytest.raises(SttProviderError, match="failed"):
            await transcribe(provider, TONE)
    finally:
        await provider.aclose()


async def test_registry_selects_by_wire_names() -> None:
    registry = SttRegistry.from_settings(
        SttSettings(deepgram=DeepgramSettings(api_key="k"), azure=AzureSttSettings())
    )
    try:
        assert registry.names == {"pocketsphinx", "deepgram"}
        assert isinstance(registry.get(), PocketsphinxProvider)
        assert isinstance(registry.get(TranscriptionProvider.DEEPGRAM), DeepgramProvider)
        with pytest.raises(SttNotConfiguredError, match="subscription_key") as info:
            registry.get(TranscriptionProvider.AZURE)
        assert isinstance(info.value, ConfigError)
        with pytest.raises(SttNotConfiguredError, match="not supported"):
            registry.get(TranscriptionProvider.ELEVEN_LABS)
        with pytest.raises(SttNotConfiguredError, match="unknown STT provider 'festival'"):
            registry.get("festival")
    finally:
        await registry.aclose()


def test_unusable_default_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"'deepgram' cannot be used.*not configured"):
        SttRegistry.from_settings(SttSettings(default_provider="deepgram"))


async def test_non_int16_input_is_rejected() -> None:
    provider = DeepgramProvider(DeepgramSettings(api_key="k"))
    try:
        with pytest.raises(MediaError, match="int16"):
            await transcribe(provider, np.zeros(10, np.float64))
    finally:
        await provider.aclose()
