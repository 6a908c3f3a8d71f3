"""Serve an :class:`~voxflow.sdk.Assistant` from Flask (WSGI).

Flask is an optional extra (``pip install voxflow[flask]``); it is imported only when one of
these functions is called, so ``import voxflow.sdk`` works without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from voxflow.sdk.assistant import Assistant
from voxflow.sdk.webhook import answer_webhook_sync

if TYPE_CHECKING:
    from flask import Blueprint, Flask, Response


def flask_view(assistant: Assistant) -> Callable[[], Response]:
    """A view function: ``app.add_url_rule("/webhook", view_func=..., methods=["POST"])``."""
    from flask import Response, request

    def view() -> Response:
        body = request.get_data(cache=False)
        headers = dict(request.headers.items())
        answer = answer_webhook_sync(assistant, headers, body, time.time())
        return Response(answer.body, status=answer.status, content_type=answer.content_type)

    return view


def flask_blueprint(assistant: Assistant, path: str = "/", name: str = "voxflow") -> Blueprint:
    """A blueprint with the webhook at ``path``, to mount into an existing Flask app."""
    from flask import Blueprint

    blueprint = Blueprint(name, __name__)
    blueprint.add_url_rule(path, endpoint="webhook", view_func=flask_view(assistant),
                           methods=["POST"])
    return blueprint


def create_flask_app(assistant: Assistant, path: str = "/") -> Flask:
    """A Flask app serving only the webhook at ``path``."""
    from flask import Flask

    app = Flask("voxflow")
    app.register_blueprint(flask_blueprint(assistant, path))
    return app
