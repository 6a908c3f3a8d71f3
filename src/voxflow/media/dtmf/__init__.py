"""DTMF: keypad facts, the in-band detector and generator, RFC 4733, SIP INFO, the arbiter."""

from voxflow.media.dtmf.arbiter import DtmfArbiter, DtmfPress
from voxflow.media.dtmf.detector import (
    BatchDtmfDetector,
    DetectorSettings,
    DtmfDetector,
    DtmfEvent,
    detect_digits,
)
from voxflow.media.dtmf.events import DtmfSource, KeyDown, KeyUp
from voxflow.media.dtmf.generator import generate_sequence, generate_tone, level_to_amplitude
from voxflow.media.dtmf.keys import ALL_KEYS, DIGITS, EVENT_CODES, KEY_BY_EVENT_CODE, tone_pair
from voxflow.media.dtmf.rfc4733 import (
    RedBlock,
    TelephoneEventBlock,
    TelephoneEventPacket,
    TelephoneEventReceiver,
    TelephoneEventSender,
    build_telephone_event_payload,
    extract_telephone_events,
    parse_telephone_event_payload,
    unwrap_red,
)
from voxflow.media.dtmf.sip_info import SipInfoDtmf, SipInfoDtmfReceiver, parse_sip_info_dtmf

__all__ = [
    "ALL_KEYS",
    "DIGITS",
    "EVENT_CODES",
    "KEY_BY_EVENT_CODE",
    "BatchDtmfDetector",
    "DetectorSettings",
    "DtmfArbiter",
    "DtmfDetector",
    "DtmfEvent",
    "DtmfPress",
    "DtmfSource",
    "KeyDown",
    "KeyUp",
    "RedBlock",
    "SipInfoDtmf",
    "SipInfoDtmfReceiver",
    "TelephoneEventBlock",
    "TelephoneEventPacket",
    "TelephoneEventReceiver",
    "TelephoneEventSender",
    "build_telephone_event_payload",
    "detect_digits",
    "extract_telephone_events",
    "generate_sequence",
    "generate_tone",
    "level_to_amplitude",
    "parse_sip_info_dtmf",
    "parse_telephone_event_payload",
    "tone_pair",
    "unwrap_red",
]
