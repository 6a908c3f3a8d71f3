"""SIP requests and responses (RFC 3261 §7): parse from one UDP datagram, serialize to bytes.

Parsing is strict where a wrong guess would be dangerous (start line, Content-Length, the
headers every transaction needs) and lenient where RFC 3261 asks for it (compact names, any
case, folded lines, LF-only line ends, CRLF keep-alives before the start line). Every problem
raises :class:`SipParseError` whose message names what was wrong and whose ``status`` is the
response code to send.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from voxflow.errors import SipParseError
from voxflow.sip.headers import TOKEN, Address, CSeq, Headers, Via
from voxflow.sip.uri import SipUri

MAX_MESSAGE_SIZE = 65536
"""Datagrams above this size are refused (UDP cannot carry more in practice)."""

SIP_VERSION = "SIP/2.0"

REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "Version Not Supported",
    513: "Message Too Large",
    603: "Decline",
}

_REQUEST_MANDATORY = ("Via", "From", "To", "Call-ID", "CSeq")
#: Headers a message carries exactly once (RFC 3261 §7.3.1, §20).
_SINGLE_VALUED = ("From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length")


def _excerpt(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


@dataclass
class Message:
    """What requests and responses share: headers, body and typed access to common headers."""

    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @property
    def call_id(self) -> str:
        """The Call-ID."""
        return self._required("Call-ID")

    @property
    def cseq(self) -> CSeq:
        """The parsed CSeq."""
        return CSeq.parse(self._required("CSeq"))

    @property
    def from_address(self) -> Address:
        """The parsed From header."""
        return Address.parse(self._required("From"), "From")

    @property
    def to_address(self) -> Address:
        """The parsed To header."""
        return Address.parse(self._required("To"), "To")

    @property
    def vias(self) -> list[Via]:
        """Every Via entry, topmost first."""
        return [Via.parse(value) for value in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        """The topmost Via."""
        return Via.parse(self._required("Via"))

    @property
    def content_type(self) -> str | None:
        """Media type of the body, lower-cased, without parameters."""
        value = self.headers.get("Content-Type")
        return value.split(";")[0].strip().lower() if value else None

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if not value:
            raise SipParseError(f"missing mandatory header {name}")
        return value

    def _serialize(self, start_line: str) -> bytes:
        lines = [start_line]
        lines.extend(f"{name}: {value}" for name, value in self.headers if name != "Content-Length")
        lines.append(f"Content-Length: {len(self.body)}")
        head = "\r\n".join(lines) + "\r\n\r\n"
        return head.encode("utf-8", "surrogateescape") + self.body

    def __bytes__(self) -> bytes:
        raise NotImplementedError


@dataclass
class Request(Message):
    """A SIP request."""

    method: str = "OPTIONS"
    uri: SipUri = field(default_factory=lambda: SipUri("sip", None, "invalid"))

    def __bytes__(self) -> bytes:
        return self._serialize(f"{self.method} {self.uri} {SIP_VERSION}")


@dataclass
class Response(Message):
    """A SIP response."""

    status: int = 200
    reason: str = "OK"

    def __bytes__(self) -> bytes:
        return self._serialize(f"{SIP_VERSION} {self.status} {self.reason}")

    @classmethod
    def for_request(
        cls,
        request: Request,
        status: int,
        reason: str | None = None,
        to_tag: str | None = None,
        body: bytes = b"",
    ) -> Response:
        """A response copying Via, From, To, Call-ID, CSeq (RFC 3261 §8.2.6.2).

        Every Via is copied, but only the first of the single-valued headers: the 400 for a
        request that repeated one must not repeat it too.
        """
        headers = Headers()
        for via in request.headers.get_all("Via"):
            headers.add("Via", via)
        for name in ("From", "To", "Call-ID", "CSeq"):
            value = request.headers.get(name)
            if value is None:
                continue
            if name == "To" and to_tag is not None and status != 100:
                value = _with_tag(value, to_tag)
            headers.add(name, value)
        return cls(headers, body, status, reason or REASON_PHRASES.get(status, "Unknown"))


def _with_tag(to: str, tag: str) -> str:
    """The To header with our tag, unless it has one; as it came if it cannot be parsed (only
    the 400 answering that very problem is built from such a request)."""
    try:
        address = Address.parse(to, "To")
    except SipParseError:
        return to
    return to if address.tag is not None else str(address.with_tag(tag))


def _split_head_and_body(data: bytes) -> tuple[str, bytes]:
    index = data.find(b"\r\n\r\n")
    width = 4
    lf_index = data.find(b"\n\n")
    if lf_index >= 0 and (index < 0 or lf_index < index):
        index, width = lf_index, 2
    if index < 0:
        raise SipParseError(
            f"truncated message: no empty line after the headers ({len(data)} bytes received)"
        )
    return data[:index].decode("utf-8", "surrogateescape"), data[index + width :]


def _parse_header_lines(lines: list[str], lenient: bool) -> Headers:
    headers = Headers()
    current: list[str] | None = None
    for number, line in enumerate(lines, start=2):
        if line[:1] in (" ", "\t"):
            if current is None:
                raise SipParseError(f"line {number} continues a header but none came before it")
            current[1] += " " + line.strip()  # folding: LWS joins continuation lines
            continue
        if current is not None:
            headers.add(current[0], current[1])
            current = None
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not TOKEN.match(name):
            if lenient:
                continue
            raise SipParseError(
                f"line {number} is not a header field 'Name: value': {_excerpt(line)}"
            )
        current = [name, value]
    if current is not None:
        headers.add(current[0], current[1])
    return headers


def _parse_start_line(line: str) -> tuple[str, str, str]:
    parts = line.split(" ", 2)
    if len(parts) != 3 or not all(parts):
        raise SipParseError(
            f"bad start line {_excerpt(line)}: expected three space-separated parts"
        )
    return parts[0], parts[1], parts[2]


def _build_message(start: str, headers: Headers, body: bytes) -> Request | Response:
    first, second, third = _parse_start_line(start)
    if first.upper().startswith("SIP/"):
        if first.upper() != SIP_VERSION:
            raise SipParseError(f"unsupported SIP version {first!r}", status=505)
        if len(second) != 3 or not second.isdigit() or not 100 <= int(second) <= 699:
            raise SipParseError(f"bad status code {second!r} in status line")
        return Response(headers, body, int(second), third)
    if not TOKEN.match(first):
        raise SipParseError(f"bad method {_excerpt(first)} in request line")
    if third.upper() != SIP_VERSION:
        raise SipParseError(f"unsupported SIP version {_excerpt(third)}", status=505)
    try:
        uri = SipUri.parse(second)
    except SipParseError as error:
        raise SipParseError(
            f"bad Request-URI: {error}", status=416 if ":" in second else 400
        ) from None
    return Request(headers, body, first.upper(), uri)


def _apply_content_length(headers: Headers, body: bytes) -> bytes:
    values = headers.get_all("Content-Length")
    if not values:
        return body  # RFC 3261 §18.3: over UDP the body runs to the end of the datagram
    if len(set(values)) > 1:
        raise SipParseError(f"conflicting Content-Length headers {values}")
    text = values[0].strip()
    if not text.isdigit():
        raise SipParseError(f"bad Content-Length {text!r}: not a non-negative integer")
    length = int(text)
    if length > len(body):
        raise SipParseError(
            f"truncated body: Content-Length is {length} but only {len(body)} bytes arrived"
        )
    return body[:length]  # extra bytes after the declared body are discarded (§18.3)


def _check_mandatory(message: Request | Response) -> None:
    for name in _REQUEST_MANDATORY:
        if not message.headers.get(name):
            raise SipParseError(f"missing mandatory header {name}")
    for name in _SINGLE_VALUED:
        # A second copy would be ignored by every check here but copied into responses.
        count = len(message.headers.get_all(name))
        if count > 1:
            raise SipParseError(f"header {name} appears {count} times; it must appear once")
    message.top_via  # noqa: B018  (parsing validates)
    message.from_address  # noqa: B018
    message.to_address  # noqa: B018
    cseq = message.cseq
    if isinstance(message, Request) and cseq.method != message.method:
        raise SipParseError(
            f"CSeq method {cseq.method} does not match request method {message.method}"
        )


def parse_message(data: bytes) -> Request | Response:
    """Parse one datagram; raise :class:`SipParseError` naming the first problem found."""
    if len(data) > MAX_MESSAGE_SIZE:
        raise SipParseError(
            f"message of {len(data)} bytes exceeds the {MAX_MESSAGE_SIZE}-byte limit", status=513
        )
    data = data.lstrip(b"\r\n")
    if not data:
        raise SipParseError("empty message")
    head, body = _split_head_and_body(data)
    lines = head.replace("\r\n", "\n").split("\n")
    headers = _parse_header_lines(lines[1:], lenient=False)
    message = _build_message(lines[0], headers, _apply_content_length(headers, body))
    _check_mandatory(message)
    return message


def salvage_request(data: bytes) -> Request | None:
    """Best-effort read of a broken request, enough to address a 400 to it; None if hopeless.

    Needs a readable request line and the Via, From, To, Call-ID and CSeq a response copies.
    """
    try:
        text = data[:MAX_MESSAGE_SIZE].lstrip(b"\r\n").decode("utf-8", "surrogateescape")
        head = text.replace("\r\n", "\n").split("\n\n", 1)[0]
        lines = head.split("\n")
        request = _build_message(lines[0], _parse_header_lines(lines[1:], lenient=True), b"")
        if not isinstance(request, Request) or request.method == "ACK":
            return None
        for name in _REQUEST_MANDATORY:
            request._required(name)
        request.top_via.response_address()  # must be addressable
        return request
    except SipParseError:
        return None
