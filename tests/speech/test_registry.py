"""Provider selection by the action's ``tts`` field, configuration errors, the TTS service."""

from __future__ import annotations

import numpy as np
import pytest
from recording_http_server import RecordingServer

from voxflow.errors import ConfigError, SsmlError, TtsNotConfiguredError
from voxflow.media.audio import encode_wav
from voxflow.protocol.actions import SpeakAction, TtsConfig
from voxflow.protocol.enums import TtsProvider
from voxflow.speech import TtsRegistry, TtsService, TtsSettings
from voxflow.speech.azure import AzureSettings
from voxflow.speech.elevenlabs import ElevenLabsSettings


def test_default_registry_has_only_espeak() -> None:
    registry = TtsRegistry.from_settings(TtsSettings())
    assert registry.names == {"espeak"}
    assert registry.select(None).name == "espeak"
    assert registry.select(TtsConfig(provider=TtsProvider.ESPEAK)).name == "espeak"


def test_unconfigured_provider_says_what_to_set() -> None:
    registry = TtsRegistry.from_settings(TtsSettings(azure=AzureSettings(region="westeurope")))
    with pytest.raises(TtsNotConfiguredError, match="subscription key"):
        registry.select(TtsConfig(provider=TtsProvider.AZURE))
    with pytest.raises(TtsNotConfiguredError, match="no settings given"):
        registry.select(TtsConfig(provider=TtsProvider.ELEVEN_LABS))
    with pytest.raises(TtsNotConfiguredError, match="unknown TTS provider 'festival'"):
        registry.get("festival")


def test_selection_by_tts_field() -> None:
    settings = TtsSettings(
        default_provider="eleven_labs",
        azure=AzureSettings(subscription_key="k", region="westeurope"),
        eleven_labs=ElevenLabsSettings(api_key="k"),
    )
    registry = TtsRegistry.from_settings(settings)
    assert registry.names == {"espeak", "azure", "eleven_labs"}
    assert registry.select(None).name == "eleven_labs"
    assert registry.select(TtsConfig(provider=TtsProvider.AZURE)).name == "azure"
    assert registry.select(TtsConfig(provider=TtsProvider.ESPEAK)).name == "espeak"


def test_unusable_default_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"default provider 'azure'.*subscription key"):
        TtsRegistry.from_settings(
            TtsSettings(default_provider="azure", azure=AzureSettings(region="westeurope"))
        )


async def test_service_speaks_a_speak_action_through_the_cache() -> None:
    service = TtsService(TtsRegistry.from_settings(TtsSettings()))
    action = SpeakAction.model_validate(
        {
            "type": "speak",
            "session_id": "s1",
            "ssml": '<speak>One <break time="500ms"/> two</speak>',
            "tts": {"provider": "espeak", "language": "de-DE"},
        }
    )
    first = await service.speak(text=action.text, ssml=action.ssml, tts=action.tts)
    again = await service.speak(text=action.text, ssml=action.ssml, tts=action.tts)
    assert again is first
    assert first.voice == "de"
    assert first.duration_ms > 500
    assert service.cache.hits == 1


async def test_service_raises_ssml_error_for_the_engine_to_fall_back() -> None:
    service = TtsService(TtsRegistry.from_settings(TtsSettings()))
    with pytest.raises(SsmlError):
        await service.speak(ssml="<speak>broken")


async def test_service_routes_to_azure_by_tts_field(recording_server: RecordingServer) -> None:
    recording_server.body = encode_wav(np.full(1600, 1000, dtype=np.int16), 16000)
    settings = TtsSettings(azure=AzureSettings(subscription_key="k", endpoint=recording_server.url))
    service = TtsService(TtsRegistry.from_settings(settings))
    tts = TtsConfig(provider=TtsProvider.AZURE, language="en-US", voice="en-US-JennyNeural")
    result = await service.speak(text="Hello", tts=tts, sample_rate=16000)
    assert result.provider == "azure"
    assert result.samples.size == 1600
    assert len(recording_server.requests) == 1
    assert b"en-US-JennyNeural" in recording_server.requests[0].body
    await service.registry.aclose()
