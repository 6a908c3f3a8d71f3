"""Who is calling whom: the AI Flow ``session`` object built from a SIP call (pure).

Decision (protocol.md §2): numbers are E.164 with a leading ``+``, taken from the user part of
P-Asserted-Identity (preferred for the caller, since trunks put the verified number there) or
From/To. A user part of digits gets the ``+`` (``00`` international prefix turned into ``+``);
anything else (``alice``) is passed on as it is, because inventing a number would be worse.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from voxflow.errors import SipParseError
from voxflow.protocol import Direction, Session
from voxflow.sip.headers import Address

_DIALLABLE = re.compile(r"^\+?[0-9]+$")
_VISUAL_SEPARATORS = re.compile(r"[\s\-.()]")


def e164(user: str | None, *, plus: bool = True) -> str:
    """``user`` as an E.164 string (``+`` kept or dropped per ``plus``); non-numbers unchanged."""
    if not user:
        return ""
    compact = _VISUAL_SEPARATORS.sub("", user)
    if not _DIALLABLE.match(compact):
        return user
    digits = compact.lstrip("+")
    if not compact.startswith("+") and digits.startswith("00"):
        digits = digits[2:]
    return f"+{digits}" if plus else digits


def asserted_user(header_value: str | None) -> str | None:
    """The user part of a P-Asserted-Identity value, or None when absent or unparseable."""
    if not header_value:
        return None
    try:
        return Address.parse(header_value, "P-Asserted-Identity").uri.user
    except SipParseError:
        return None


def build_session(
    *,
    caller: str | None,
    callee: str | None,
    asserted_identity: str | None,
    account_id: str,
    plus: bool = True,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> Session:
    """The ``session`` object of an inbound call."""
    called = e164(callee, plus=plus)
    return Session(
        id=new_id(),
        account_id=account_id,
        phone_number=called,
        direction=Direction.INBOUND,
        from_phone_number=e164(asserted_user(asserted_identity) or caller, plus=plus),
        to_phone_number=called,
    )
