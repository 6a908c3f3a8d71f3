"""Confirm an appointment with the keypad, as a plain Flask webhook (no voxflow).

1 confirms, 2 cancels (each then says goodbye and hangs up); another key or silence asks again.

    python examples/confirm_flask.py        # webhook on http://127.0.0.1:8000/
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request

QUESTION = ("You have an appointment tomorrow at 10 a.m. "
            "Press 1 to confirm it, or press 2 to cancel it.")
NOT_UNDERSTOOD = "Sorry, I did not get that."
CONFIRMED = "Thank you, your appointment is confirmed. Goodbye!"
CANCELLED = "Your appointment has been cancelled. Goodbye!"

app = Flask(__name__)


def speak(session_id: str, text: str) -> dict[str, Any]:
    return {"type": "speak", "session_id": session_id, "text": text}


def goodbye(session_id: str, text: str) -> list[dict[str, Any]]:
    return [speak(session_id, text), {"type": "hangup", "session_id": session_id}]


@app.post("/")
def webhook() -> Response | tuple[Response, int]:
    event = request.get_json(silent=True)
    if not isinstance(event, dict) or not isinstance(event.get("session"), dict):
        return jsonify({"error": "expected an AI Flow event with a session"}), 400
    session_id = event["session"].get("id")
    kind = event.get("type")

    if kind in ("session_start", "user_input_timeout"):
        return jsonify(speak(session_id, QUESTION))
    if kind == "dtmf_received":
        digit = event.get("digit")
        if digit == "1":
            return jsonify(goodbye(session_id, CONFIRMED))
        if digit == "2":
            return jsonify(goodbye(session_id, CANCELLED))
        return jsonify([speak(session_id, NOT_UNDERSTOOD), speak(session_id, QUESTION)])
    return Response(status=204)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=8000)
