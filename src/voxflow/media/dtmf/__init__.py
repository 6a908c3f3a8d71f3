"""DTMF: keypad facts, the in-band detector and generator, RFC 4733, SIP INFO, the arbiter."""

from voxflow.media.dtmf.events import DtmfSource, KeyDown, KeyUp
from voxflow.media.dtmf.generator import generate_sequence, generate_tone, level_to_amplitude
from voxflow.media.dtmf.keys import ALL_KEYS, DIGITS, EVENT_CODES, KEY_BY_EVENT_CODE, tone_pair

__all__ = [
    "ALL_KEYS",
    "DIGITS",
    "EVENT_CODES",
    "KEY_BY_EVENT_CODE",
    "DtmfSource",
    "KeyDown",
    "KeyUp",
    "generate_sequence",
    "generate_tone",
    "level_to_amplitude",
    "tone_pair",
]
