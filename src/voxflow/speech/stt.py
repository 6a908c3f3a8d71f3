"""The speech-to-text interface: one recognizer per caller utterance, 8 kHz int16 in, text out.

A provider's :meth:`SttProvider.start` opens a recognizer for one utterance; the engine feeds it
the caller's 20 ms frames while the turn lasts, may poll :meth:`Recognizer.partial` (barge-in
by ``minimum_characters``), and calls ``finish`` at the end of the turn. Offline providers
finish synchronously; hosted ones need a network round trip and finish with a coroutine, so
:func:`finish_recognizer` awaits either kind.

Providers are chosen by the names of ``configure_transcription.provider`` (``AZURE``,
``DEEPGRAM``, ``ELEVEN_LABS``, matched case-insensitively) plus voxflow's offline ones:
``pocketsphinx`` (always there), ``whisper`` and ``vosk`` (optional packages, a model directory).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, runtime_checkable

import httpx
import numpy as np
import numpy.typing as npt

from voxflow.errors import ConfigError, MediaError, SttNotConfiguredError, SttProviderError
from voxflow.media.audio import Int16Array

SAMPLE_RATE: Final = 8000
MAX_ERROR_TEXT: Final = 300


@dataclass(frozen=True)
class Transcript:
    """What was recognised: ``text`` (lower case for offline providers), ``confidence`` 0–1."""

    text: str
    confidence: float = 0.0
    is_final: bool = True


@runtime_checkable
class Recognizer(Protocol):
    """One utterance being recognised offline: cheap ``feed``, synchronous ``finish``."""

    def feed(self, samples: Int16Array) -> None:
        """Take the next 8 kHz int16 samples of the utterance."""
        ...

    def partial(self) -> str:
        """The best guess so far ("" when the provider has none before the end)."""
        ...

    def finish(self) -> Transcript:
        """End the utterance and return the final transcript."""
        ...


class AsyncRecognizer(Protocol):
    """One utterance recognised by a service: ``feed`` buffers, ``finish`` does the IO."""

    def feed(self, samples: Int16Array) -> None:
        """Take the next 8 kHz int16 samples of the utterance."""
        ...

    def partial(self) -> str:
        """The best guess so far ("" for services answering only at the end)."""
        ...

    async def finish(self) -> Transcript:
        """Send the utterance and return the final transcript."""
        ...


AnyRecognizer = Recognizer | AsyncRecognizer


class SttProvider(Protocol):
    """A speech recognizer factory, one recognizer per utterance."""

    name: str

    def start(self, language: str | None = None, hints: Sequence[str] = ()) -> AnyRecognizer:
        """Open a recognizer; ``hints`` are the call's ``custom_vocabulary`` (words, phrases)."""
        ...


async def finish_recognizer(recognizer: AnyRecognizer) -> Transcript:
    """``finish`` either kind of recognizer."""
    result: Transcript | Awaitable[Transcript] = recognizer.finish()
    if inspect.isawaitable(result):
        return await result
    return result


async def transcribe(
    provider: SttProvider,
    samples: npt.ArrayLike,
    language: str | None = None,
    hints: Sequence[str] = (),
) -> Transcript:
    """Recognise a whole 8 kHz utterance at once, fed in 20 ms frames like a live call."""
    pcm = as_samples(samples)
    recognizer = provider.start(language, hints)
    for start in range(0, pcm.size, 160):
        recognizer.feed(pcm[start : start + 160])
    return await finish_recognizer(recognizer)


def as_samples(samples: npt.ArrayLike) -> Int16Array:
    """Check that ``samples`` are mono int16 (what every recognizer is fed)."""
    array = np.asarray(samples)
    if array.dtype != np.int16 or array.ndim != 1:
        raise MediaError(
            f"STT input must be mono int16 samples, got {array.dtype} of shape {list(array.shape)}"
        )
    return array


@dataclass
class BufferedUtterance:
    """Samples collected for services that take a whole utterance, capped at ``max_seconds``."""

    max_seconds: float
    chunks: list[Int16Array] = field(default_factory=list)
    size: int = 0

    def add(self, samples: Int16Array) -> None:
        """Keep the samples that fit; the rest of an overlong utterance is dropped."""
        room = int(self.max_seconds * SAMPLE_RATE) - self.size
        pcm = as_samples(samples)[: max(room, 0)]
        if pcm.size:
            self.chunks.append(pcm.copy())
            self.size += pcm.size

    def samples(self) -> Int16Array:
        """All kept samples in order."""
        if not self.chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self.chunks)


class WholeUtteranceRecognizer:
    """The feeding half of a recognizer for services that take the whole utterance at the end:
    ``feed`` buffers (up to ``max_seconds``), ``partial`` has nothing before the end.
    Subclasses send :attr:`audio` in their ``finish``."""

    def __init__(self, max_seconds: float) -> None:
        self.audio = BufferedUtterance(max_seconds)

    def feed(self, samples: Int16Array) -> None:
        """Buffer the samples."""
        self.audio.add(samples)

    def partial(self) -> str:
        """Always "": the service answers only at the end."""
        return ""


def _error_text(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    return text[:MAX_ERROR_TEXT] + ("…" if len(text) > MAX_ERROR_TEXT else "") or "(no body)"


async def post_for_json(
    client: httpx.AsyncClient,
    provider: str,
    url: str,
    *,
    headers: dict[str, str],
    content: bytes,
    params: Mapping[str, str | Sequence[str]] | None = None,
) -> dict[str, Any]:
    """POST audio and return the JSON object answered; every failure is an SttProviderError."""
    try:
        response = await client.post(url, headers=headers, content=content, params=params)
    except httpx.TimeoutException:
        raise SttProviderError(f"{provider} STT: request to {url} timed out", provider) from None
    except httpx.HTTPError as exc:
        raise SttProviderError(
            f"{provider} STT: request to {url} failed: {exc}", provider
        ) from None
    if response.status_code >= 400:
        raise SttProviderError(
            f"{provider} STT: HTTP {response.status_code} from {url}: {_error_text(response)}",
            provider,
            status=response.status_code,
        )
    try:
        body = response.json()
    except ValueError:
        raise SttProviderError(
            f"{provider} STT: answer from {url} is not JSON: {_error_text(response)}", provider
        ) from None
    if not isinstance(body, dict):
        raise SttProviderError(f"{provider} STT: answer from {url} is not a JSON object", provider)
    return body


def canonical_name(name: str) -> str:
    """Provider names compare case-insensitively: ``DEEPGRAM`` and ``deepgram`` are one."""
    return str(name).strip().lower()


@dataclass(frozen=True)
class SttSettings:
    """STT configuration: the default provider and each provider's settings (``None``: off).

    The settings types live with their providers: ``PocketsphinxSettings``,
    ``AzureSttSettings``, ``DeepgramSettings``, ``WhisperSettings``, ``VoskSettings``.
    """

    default_provider: str = "pocketsphinx"
    pocketsphinx: Any = None
    azure: Any = None
    deepgram: Any = None
    whisper: Any = None
    vosk: Any = None


class SttRegistry:
    """Provider lookup by ``configure_transcription.provider`` name, with reasons for the
    providers that are named but cannot run."""

    def __init__(
        self,
        providers: Mapping[str, SttProvider],
        default: str,
        unavailable: Mapping[str, str] | None = None,
    ) -> None:
        self._providers = {canonical_name(k): v for k, v in providers.items()}
        self._unavailable = {canonical_name(k): v for k, v in (unavailable or {}).items()}
        self.default = canonical_name(default)
        if self.default not in self._providers:
            reason = self._unavailable.get(self.default, "it is not a known provider")
            raise ConfigError(f"stt default provider {default!r} cannot be used: {reason}")

    @classmethod
    def build(
        cls,
        default: str,
        builders: Mapping[str, Callable[[], SttProvider] | str],
    ) -> SttRegistry:
        """Build each provider; a string instead of a builder is why that one is unavailable.

        A builder raising :class:`SttNotConfiguredError` makes its provider unavailable too.
        """
        providers: dict[str, SttProvider] = {}
        unavailable: dict[str, str] = {}
        for name, build in builders.items():
            if isinstance(build, str):
                unavailable[name] = build
                continue
            try:
                providers[name] = build()
            except SttNotConfiguredError as exc:
                unavailable[name] = str(exc)
        return cls(providers, default, unavailable)

    @classmethod
    def from_settings(cls, settings: SttSettings) -> SttRegistry:
        """pocketsphinx always; the others when their settings are given.

        whisper and vosk load their model here (a second or two), once per registry.
        """
        # Imported here: the providers import this module for the interface.
        from voxflow.speech.azure_stt import AzureSttProvider
        from voxflow.speech.deepgram import DeepgramProvider
        from voxflow.speech.pocketsphinx_stt import PocketsphinxProvider
        from voxflow.speech.vosk_stt import VoskProvider
        from voxflow.speech.whisper_stt import WhisperProvider

        def hosted(
            name: str, factory: Callable[[Any], SttProvider], config: Any
        ) -> Callable[[], SttProvider] | str:
            if config is None:
                return f"{name} STT is not configured (no settings given)"
            return lambda: factory(config)

        def offline(
            name: str, factory: Callable[[Any], SttProvider], config: Any
        ) -> Callable[[], SttProvider] | str:
            if config is None or not getattr(config, "model_path", None):
                return f"{name} STT is not configured: it needs a model directory (model_path)"
            return lambda: factory(config)

        return cls.build(
            settings.default_provider,
            {
                "pocketsphinx": lambda: PocketsphinxProvider(settings.pocketsphinx),
                "azure": hosted("azure", AzureSttProvider, settings.azure),
                "deepgram": hosted("deepgram", DeepgramProvider, settings.deepgram),
                "whisper": offline("whisper", WhisperProvider, settings.whisper),
                "vosk": offline("vosk", VoskProvider, settings.vosk),
                "eleven_labs": "eleven_labs STT is not supported by voxflow yet; "
                "use AZURE, DEEPGRAM or an offline one (pocketsphinx, whisper, vosk)",
            },
        )

    @property
    def names(self) -> frozenset[str]:
        """Names of the usable providers (lower case)."""
        return frozenset(self._providers)

    def get(self, name: str | None = None) -> SttProvider:
        """The provider called ``name`` (``None`` → the default); else SttNotConfiguredError."""
        key = self.default if name is None else canonical_name(name)
        provider = self._providers.get(key)
        if provider is not None:
            return provider
        reason = self._unavailable.get(key)
        if reason is not None:
            raise SttNotConfiguredError(reason)
        known = ", ".join(sorted(self._providers))
        raise SttNotConfiguredError(f"unknown STT provider {name!r}; configured: {known}")

    async def aclose(self) -> None:
        """Release the providers' connections (HTTP pools)."""
        for provider in self._providers.values():
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()
