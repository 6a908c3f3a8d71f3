"""Turn ``speak``/``audio``/``mix_audio`` actions into 8 kHz samples for the playback queue."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging

from voxflow.engine.playback import Samples
from voxflow.errors import MediaError, SsmlError
from voxflow.media.audio import decode_wav_at
from voxflow.protocol import AudioAction, MixAudioAction, SpeakAction
from voxflow.speech import TtsService, strip_ssml

log = logging.getLogger(__name__)


class PromptMaker:
    """Synthesises speech (through the shared prompt cache) and decodes WAV audio."""

    def __init__(self, tts: TtsService, sample_rate: int = 8000) -> None:
        self.tts = tts
        self.sample_rate = sample_rate

    async def make(self, action: SpeakAction | AudioAction | MixAudioAction) -> Samples:
        """The samples of ``action``; raises a ``VoxflowError`` saying why they cannot be made."""
        if isinstance(action, SpeakAction):
            return await self._speak(action)
        return await asyncio.to_thread(self._decode, action.audio or "")

    async def _speak(self, action: SpeakAction) -> Samples:
        try:
            synthesis = await self.tts.speak(
                text=action.text, ssml=action.ssml, tts=action.tts, sample_rate=self.sample_rate
            )
        except SsmlError as exc:
            # Saying the words without the markup beats saying nothing.
            log.warning("speak: SSML not usable (%s); speaking its text instead", exc)
            synthesis = await self.tts.speak(
                text=strip_ssml(action.ssml or ""), tts=action.tts, sample_rate=self.sample_rate
            )
        return synthesis.samples

    def _decode(self, audio: str) -> Samples:
        try:
            data = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MediaError(f"audio: not valid base64 ({exc})") from None
        return decode_wav_at(data, self.sample_rate)
