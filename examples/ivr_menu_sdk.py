"""The IVR menu from the AI Flow DTMF documentation, written with ``voxflow.sdk``.

Same behaviour as ``ivr_menu_flask.py``: 1 → transfer to +49211100200, 2 → +49211100201,
# → "Goodbye" then hang up, any other key or silence → the menu again.

    python examples/ivr_menu_sdk.py          # ASGI (uvicorn) on http://127.0.0.1:8000/
    python examples/ivr_menu_sdk.py flask    # the same over Flask
    voxflow demo                             # a scripted call against this assistant
"""

from __future__ import annotations

import sys

from voxflow.sdk import Assistant, Menu, hangup, speak, transfer

MENU_TEXT = ("Welcome to the demo company. Press 1 for sales, press 2 for support, "
             "or press the hash key to end the call.")

menu = Menu(
    speak(MENU_TEXT, user_input_timeout_seconds=8),
    {
        "1": transfer("+49211100200"),
        "2": transfer("+49211100201"),
        "#": [speak("Goodbye!"), hangup()],
    },
)

assistant = Assistant(on_session_start=menu, on_dtmf_received=menu, on_user_input_timeout=menu)

if __name__ == "__main__":
    assistant.run(server=sys.argv[1] if len(sys.argv) > 1 else "asgi")
