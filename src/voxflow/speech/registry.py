"""Which TTS provider speaks: chosen by the action's ``tts.provider`` or the configured default.

Providers that are named in the settings but cannot run (no key, nothing installed) are kept
with the reason, so selecting one gives a message that says what to configure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from voxflow.errors import ConfigError, TtsNotConfiguredError
from voxflow.speech.azure import AzureProvider, AzureSettings
from voxflow.speech.elevenlabs import ElevenLabsProvider, ElevenLabsSettings
from voxflow.speech.espeak import EspeakProvider
from voxflow.speech.tts import TtsProvider


class TtsSelection(Protocol):
    """The action's ``tts`` object (``voxflow.protocol.TtsConfig`` fits)."""

    @property
    def provider(self) -> str: ...
    @property
    def language(self) -> str | None: ...
    @property
    def voice(self) -> str | None: ...


@dataclass(frozen=True)
class TtsSettings:
    """TTS configuration: the default provider and the credentials of the web services."""

    default_provider: str = "espeak"
    espeak_executable: str = "espeak-ng"
    espeak_voice: str = "en-us"
    azure: AzureSettings | None = None
    eleven_labs: ElevenLabsSettings | None = None


class TtsRegistry:
    """Provider lookup by name, with the reason for every provider that is not usable."""

    def __init__(
        self,
        providers: Mapping[str, TtsProvider],
        default: str,
        unavailable: Mapping[str, str] | None = None,
    ) -> None:
        self._providers = dict(providers)
        self._unavailable = dict(unavailable or {})
        if default not in self._providers:
            reason = self._unavailable.get(default, "it is not a known provider")
            raise ConfigError(f"tts default provider {default!r} cannot be used: {reason}")
        self.default = default

    @classmethod
    def from_settings(cls, settings: TtsSettings) -> TtsRegistry:
        """Build every provider the settings allow; espeak is always there."""
        providers: dict[str, TtsProvider] = {
            EspeakProvider.name: EspeakProvider(
                settings.espeak_executable, default_voice=settings.espeak_voice
            )
        }
        unavailable: dict[str, str] = {}
        builders: dict[str, Callable[[], TtsProvider] | None] = {
            AzureProvider.name: (
                None if settings.azure is None else partial(AzureProvider, settings.azure)
            ),
            ElevenLabsProvider.name: (
                None
                if settings.eleven_labs is None
                else partial(ElevenLabsProvider, settings.eleven_labs)
            ),
        }
        for name, build in builders.items():
            if build is None:
                unavailable[name] = f"{name} TTS is not configured (no settings given)"
                continue
            try:
                providers[name] = build()
            except TtsNotConfiguredError as exc:
                unavailable[name] = str(exc)
        return cls(providers, settings.default_provider, unavailable)

    @property
    def names(self) -> frozenset[str]:
        """Names of the usable providers."""
        return frozenset(self._providers)

    def get(self, name: str) -> TtsProvider:
        """The provider called ``name``; :class:`TtsNotConfiguredError` says why not."""
        provider = self._providers.get(str(name))
        if provider is not None:
            return provider
        reason = self._unavailable.get(str(name))
        if reason is not None:
            raise TtsNotConfiguredError(reason)
        known = ", ".join(sorted(self._providers))
        raise TtsNotConfiguredError(f"unknown TTS provider {str(name)!r}; configured: {known}")

    async def aclose(self) -> None:
        """Release the providers' connections (HTTP pools)."""
        for provider in self._providers.values():
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()

    def select(self, selection: TtsSelection | None) -> TtsProvider:
        """The provider for an action's ``tts`` (``None`` → the default)."""
        return self.get(self.default if selection is None else selection.provider)
