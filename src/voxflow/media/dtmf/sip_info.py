"""DTMF carried in SIP INFO requests: tolerant body parsing and per-transaction de-duplication.

Accepted content types (parameters such as ``;charset=`` are ignored):

* ``application/dtmf-relay``: lines ``Signal=<key>`` and optional ``Duration=<ms>``, any case,
  ``=`` or ``:`` with spaces around, CRLF/LF/CR endings, extra lines, ``Signal=10``/``11`` for
  ``*``/``#`` (12-15 for A-D, 16 or ``!`` for hook flash); a body that is just a key is accepted.
* ``application/dtmf``: the body is the key or its event number.
* ``application/hook-flash``: a hook flash, whatever the body.
* ``audio/telephone-event``: a raw RFC 4733 payload, as some devices send it in INFO.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from dataclasses import dataclass

from voxflow.errors import DtmfParseError
from voxflow.media.dtmf.events import DtmfSource, KeyDown, KeyUp
from voxflow.media.dtmf.keys import ALL_KEYS, FLASH_EVENT_CODE, KEY_BY_EVENT_CODE
from voxflow.media.dtmf.rfc4733 import parse_telephone_event_payload

logger = logging.getLogger(__name__)

DTMF_RELAY = "application/dtmf-relay"
DTMF = "application/dtmf"
HOOK_FLASH = "application/hook-flash"
TELEPHONE_EVENT = "audio/telephone-event"
#: Content types this module understands; answer other INFO bodies per the SIP layer's policy.
SUPPORTED_CONTENT_TYPES = frozenset({DTMF_RELAY, DTMF, HOOK_FLASH, TELEPHONE_EVENT})

_FIELD = re.compile(r"^\s*([A-Za-z][\w-]*)\s*[=:]\s*(.*?)\s*$")
_LEADING_NUMBER = re.compile(r"\d{1,7}(?:\.\d*)?")
_SIGNAL_NAMES = frozenset({"signal", "d"})
_DURATION_NAMES = frozenset({"duration"})
_FLASH_TOKENS = frozenset({"!", "hf", "flash", "hook-flash", "hookflash"})
#: How long a (Call-ID, CSeq) stays remembered: an INFO's UDP retransmissions stop after
#: 64*T1 = 32 s (RFC 3261 Timer F/H), so later copies cannot occur.
DEFAULT_DEDUP_MS = 32_000.0


@dataclass(frozen=True, slots=True)
class SipInfoDtmf:
    """What one INFO body reported: a key (``flash`` False) or a hook flash (``key`` None).

    ``duration_ms`` is the sender's stated duration, ``None`` when it gave none.
    """

    key: str | None
    flash: bool
    duration_ms: float | None


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _text(body: str | bytes) -> str:
    if isinstance(body, str):
        return body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DtmfParseError(f"INFO DTMF body is not UTF-8 text: {exc}") from exc


def _binary(body: str | bytes) -> bytes:
    if isinstance(body, bytes):
        return body
    # a str body of a binary type must have been decoded as latin-1; anything else is not ours
    try:
        return body.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise DtmfParseError(
            f"audio/telephone-event INFO body given as text holds non-byte characters: {exc}"
        ) from None


def _signal(value: str) -> SipInfoDtmf:
    token = value.strip().strip("\"'").strip()
    if not token:
        raise DtmfParseError("INFO DTMF signal is empty")
    if token.lower() in _FLASH_TOKENS:
        return SipInfoDtmf(None, True, None)
    if token.isdecimal() and len(token) <= 3:
        code = int(token)
        if code == FLASH_EVENT_CODE:
            return SipInfoDtmf(None, True, None)
        if code in KEY_BY_EVENT_CODE:
            return SipInfoDtmf(KEY_BY_EVENT_CODE[code], False, None)
    if token.upper() in ALL_KEYS:
        return SipInfoDtmf(token.upper(), False, None)
    raise DtmfParseError(
        f"INFO DTMF signal {token!r} is not a key (expected 0-9, *, #, A-D, an event number "
        "0-16, or ! for flash)"
    )


def _duration(value: str) -> float | None:
    number = _LEADING_NUMBER.match(value.strip())
    if number is None:
        logger.info("INFO DTMF Duration %r is not a number of milliseconds; ignored", value)
        return None
    return float(number.group(0))


def _parse_relay(text: str) -> SipInfoDtmf:
    signal: SipInfoDtmf | None = None
    duration: float | None = None
    for line in text.splitlines():
        field = _FIELD.match(line)
        if field is None:
            continue
        name = field.group(1).lower()
        if name in _SIGNAL_NAMES and signal is None:
            signal = _signal(field.group(2))
        elif name in _DURATION_NAMES and duration is None:
            duration = _duration(field.group(2))
    if signal is None:
        bare = text.strip()
        if bare and "\n" not in bare and "=" not in bare and ":" not in bare:
            signal = _signal(bare)
        else:
            shown = text if len(text) <= 60 else text[:57] + "..."
            raise DtmfParseError(f"application/dtmf-relay body has no Signal line: {shown!r}")
    return SipInfoDtmf(signal.key, signal.flash, duration)


def _parse_telephone_event(body: bytes) -> SipInfoDtmf:
    block = parse_telephone_event_payload(body)[0]
    if block.event == FLASH_EVENT_CODE:
        return SipInfoDtmf(None, True, None)
    key = KEY_BY_EVENT_CODE.get(block.event)
    if key is None:
        raise DtmfParseError(f"audio/telephone-event INFO carries event {block.event}, not a key")
    # The duration is in RTP clock units of an unknown clock; don't guess a conversion.
    return SipInfoDtmf(key, False, None)


def parse_sip_info_dtmf(content_type: str, body: str | bytes) -> SipInfoDtmf:
    """Parse the body of a DTMF INFO request.

    Raises :class:`~voxflow.errors.DtmfParseError` naming what was wrong: an unsupported content
    type, a body without a Signal line, or a signal that is not a key.
    """
    media_type = _media_type(content_type)
    if media_type == HOOK_FLASH:
        return SipInfoDtmf(None, True, None)
    if media_type == TELEPHONE_EVENT:
        return _parse_telephone_event(_binary(body))
    if media_type == DTMF_RELAY:
        return _parse_relay(_text(body))
    if media_type == DTMF:
        text = _text(body).strip()
        if not text:
            raise DtmfParseError("application/dtmf body is empty; expected a key or event number")
        return _signal(text)
    raise DtmfParseError(
        f"INFO content type {content_type!r} carries no DTMF (supported: "
        f"{', '.join(sorted(SUPPORTED_CONTENT_TYPES))})"
    )


class SipInfoDtmfReceiver:
    """Turns DTMF INFO requests of one call into KeyDown/KeyUp, once per INFO transaction.

    A UDP retransmission repeats Call-ID and CSeq, so a repeated (Call-ID, CSeq) within
    ``dedup_ms`` is the same press and yields nothing. Hook flash and keys outside ``key_filter``
    yield nothing either (use :func:`parse_sip_info_dtmf` to see flashes).
    """

    def __init__(
        self, *, key_filter: frozenset[str] = ALL_KEYS, dedup_ms: float = DEFAULT_DEDUP_MS
    ) -> None:
        self.key_filter = key_filter
        self.dedup_ms = dedup_ms
        self._seen: OrderedDict[tuple[str, int], float] = OrderedDict()

    def receive(
        self, call_id: str, cseq: int, content_type: str, body: str | bytes, now_ms: float
    ) -> list[KeyDown | KeyUp]:
        """Handle one INFO request; raises ``DtmfParseError`` for a body it cannot use."""
        self._forget_before(now_ms - self.dedup_ms)
        transaction = (call_id, cseq)
        if transaction in self._seen:
            logger.debug("INFO retransmission %s CSeq %d ignored", call_id, cseq)
            return []
        report = parse_sip_info_dtmf(content_type, body)
        self._seen[transaction] = now_ms
        if report.key is None:
            logger.info("INFO hook flash received (not a key)")
            return []
        if report.key not in self.key_filter:
            logger.info("INFO key %r filtered out", report.key)
            return []
        return [
            KeyDown(report.key, DtmfSource.SIP_INFO, now_ms, now_ms),
            KeyUp(report.key, DtmfSource.SIP_INFO, now_ms, report.duration_ms),
        ]

    def _forget_before(self, cutoff_ms: float) -> None:
        while self._seen:
            transaction, seen_ms = next(iter(self._seen.items()))
            if seen_ms >= cutoff_ms:
                return
            del self._seen[transaction]
