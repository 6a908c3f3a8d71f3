"""The offline default TTS: the ``espeak-ng`` program run as a subprocess.

A process boundary keeps the GPL synthesiser out of our address space, and asyncio subprocesses
keep the event loop free while it runs. espeak-ng writes 22 050 Hz WAV to stdout; we resample.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from voxflow.errors import MediaError, TtsNotConfiguredError, TtsProviderError
from voxflow.media.audio import Int16Array, decode_wav, resample
from voxflow.speech.tts import SegmentedProvider

logger = logging.getLogger(__name__)

NORMAL_WORDS_PER_MINUTE: Final = 175
MIN_WORDS_PER_MINUTE: Final = 80
MAX_WORDS_PER_MINUTE: Final = 450
_INSTALL_HINT: Final = "install the Debian package 'espeak-ng' (apt-get install espeak-ng)"


def words_per_minute(rate: float) -> int:
    """espeak's ``-s`` value for a rate multiplier, within what espeak accepts."""
    wpm = round(NORMAL_WORDS_PER_MINUTE * rate)
    return max(MIN_WORDS_PER_MINUTE, min(MAX_WORDS_PER_MINUTE, wpm))


def parse_voice_list(listing: str) -> frozenset[str]:
    """Names ``espeak-ng -v`` accepts, lower case, from the output of ``espeak-ng --voices``."""
    names: set[str] = set()
    for line in listing.splitlines()[1:]:
        columns = line.split()
        if len(columns) < 5:
            continue
        language, voice_name, file = columns[1], columns[3], columns[4]
        names.update({language.lower(), voice_name.lower(), file.lower()})
        names.add(file.rsplit("/", 1)[-1].lower())
    return frozenset(names)


class EspeakProvider(SegmentedProvider):
    """espeak-ng via its command-line program; voices are espeak voices or BCP-47 tags."""

    name = "espeak"

    def __init__(
        self,
        executable: str = "espeak-ng",
        default_voice: str = "en-us",
        timeout_seconds: float = 30.0,
    ) -> None:
        self.executable = executable
        self.default_voice = default_voice
        self.timeout_seconds = timeout_seconds
        self._voices: frozenset[str] | None = None

    async def _run(self, args: list[str], stdin: bytes) -> bytes:
        try:
            process = await asyncio.create_subprocess_exec(
                self.executable,
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            raise TtsNotConfiguredError(
                f"espeak TTS: the program {self.executable!r} was not found; {_INSTALL_HINT}"
            ) from None
        try:
            out, err = await asyncio.wait_for(process.communicate(stdin), self.timeout_seconds)
        except TimeoutError:
            await _reap(process)
            raise TtsProviderError(
                f"espeak TTS: no result within {self.timeout_seconds} s", self.name
            ) from None
        except asyncio.CancelledError:
            # A prompt cut short (caller hung up, barge-in) must not leave espeak-ng running.
            await asyncio.shield(_reap(process))
            raise
        if process.returncode != 0:
            message = err.decode(errors="replace").strip()
            raise TtsProviderError(
                f"espeak TTS: {self.executable} exited with {process.returncode}: {message}",
                self.name,
            )
        return out

    async def voices(self) -> frozenset[str]:
        """The voice names this espeak-ng installation accepts (listed once, then cached)."""
        if self._voices is None:
            listing = await self._run(["--voices"], b"")
            self._voices = parse_voice_list(listing.decode(errors="replace"))
        return self._voices

    async def resolve_voice(self, voice: str | None, language: str | None) -> str:
        """Map a requested voice or BCP-47 language to an espeak voice.

        ``en-US`` → ``en-us``, ``de-DE`` → ``de`` (the region-less voice when there is no
        regional one); espeak voice names (``en-gb``, ``de+f3``) pass through; other names use
        their longest known prefix (``en-US-JennyNeural`` → ``en-us``), else the language, else
        the default voice.
        """
        known = await self.voices()
        for candidate in (voice, language):
            if not candidate:
                continue
            tag = candidate.strip().lower()
            base, _, variant = tag.partition("+")
            subtags = base.split("-")
            # Longest known prefix: "en-US-JennyNeural" → "en-us", "de-DE" → "de".
            for length in range(len(subtags), 0, -1):
                prefix = "-".join(subtags[:length])
                if prefix in known:
                    return prefix + (f"+{variant}" if variant else "")
        if voice or language:
            logger.warning(
                "espeak has no voice for voice=%r language=%r; using %r",
                voice,
                language,
                self.default_voice,
            )
        return self.default_voice

    async def synthesize_text(
        self, text: str, rate: float, voice: str, language: str | None, sample_rate: int
    ) -> Int16Array:
        """Run espeak-ng once for ``text`` (``voice`` already resolved) and resample its WAV."""
        args = ["--stdout", "-b", "1", "-v", voice, "-s", str(words_per_minute(rate))]
        wav = await self._run(args, text.encode())
        try:
            samples, rate_in = decode_wav(wav)
        except MediaError as exc:
            raise TtsProviderError(f"espeak TTS: unusable WAV output: {exc}", self.name) from None
        return resample(samples, rate_in, sample_rate)


async def _reap(process: asyncio.subprocess.Process) -> None:
    """Kill ``process`` if it still runs, and wait for it so no zombie or warning is left."""
    if process.returncode is None:
        process.kill()
    await process.wait()
