"""SIP and tel URIs (RFC 3261 §19.1, RFC 3966): ``sip:user:password@host:port;params?headers``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from voxflow.errors import SipParseError

_SCHEMES = ("sip", "sips", "tel")
# No URI character (RFC 3261 §25.1, RFC 3966 §3) is whitespace, a control, '<', '>' or '"'.
# Accepting one would let a peer hand us a URI that cannot be written back into a request
# line or a name-addr: a Contact reused as a Request-URI must serialize to what it parsed as.
_NOT_URI_CHARS = re.compile(r'[\s\x00-\x1f\x7f<>"]')


def split_params(text: str, separator: str = ";") -> dict[str, str | None]:
    """``a=1;b`` → ``{"a": "1", "b": None}``; names lower-cased, quoted values kept as written."""
    params: dict[str, str | None] = {}
    for item in split_outside_quotes(text, separator):
        item = item.strip()
        if not item:
            continue
        name, eq, value = item.partition("=")
        params[name.strip().lower()] = value.strip() if eq else None
    return params


def split_outside_quotes(text: str, separator: str) -> list[str]:
    """Split ``text`` at ``separator`` except inside double quotes and angle brackets."""
    parts: list[str] = []
    start = 0
    in_quotes = False
    depth = 0
    index = 0
    while index < len(text):
        char = text[index]
        if in_quotes:
            if char == "\\":
                index += 1  # a quoted-pair hides the next character
            elif char == '"':
                in_quotes = False
        elif char == '"':
            in_quotes = True
        elif char == "<":
            depth += 1
        elif char == ">":
            depth = max(0, depth - 1)
        elif char == separator and depth == 0:
            parts.append(text[start:index])
            start = index + 1
        index += 1
    parts.append(text[start:])
    return parts


def format_params(params: dict[str, str | None]) -> str:
    """Inverse of :func:`split_params`, with a leading separator per parameter."""
    return "".join(
        f";{name}" if value is None else f";{name}={value}" for name, value in params.items()
    )


def _parse_port(text: str, uri: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise SipParseError(f"URI {uri!r} has an invalid port {text!r}")
    return int(text)


@dataclass
class SipUri:
    """A parsed ``sip:``/``sips:``/``tel:`` URI; ``host`` is empty for ``tel:``."""

    scheme: str
    user: str | None
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse a URI, raising :class:`SipParseError` that quotes the offending URI."""
        text = text.strip()
        bad = _NOT_URI_CHARS.search(text)
        if bad is not None:
            raise SipParseError(f"URI {text!r} contains {bad.group()!r}, not allowed in a URI")
        scheme, colon, rest = text.partition(":")
        scheme = scheme.lower()
        if not colon or scheme not in _SCHEMES:
            raise SipParseError(f"URI {text!r} is not a sip:, sips: or tel: URI")
        if scheme == "tel":
            number, _, param_text = rest.partition(";")
            if not number:
                raise SipParseError(f"URI {text!r} has no telephone number")
            return cls(scheme, number, "", None, split_params(param_text))
        rest, question, header_text = rest.partition("?")
        user: str | None = None
        password: str | None = None
        if "@" in rest:
            userinfo, _, rest = rest.rpartition("@")
            user, has_password, secret = userinfo.partition(":")
            password = secret if has_password else None
        hostport, _, param_text = rest.partition(";")
        host, port = cls._split_hostport(hostport, text)
        return cls(
            scheme,
            user,
            host,
            port,
            split_params(param_text),
            header_text if question else None,
            password,
        )

    @staticmethod
    def _split_hostport(hostport: str, uri: str) -> tuple[str, int | None]:
        if hostport.startswith("["):
            end = hostport.find("]")
            if end < 0:
                raise SipParseError(f"URI {uri!r} has an unterminated IPv6 reference")
            host, tail = hostport[: end + 1], hostport[end + 1 :]
            if tail and not tail.startswith(":"):
                raise SipParseError(f"URI {uri!r} has junk after the IPv6 host")
            return host, _parse_port(tail[1:], uri) if tail else None
        host, colon, port_text = hostport.partition(":")
        if not host or any(c in host for c in ' <>"\t'):
            raise SipParseError(f"URI {uri!r} has no valid host")
        return host.lower(), _parse_port(port_text, uri) if colon else None

    @property
    def host_for_socket(self) -> str:
        """The host without IPv6 brackets, as a socket address wants it."""
        return self.host[1:-1] if self.host.startswith("[") else self.host

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user}{format_params(self.params)}"
        userinfo = ""
        if self.user is not None:
            secret = f":{self.password}" if self.password is not None else ""
            userinfo = f"{self.user}{secret}@"
        port = f":{self.port}" if self.port is not None else ""
        headers = f"?{self.headers}" if self.headers is not None else ""
        return f"{self.scheme}:{userinfo}{self.host}{port}{format_params(self.params)}{headers}"
