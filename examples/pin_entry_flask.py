"""PIN entry as a plain Flask webhook (no voxflow): four digits, then the hash key.

The digits typed so far are kept per call and forgotten when the call ends. A short entry or a
wrong PIN asks again; the right PIN is thanked and the call ends.

    python examples/pin_entry_flask.py      # webhook on http://127.0.0.1:8000/
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Flask, Response, jsonify, request

# A real assistant would look the caller's PIN up; the demo accepts this one.
EXPECTED_PIN = "1234"
PIN_DIGITS = 4
PROMPT = "Please enter your four digit PIN, then press the hash key."
TOO_SHORT = "That was less than four digits. " + PROMPT
WRONG = "Sorry, that PIN is not correct. " + PROMPT
CORRECT = "Thank you, your PIN is correct. Goodbye!"

app = Flask(__name__)
typed: dict[str, str] = {}  # session id → digits typed so far


def speak(session_id: str, text: str) -> dict[str, Any]:
    return {"type": "speak", "session_id": session_id, "text": text}


def check(session_id: str, digits: str) -> Any:
    if hmac.compare_digest(digits, EXPECTED_PIN):
        return [speak(session_id, CORRECT), {"type": "hangup", "session_id": session_id}]
    return speak(session_id, WRONG)


@app.post("/")
def webhook() -> Response | tuple[Response, int]:
    event = request.get_json(silent=True)
    if not isinstance(event, dict) or not isinstance(event.get("session"), dict):
        return jsonify({"error": "expected an AI Flow event with a session"}), 400
    session_id = event["session"].get("id")
    kind = event.get("type")

    if kind == "session_start":
        typed[session_id] = ""
        return jsonify(speak(session_id, PROMPT))
    if kind == "dtmf_received":
        digit = event.get("digit", "")
        if digit != "#":
            typed[session_id] = typed.get(session_id, "") + digit
            return Response(status=204)
        digits = typed.pop(session_id, "")
        if len(digits) < PIN_DIGITS:
            return jsonify(speak(session_id, TOO_SHORT))
        return jsonify(check(session_id, digits))
    if kind == "user_input_timeout":
        digits = typed.pop(session_id, "")
        if len(digits) >= PIN_DIGITS:
            return jsonify(check(session_id, digits))
        return jsonify(speak(session_id, PROMPT))
    if kind == "session_end":
        typed.pop(session_id, None)
    return Response(status=204)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=8000)
