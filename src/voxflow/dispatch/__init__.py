"""Hand events to the assistant (HTTP webhook, WebSocket, in-process) and get actions back.

The engine uses :class:`SessionDispatch` around any :class:`Dispatcher`: it orders events per
call, logs and counts failures, passes actions on and asks for the fallback after repeated
failures.
"""

from voxflow.dispatch.base import Dispatcher, EventHandler, PushDispatcher, ResultSink
from voxflow.dispatch.inprocess import InProcessDispatcher
from voxflow.dispatch.ordering import (
    ActionsCallback,
    FailurePolicy,
    FallbackCallback,
    ResultObserver,
    SessionDispatch,
)
from voxflow.dispatch.result import DeliveryOutcome, DeliveryResult
from voxflow.dispatch.webhook import WebhookDispatcher
from voxflow.dispatch.websocket import WebSocketDispatcher

__all__ = [
    "ActionsCallback",
    "DeliveryOutcome",
    "DeliveryResult",
    "Dispatcher",
    "EventHandler",
    "FailurePolicy",
    "FallbackCallback",
    "InProcessDispatcher",
    "PushDispatcher",
    "ResultObserver",
    "ResultSink",
    "SessionDispatch",
    "WebSocketDispatcher",
    "WebhookDispatcher",
]
