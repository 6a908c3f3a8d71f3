"""The DTMF keypad: keys, their tone pairs and their RFC 4733 event codes.

Layout (rows x columns)::

             1209  1336  1477  1633 Hz
    697 Hz     1     2     3     A
    770 Hz     4     5     6     B
    852 Hz     7     8     9     C
    941 Hz     *     0     #     D
"""

from __future__ import annotations

from typing import Final

ROW_FREQUENCIES: Final = (697.0, 770.0, 852.0, 941.0)
COLUMN_FREQUENCIES: Final = (1209.0, 1336.0, 1477.0, 1633.0)

#: Keys in keypad order, row by row.
KEYPAD: Final = ("123A", "456B", "789C", "*0#D")

#: The keys that become ``dtmf_received`` events by default.
DIGITS: Final = frozenset("0123456789*#")
#: All sixteen DTMF keys.
ALL_KEYS: Final = frozenset("0123456789*#ABCD")

#: RFC 4733 telephone-event code of every key (16 is hook flash and is not a key).
EVENT_CODES: Final[dict[str, int]] = {
    **{str(d): d for d in range(10)},
    "*": 10,
    "#": 11,
    "A": 12,
    "B": 13,
    "C": 14,
    "D": 15,
}
KEY_BY_EVENT_CODE: Final[dict[int, str]] = {code: key for key, code in EVENT_CODES.items()}
FLASH_EVENT_CODE: Final = 16


def tone_pair(key: str) -> tuple[float, float]:
    """Return the (row, column) frequencies in Hz of ``key``; raise ``ValueError`` if unknown."""
    for row, keys in enumerate(KEYPAD):
        column = keys.find(key.upper()) if len(key) == 1 else -1
        if column >= 0:
            return ROW_FREQUENCIES[row], COLUMN_FREQUENCIES[column]
    raise ValueError(f"{key!r} is not a DTMF key (expected one of 0-9, *, #, A-D)")
