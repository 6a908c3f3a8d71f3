"""The IVR menu from the AI Flow DTMF documentation, as a plain Flask webhook (no voxflow).

This is how AI Flow assistants are written today, and voxflow must serve it unchanged:
press 1 → transfer to sales (+49211100200), 2 → support (+49211100201), # → "Goodbye" and hang
up, any other key (or silence) → the menu again. Every other event gets ``204 No Content``.

    python examples/ivr_menu_flask.py       # webhook on http://127.0.0.1:8000/
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request

MENU_TEXT = ("Welcome to the demo company. Press 1 for sales, press 2 for support, "
             "or press the hash key to end the call.")
TRANSFER_TARGETS = {"1": "+49211100200", "2": "+49211100201"}

app = Flask(__name__)


def menu(session_id: str) -> dict[str, Any]:
    return {"type": "speak", "session_id": session_id, "text": MENU_TEXT,
            "user_input_timeout_seconds": 8}


@app.post("/")
def webhook() -> Response | tuple[Response, int]:
    event = request.get_json(silent=True)
    if not isinstance(event, dict) or not isinstance(event.get("session"), dict):
        return jsonify({"error": "expected an AI Flow event with a session"}), 400
    session_id = event["session"].get("id")
    kind = event.get("type")

    if kind in ("session_start", "user_input_timeout"):
        return jsonify(menu(session_id))
    if kind == "dtmf_received":
        digit = event.get("digit")
        if digit in TRANSFER_TARGETS:
            return jsonify({"type": "transfer", "session_id": session_id,
                            "target_phone_number": TRANSFER_TARGETS[digit]})
        if digit == "#":
            return jsonify([{"type": "speak", "session_id": session_id, "text": "Goodbye!"},
                            {"type": "hangup", "session_id": session_id}])
        return jsonify(menu(session_id))
    return Response(status=204)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=8000)
