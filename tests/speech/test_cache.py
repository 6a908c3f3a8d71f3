"""Prompt cache: hits, shared concurrent misses, LRU eviction by bytes, disk persistence."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from voxflow.errors import TtsProviderError
from voxflow.speech.cache import PromptCache, cache_key
from voxflow.speech.espeak import EspeakProvider
from voxflow.speech.tts import Synthesis, SynthesisRequest


class CountingEspeak(EspeakProvider):
    """The real espeak provider, counting how often it is really asked."""

    def __init__(self, executable: str = "espeak-ng") -> None:
        super().__init__(executable)
        self.calls = 0

    async def synthesize(self, request: SynthesisRequest) -> Synthesis:
        self.calls += 1
        return await super().synthesize(request)


def request(text: str = "Welcome to voxflow", voice: str | None = None) -> SynthesisRequest:
    return SynthesisRequest.from_text(text, voice=voice)


def npz_files(directory: Path) -> list[Path]:
    return list(directory.glob("*.npz"))


async def test_second_call_is_a_hit_and_shares_read_only_samples() -> None:
    provider, cache = CountingEspeak(), PromptCache()
    first = await cache.synthesize(provider, request())
    second = await cache.synthesize(provider, request())
    assert second is first
    assert provider.calls == 1
    assert (cache.hits, cache.misses) == (1, 1)
    assert not first.samples.flags.writeable


async def test_key_includes_voice_rate_and_text() -> None:
    provider, cache = CountingEspeak(), PromptCache()
    await cache.synthesize(provider, request())
    await cache.synthesize(provider, request(voice="en-gb"))
    await cache.synthesize(provider, request("Something else"))
    await cache.synthesize(
        provider, SynthesisRequest.from_text("Welcome to voxflow", sample_rate=16000)
    )
    assert provider.calls == 4
    assert len(cache) == 4


async def test_concurrent_requests_synthesise_once() -> None:
    provider, cache = CountingEspeak(), PromptCache()
    results = await asyncio.gather(*(cache.synthesize(provider, request()) for _ in range(10)))
    assert provider.calls == 1
    assert all(result is results[0] for result in results)
    assert cache.hits == 9


async def test_a_failure_reaches_every_waiter_and_is_not_cached() -> None:
    # "false" starts (so the waiters pile up on the shared miss) and then fails.
    broken, cache = CountingEspeak("false"), PromptCache()
    outcomes = await asyncio.gather(
        *(cache.synthesize(broken, request()) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(outcome, TtsProviderError) for outcome in outcomes)
    assert broken.calls == 1
    assert len(cache) == 0
    working = CountingEspeak()
    working.name = broken.name
    assert (await cache.synthesize(working, request())).samples.size > 0


async def test_lru_eviction_by_bytes() -> None:
    provider = CountingEspeak()
    sizes = [(await provider.synthesize(request(text))).samples.nbytes for text in "abc"]
    cache = PromptCache(max_bytes=sizes[0] + sizes[1] + sizes[2] - 1)
    await cache.synthesize(provider, request("a"))
    await cache.synthesize(provider, request("b"))
    await cache.synthesize(provider, request("a"))  # a becomes most recently used
    await cache.synthesize(provider, request("c"))  # evicts b
    assert cache_key(provider, request("a")) in cache
    assert cache_key(provider, request("b")) not in cache
    assert cache_key(provider, request("c")) in cache
    assert cache.size_bytes <= cache.max_bytes


async def test_prompt_larger_than_the_cache_is_returned_but_not_kept() -> None:
    provider, cache = CountingEspeak(), PromptCache(max_bytes=100)
    result = await cache.synthesize(provider, request())
    assert result.samples.size > 50
    assert len(cache) == 0


async def test_disk_cache_survives_a_new_instance(tmp_path: Path) -> None:
    provider = CountingEspeak()
    first = await PromptCache(directory=tmp_path).synthesize(provider, request())
    assert len(npz_files(tmp_path)) == 1
    again = await PromptCache(directory=tmp_path).synthesize(provider, request())
    assert provider.calls == 1
    assert np.array_equal(again.samples, first.samples)
    assert (again.provider, again.voice, again.sample_rate) == ("espeak", "en-us", 8000)


async def test_corrupt_disk_entry_is_resynthesised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    provider = CountingEspeak()
    await PromptCache(directory=tmp_path).synthesize(provider, request())
    (path,) = npz_files(tmp_path)
    await asyncio.to_thread(path.write_bytes, b"not an npz")
    result = await PromptCache(directory=tmp_path).synthesize(provider, request())
    assert provider.calls == 2
    assert result.samples.size > 0
    assert "unreadable cached prompt" in caplog.text
