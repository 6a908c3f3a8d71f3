"""PIN entry with ``voxflow.sdk``'s :class:`~voxflow.sdk.DigitCollector`.

Same behaviour as ``pin_entry_flask.py``: four digits then #; short entry or wrong PIN → ask
again; right PIN → thanks and hang up. ``secret=True`` keeps the digits out of the logs.

    python examples/pin_entry_sdk.py [asgi|flask]
"""

from __future__ import annotations

import hmac
import sys

from voxflow.protocol import BaseEvent
from voxflow.sdk import Assistant, DigitCollector, HandlerResult, hangup, speak

# A real assistant would look the caller's PIN up; the demo accepts this one.
EXPECTED_PIN = "1234"
PROMPT = "Please enter your four digit PIN, then press the hash key."


def check_pin(event: BaseEvent, digits: str) -> HandlerResult:
    if hmac.compare_digest(digits, EXPECTED_PIN):
        return [speak("Thank you, your PIN is correct. Goodbye!"), hangup()]
    return "Sorry, that PIN is not correct. " + PROMPT


pin = DigitCollector(
    check_pin,
    prompt=PROMPT,
    min_digits=4,
    terminator="#",
    too_short_prompt="That was less than four digits. " + PROMPT,
    secret=True,
)

assistant = Assistant(on_session_start=pin, on_dtmf_received=pin, on_user_input_timeout=pin)

if __name__ == "__main__":
    assistant.run(server=sys.argv[1] if len(sys.argv) > 1 else "asgi")
