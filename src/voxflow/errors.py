"""The one exception hierarchy of voxflow.

Every error raised on purpose by voxflow derives from :class:`VoxflowError`. Messages say what was
wrong, where, and (when it is not obvious) what to do about it.
"""

from __future__ import annotations


class VoxflowError(Exception):
    """Base class of every error voxflow raises on purpose."""


class ProtocolError(VoxflowError, ValueError):
    """An AI Flow event or action did not match the wire format.

    ``problems`` lists each problem as ``"<field path>: <message>"``.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = problems if problems is not None else [message]


class SignatureError(VoxflowError):
    """A webhook request's token or signature did not verify."""


class HandlerError(VoxflowError):
    """An assistant's handler raised, or returned something that is not a valid action.

    The fault is the assistant's, not the caller's: adapters answer 500 and keep serving.
    """

    def __init__(self, message: str, session_id: str | None = None) -> None:
        super().__init__(message)
        self.session_id = session_id


class OutboundCallError(VoxflowError):
    """The outbound-call API refused a call or could not be reached (``status`` is None then)."""

    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class MediaError(VoxflowError, ValueError):
    """Audio or media input could not be used (bad sample rate, bad WAV, wrong shape ...)."""


class DtmfParseError(MediaError):
    """A DTMF report (SIP INFO body, RFC 4733 payload) could not be understood."""


class SipParseError(VoxflowError, ValueError):
    """A SIP message could not be parsed; ``status`` is the response code to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class SdpError(VoxflowError, ValueError):
    """An SDP body could not be parsed or negotiated; ``status`` is the SIP code to answer."""

    def __init__(self, message: str, status: int = 488) -> None:
        super().__init__(message)
        self.status = status


class RtpParseError(VoxflowError, ValueError):
    """An RTP packet could not be parsed."""


class ConfigError(VoxflowError):
    """The configuration is invalid; the message names the setting."""


class SipStateError(VoxflowError):
    """A SIP command does not fit the current call or transaction state (or the call is gone)."""


class RtpError(VoxflowError):
    """An RTP session or transport could not do what was asked (nothing negotiated for it, no
    free port in the configured range, no remote address yet ...)."""


class TtsError(VoxflowError):
    """Speech could not be synthesised."""


class TtsNotConfiguredError(TtsError, ConfigError):
    """A TTS provider was asked for but is not configured (no key) or not installed."""


class TtsProviderError(TtsError):
    """A TTS provider failed: an HTTP error status, a bad answer, or a failed synthesiser run.

    ``provider`` names the provider; ``status`` is the HTTP status (``None`` when not HTTP).
    """

    def __init__(self, message: str, provider: str, status: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status


class SsmlError(TtsError, ValueError):
    """SSML could not be parsed (malformed XML, a bad attribute value, too long ...)."""


class VadNotAvailableError(ConfigError, ImportError):
    """An optional voice activity detector was asked for but its packages are not installed."""


class SttError(VoxflowError):
    """Speech could not be recognised."""


class SttNotConfiguredError(SttError, ConfigError):
    """An STT provider was asked for but is not configured (no key, no model) or not installed."""


class SttProviderError(SttError):
    """An STT provider failed: an HTTP error status, a bad answer, or a decoder failure.

    ``provider`` names the provider; ``status`` is the HTTP status (``None`` when not HTTP).
    """

    def __init__(self, message: str, provider: str, status: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
