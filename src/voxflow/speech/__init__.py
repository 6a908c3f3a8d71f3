"""Speech out (TTS providers, the SSML subset, the prompt cache) and, later, speech in."""

from voxflow.speech.cache import PromptCache
from voxflow.speech.registry import TtsRegistry, TtsSelection, TtsSettings
from voxflow.speech.service import TtsService
from voxflow.speech.ssml import BreakSegment, Segment, TextSegment, parse_ssml, strip_ssml
from voxflow.speech.tts import Synthesis, SynthesisRequest, TtsProvider

__all__ = [
    "BreakSegment",
    "PromptCache",
    "Segment",
    "Synthesis",
    "SynthesisRequest",
    "TextSegment",
    "TtsProvider",
    "TtsRegistry",
    "TtsSelection",
    "TtsService",
    "TtsSettings",
    "parse_ssml",
    "strip_ssml",
]
