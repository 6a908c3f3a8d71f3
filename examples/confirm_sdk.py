"""Confirm an appointment with ``voxflow.sdk``'s :class:`~voxflow.sdk.Confirmation`.

Same behaviour as ``confirm_flask.py``: 1 confirms, 2 cancels, anything else asks again.

    python examples/confirm_sdk.py [asgi|flask]
"""

from __future__ import annotations

import sys

from voxflow.sdk import Assistant, Confirmation, hangup, speak

QUESTION = ("You have an appointment tomorrow at 10 a.m. "
            "Press 1 to confirm it, or press 2 to cancel it.")

confirmation = Confirmation(
    QUESTION,
    on_yes=[speak("Thank you, your appointment is confirmed. Goodbye!"), hangup()],
    on_no=[speak("Your appointment has been cancelled. Goodbye!"), hangup()],
    invalid_prompt="Sorry, I did not get that.",
)

assistant = Assistant(
    on_session_start=confirmation,
    on_dtmf_received=confirmation,
    on_user_input_timeout=confirmation,
)

if __name__ == "__main__":
    assistant.run(server=sys.argv[1] if len(sys.argv) > 1 else "asgi")
