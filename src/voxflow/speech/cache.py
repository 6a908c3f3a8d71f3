"""Prompt cache: synthesised prompts keyed by (provider, voice, language, rate, segments).

Memory is an LRU bounded in bytes; an optional directory keeps prompts across restarts (one
``.npz`` per prompt, named by a hash of the key). Concurrent requests for the same prompt share
one synthesis, so a burst of calls answering with the same greeting costs one TTS request.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import Final

import numpy as np

from voxflow.speech.ssml import Segment
from voxflow.speech.tts import Synthesis, SynthesisRequest, TtsProvider

logger = logging.getLogger(__name__)

CacheKey = tuple[str, str | None, str | None, int, tuple[Segment, ...]]
DEFAULT_MAX_BYTES: Final = 64 * 1024 * 1024


def cache_key(provider: TtsProvider, request: SynthesisRequest) -> CacheKey:
    """What makes two prompts the same."""
    return (provider.name, request.voice, request.language, request.sample_rate, request.segments)


class PromptCache:
    """In-memory LRU (bounded in bytes) with optional on-disk persistence and shared misses."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, directory: Path | None = None) -> None:
        self.max_bytes = max_bytes
        self.directory = directory
        self.hits = 0
        self.misses = 0
        self.size_bytes = 0
        self._entries: OrderedDict[CacheKey, Synthesis] = OrderedDict()
        self._in_flight: dict[CacheKey, asyncio.Future[Synthesis]] = {}
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    async def synthesize(self, provider: TtsProvider, request: SynthesisRequest) -> Synthesis:
        """The cached prompt, or synthesise it once (other callers for it wait and share)."""
        key = cache_key(provider, request)
        cached = self._entries.get(key)
        if cached is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return cached
        pending = self._in_flight.get(key)
        if pending is not None:
            self.hits += 1
            # Shielded: one waiter giving up must not cancel the synthesis the others await.
            return await asyncio.shield(pending)
        self.misses += 1
        future: asyncio.Future[Synthesis] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            result = await self._load_or_synthesize(key, provider, request)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so an unawaited failure is not reported twice
            raise
        finally:
            del self._in_flight[key]
        self._remember(key, result)
        future.set_result(result)
        return result

    async def _load_or_synthesize(
        self, key: CacheKey, provider: TtsProvider, request: SynthesisRequest
    ) -> Synthesis:
        path = self._path(key)
        if path is not None and path.exists():
            loaded = await asyncio.to_thread(_load, path)
            if loaded is not None:
                return loaded
        result = await provider.synthesize(request)
        if path is not None:
            await asyncio.to_thread(_save, path, result)
        return result

    def _path(self, key: CacheKey) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / (hashlib.sha256(repr(key).encode()).hexdigest() + ".npz")

    def _remember(self, key: CacheKey, result: Synthesis) -> None:
        size = result.samples.nbytes
        if size > self.max_bytes:
            return
        result.samples.flags.writeable = False  # shared by every caller from now on
        self._entries[key] = result
        self.size_bytes += size
        while self.size_bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.size_bytes -= evicted.samples.nbytes


def _save(path: Path, result: Synthesis) -> None:
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    with temporary.open("wb") as file:
        np.savez(
            file,
            samples=result.samples,
            sample_rate=np.int64(result.sample_rate),
            provider=np.str_(result.provider),
            voice=np.str_(result.voice),
        )
    # Atomic, so a concurrent reader never sees half a file.
    os.replace(temporary, path)


def _load(path: Path) -> Synthesis | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            return Synthesis(
                data["samples"].astype(np.int16),
                int(data["sample_rate"]),
                str(data["provider"]),
                str(data["voice"]),
            )
    except (OSError, ValueError, KeyError) as exc:
        logger.warning("ignoring unreadable cached prompt %s: %s", path, exc)
        return None
