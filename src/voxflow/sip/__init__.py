"""voxflow.sip: the sans-IO SIP core (messages, SDP, digest, transactions, dialogs, user agent)."""

from voxflow.sip.config import Credentials, InboundAuth, SipConfig, TrunkRegistration
from voxflow.sip.message import MAX_MESSAGE_SIZE, Request, Response, parse_message
from voxflow.sip.sdp import LocalMedia, NegotiatedMedia, SessionDescription
from voxflow.sip.useragent import UserAgent

__all__ = [
    "MAX_MESSAGE_SIZE",
    "Credentials",
    "InboundAuth",
    "LocalMedia",
    "NegotiatedMedia",
    "Request",
    "Response",
    "SessionDescription",
    "SipConfig",
    "TrunkRegistration",
    "UserAgent",
    "parse_message",
]
