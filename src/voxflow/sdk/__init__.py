"""The assistant SDK: write an AI Flow assistant in Python and serve it any way you like.

>>> from voxflow.sdk import Assistant, Menu, transfer, speak, hangup
>>> menu = Menu("Press 1 for sales, 2 for support.",
...             {"1": transfer("+49211100200"), "2": transfer("+49211100201"),
...              "#": [speak("Goodbye!"), hangup()]})
>>> assistant = Assistant(on_session_start=menu, on_dtmf_received=menu)

Serve it with ``assistant.asgi_app()`` (uvicorn), ``assistant.flask_app()`` (Flask extra),
:func:`voxflow.sdk.websocket.websockets_handler` (WebSocket integration), or hand events to
``await assistant.handle(event)`` directly. Importing this package imports neither Flask nor
Starlette; the adapters load them when used.
"""

from voxflow.sdk.assistant import Assistant, EventInput, Handler, Handlers, SessionScoped
from voxflow.sdk.coercion import HandlerResult, coerce_result
from voxflow.sdk.keypad import Confirmation, DigitCollector, Menu
from voxflow.sdk.loading import load_assistant
from voxflow.sdk.outbound import DEFAULT_BASE_URL, OutboundCall, call, call_sync
from voxflow.sdk.replies import Reply, audio, barge_in, hangup, reply, speak, transfer
from voxflow.sdk.signing import check_token, sign, verify

__all__ = [
    "DEFAULT_BASE_URL",
    "Assistant",
    "Confirmation",
    "DigitCollector",
    "EventInput",
    "Handler",
    "HandlerResult",
    "Handlers",
    "Menu",
    "OutboundCall",
    "Reply",
    "SessionScoped",
    "audio",
    "barge_in",
    "call",
    "call_sync",
    "check_token",
    "coerce_result",
    "hangup",
    "load_assistant",
    "reply",
    "sign",
    "speak",
    "transfer",
    "verify",
]
