"""TTS speed: real-time factor of each offline provider and the cost of a prompt-cache hit.

Run: python benchmarks/tts_bench.py
"""

from __future__ import annotations

import asyncio
import time

from rich.console import Console
from rich.table import Table

from voxflow.speech.cache import PromptCache
from voxflow.speech.espeak import EspeakProvider
from voxflow.speech.tts import SynthesisRequest, TtsProvider

PROMPTS = {
    "short": "Hello.",
    "menu": "Thank you for calling. Press one for sales, press two for support, "
    "or stay on the line.",
    "ssml": '<speak>Your number is <say-as interpret-as="telephone">+49 211 1234567</say-as>.'
    '<break time="500ms"/><prosody rate="slow">Goodbye.</prosody></speak>',
}
REPEATS = 5


def build_request(text: str, sample_rate: int) -> SynthesisRequest:
    if text.startswith("<speak>"):
        return SynthesisRequest.from_ssml(text, sample_rate=sample_rate)
    return SynthesisRequest.from_text(text, sample_rate=sample_rate)


async def measure(provider: TtsProvider, name: str, text: str, sample_rate: int) -> list[str]:
    request = build_request(text, sample_rate)
    await provider.synthesize(request)  # warm-up: voice list, page cache
    walls = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = await provider.synthesize(request)
        walls.append(time.perf_counter() - start)
    cache = PromptCache()
    await cache.synthesize(provider, request)
    start = time.perf_counter()
    for _ in range(1000):
        await cache.synthesize(provider, request)
    hit_us = (time.perf_counter() - start) / 1000 * 1e6
    wall = min(walls)
    audio_s = result.duration_ms / 1000
    return [
        f"{provider.name} ({name})",
        str(sample_rate),
        str(len(text)),
        f"{audio_s:.2f}",
        f"{wall * 1000:.1f} ms",
        f"{wall / audio_s:.4f}",
        f"{hit_us:.1f} µs",
    ]


async def main() -> None:
    table = Table(title=f"TTS synthesis (best of {REPEATS}) and prompt-cache hits")
    for column in ("provider (prompt)", "rate Hz", "chars", "audio s", "wall", "RTF", "cache hit"):
        table.add_column(column, justify="right")
    provider = EspeakProvider()
    for name, text in PROMPTS.items():
        for sample_rate in (8000, 16000):
            table.add_row(*await measure(provider, name, text, sample_rate))
    Console().print(table)


if __name__ == "__main__":
    asyncio.run(main())
