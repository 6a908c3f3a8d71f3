"""SIP header fields: the case-insensitive multi-valued collection and the structured values.

Names are normalised to one canonical spelling (compact forms expanded, ``call-id`` →
``Call-ID``) so lookups never depend on how the peer wrote them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from voxflow.errors import SipParseError
from voxflow.sip.uri import SipUri, format_params, split_outside_quotes, split_params

COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_SPECIAL_SPELLINGS = (
    "Call-ID",
    "CSeq",
    "WWW-Authenticate",
    "MIME-Version",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "RAck",
    "RSeq",
    "SIP-ETag",
    "SIP-If-Match",
)
_CANONICAL: dict[str, str] = {name.lower(): name for name in _SPECIAL_SPELLINGS}

# Headers whose grammar is a comma-separated list, so ``a, b`` equals two header lines.
# Auth headers, dates and free text are deliberately absent: their values contain commas.
LIST_HEADERS = frozenset(
    {
        "Via",
        "Contact",
        "Route",
        "Record-Route",
        "Allow",
        "Supported",
        "Require",
        "Proxy-Require",
        "Unsupported",
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Allow-Events",
        "Content-Encoding",
        "In-Reply-To",
        "P-Asserted-Identity",
    }
)

TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")


def canonical_name(name: str) -> str:
    """Canonical spelling of a header name, expanding compact forms."""
    lowered = name.strip().lower()
    if lowered in COMPACT_FORMS:
        return COMPACT_FORMS[lowered]
    if lowered in _CANONICAL:
        return _CANONICAL[lowered]
    return "-".join(part.capitalize() for part in lowered.split("-"))


class Headers:
    """Ordered header fields with case-insensitive, compact-form-aware access."""

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str]] = []
        for name, value in items or []:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        """Append one header field."""
        self._items.append((canonical_name(name), value.strip()))

    def set(self, name: str, value: str) -> None:
        """Replace every field called ``name`` by one field, kept at the first one's position."""
        canonical = canonical_name(name)
        for index, (existing, _) in enumerate(self._items):
            if existing == canonical:
                self._items[index] = (canonical, value.strip())
                self._items = [
                    item for i, item in enumerate(self._items) if i <= index or item[0] != canonical
                ]
                return
        self._items.append((canonical, value.strip()))

    def remove(self, name: str) -> None:
        """Drop every field called ``name``."""
        canonical = canonical_name(name)
        self._items = [item for item in self._items if item[0] != canonical]

    def get(self, name: str) -> str | None:
        """First value of ``name`` (first list element for list headers), or None."""
        values = self.get_all(name)
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``; list headers are split at top-level commas."""
        canonical = canonical_name(name)
        raw = [value for existing, value in self._items if existing == canonical]
        if canonical not in LIST_HEADERS:
            return raw
        return [
            part.strip()
            for value in raw
            for part in split_outside_quotes(value, ",")
            if part.strip()
        ]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n == canonical_name(name) for n, _ in self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def as_dict(self) -> dict[str, list[str]]:
        """Every header as ``{canonical name: [values]}`` (list headers split)."""
        result: dict[str, list[str]] = {}
        for name, _ in self._items:
            if name not in result:
                result[name] = self.get_all(name)
        return result

    def copy(self) -> Headers:
        """An independent copy."""
        return Headers(list(self._items))


def unquote(text: str) -> str:
    """Strip surrounding double quotes and resolve quoted-pairs."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def quote(text: str) -> str:
    """Quote a string for a header parameter or display name."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


@dataclass
class Address:
    """name-addr / addr-spec of From, To, Contact, Refer-To … with header parameters (tag)."""

    uri: SipUri
    display_name: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, header: str = "address") -> Address:
        """Parse ``"Bob" <sip:bob@host>;tag=1`` or ``sip:bob@host;tag=1``."""
        text = text.strip()
        try:
            if "<" in text:
                before, _, after = text.partition("<")
                uri_text, closed, param_text = after.partition(">")
                if not closed:
                    raise SipParseError(f"{header} {text!r} has '<' without '>'")
                display = unquote(before) or None
                return cls(SipUri.parse(uri_text), display, split_params(param_text))
            # In an addr-spec the parameters belong to the header, not the URI (RFC 3261 §20.10).
            uri_text, _, param_text = text.partition(";")
            return cls(SipUri.parse(uri_text), None, split_params(param_text))
        except SipParseError as error:
            raise SipParseError(f"{header}: {error}") from None

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (dialog identification)."""
        return self.params.get("tag")

    def with_tag(self, tag: str) -> Address:
        """A copy carrying ``tag``."""
        return Address(self.uri, self.display_name, {**self.params, "tag": tag})

    def __str__(self) -> str:
        display = f"{quote(self.display_name)} " if self.display_name else ""
        return f"{display}<{self.uri}>{format_params(self.params)}"


@dataclass
class Via:
    """One Via entry: transport, sent-by and parameters (branch, received, rport)."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Via:
        """Parse ``SIP/2.0/UDP host:port;branch=…``."""
        protocol, _, rest = text.strip().partition(" ")
        parts = [part.strip() for part in protocol.split("/")]
        if len(parts) != 3 or parts[0].upper() != "SIP" or not parts[2]:
            raise SipParseError(f"Via {text!r} does not start with SIP/2.0/<transport>")
        sent_by, _, param_text = rest.strip().partition(";")
        try:
            uri = SipUri.parse(f"sip:{sent_by.strip()}")
        except SipParseError:
            raise SipParseError(f"Via {text!r} has no valid sent-by host") from None
        return cls(parts[2].upper(), uri.host, uri.port, split_params(param_text))

    @property
    def branch(self) -> str | None:
        """The branch parameter (transaction id)."""
        return self.params.get("branch")

    @property
    def sent_by(self) -> tuple[str, int]:
        """(host, port) as written, port defaulting to 5060."""
        return self.host, self.port or 5060

    def stamp_source(self, addr: tuple[str, int]) -> None:
        """Record where the request really came from (RFC 3261 §18.2.1, RFC 3581)."""
        if "rport" in self.params:
            self.params["received"] = addr[0]
            self.params["rport"] = str(addr[1])
        elif self.host.strip("[]") != addr[0]:
            self.params["received"] = addr[0]

    def response_address(self) -> tuple[str, int]:
        """Where a response to this Via goes over UDP (RFC 3581 §4, RFC 3261 §18.2.2)."""
        host = self.params.get("received") or self.host.strip("[]")
        rport = self.params.get("rport")
        port = int(rport) if rport and rport.isdigit() else self.port or 5060
        return host, port

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"


@dataclass(frozen=True)
class CSeq:
    """The CSeq header: sequence number and method."""

    number: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        """Parse ``314159 INVITE``."""
        parts = text.split()
        if len(parts) != 2 or not parts[0].isdigit() or not TOKEN.match(parts[1]):
            raise SipParseError(f"CSeq {text!r} is not '<number> <method>'")
        number = int(parts[0])
        if number >= 2**31:
            raise SipParseError(f"CSeq number {number} is not below 2**31")
        return cls(number, parts[1].upper())

    def __str__(self) -> str:
        return f"{self.number} {self.method}"
