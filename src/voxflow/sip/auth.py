"""HTTP digest authentication for SIP (RFC 2617, RFC 7616, RFC 8760): both sides.

Client side: answer a 401/407 challenge with an Authorization/Proxy-Authorization value.
Server side: stateless challenges whose nonce carries its issue time and an HMAC, so no
per-caller state is kept and an INVITE flood cannot grow memory.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from voxflow.errors import SipParseError
from voxflow.sip.headers import quote, unquote
from voxflow.sip.uri import split_outside_quotes

_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
ALGORITHMS = ("MD5", "MD5-sess", "SHA-256", "SHA-256-sess")


def _hash(algorithm: str, text: str) -> str:
    base = algorithm.upper().removesuffix("-SESS")
    return _HASHES[base](text.encode("utf-8", "surrogateescape")).hexdigest()


def _canonical_algorithm(text: str | None) -> str:
    if text is None:
        return "MD5"
    for name in ALGORITHMS:
        if name.lower() == text.strip().lower():
            return name
    raise SipParseError(f"digest algorithm {text!r} is not supported (use one of {ALGORITHMS})")


def parse_auth_params(value: str) -> dict[str, str]:
    """``Digest realm="a", nonce="b"`` → ``{"realm": "a", "nonce": "b"}`` (scheme checked)."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise SipParseError(f"authentication scheme {scheme!r} is not Digest")
    params: dict[str, str] = {}
    for item in split_outside_quotes(rest, ","):
        name, eq, raw = item.strip().partition("=")
        if not eq:
            if name.strip():
                raise SipParseError(f"digest parameter {name.strip()!r} has no value")
            continue
        params[name.strip().lower()] = unquote(raw)
    return params


def compute_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str = "00000001",
    cnonce: str = "",
    body: bytes = b"",
) -> str:
    """The digest ``response`` value (RFC 7616 §3.4.1)."""
    ha1 = _hash(algorithm, f"{username}:{realm}:{password}")
    if algorithm.upper().endswith("-SESS"):
        ha1 = _hash(algorithm, f"{ha1}:{nonce}:{cnonce}")
    a2 = f"{method}:{uri}"
    if qop == "auth-int":
        a2 += ":" + _hash(algorithm, body.decode("latin-1"))
    ha2 = _hash(algorithm, a2)
    if qop is None:
        return _hash(algorithm, f"{ha1}:{nonce}:{ha2}")  # RFC 2069 compatibility
    return _hash(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


@dataclass(frozen=True)
class Challenge:
    """A parsed WWW-Authenticate / Proxy-Authenticate digest challenge."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False

    @classmethod
    def parse(cls, value: str) -> Challenge:
        """Parse a challenge header value."""
        params = parse_auth_params(value)
        if "realm" not in params or "nonce" not in params:
            raise SipParseError("digest challenge lacks realm or nonce")
        qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
        return cls(
            params["realm"],
            params["nonce"],
            _canonical_algorithm(params.get("algorithm")),
            qop,
            params.get("opaque"),
            params.get("stale", "").lower() == "true",
        )


def answer_challenge(
    challenge: Challenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str,
    nc: int = 1,
    body: bytes = b"",
) -> str:
    """The Authorization / Proxy-Authorization value answering ``challenge``."""
    qop = (
        "auth" if "auth" in challenge.qop else ("auth-int" if "auth-int" in challenge.qop else None)
    )
    nc_text = f"{nc:08x}"
    response = compute_response(
        algorithm=challenge.algorithm,
        username=username,
        realm=challenge.realm,
        password=password,
        method=method,
        uri=uri,
        nonce=challenge.nonce,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce,
        body=body,
    )
    parts = [
        f"username={quote(username)}",
        f"realm={quote(challenge.realm)}",
        f"nonce={quote(challenge.nonce)}",
        f"uri={quote(uri)}",
        f"response={quote(response)}",
        f"algorithm={challenge.algorithm}",
    ]
    if qop is not None:
        parts += [f"qop={qop}", f"nc={nc_text}", f"cnonce={quote(cnonce)}"]
    if challenge.opaque is not None:
        parts.append(f"opaque={quote(challenge.opaque)}")
    return "Digest " + ", ".join(parts)


class Verdict(enum.Enum):
    """Outcome of checking credentials."""

    OK = "ok"
    MISSING = "missing"
    INVALID = "invalid"
    STALE = "stale"


class DigestServer:
    """Issues and verifies digest challenges without per-client state.

    A nonce is ``base64(issue time ‖ HMAC(secret, issue time ‖ realm))``: verifying it needs only
    the secret, and its age decides staleness. Replays inside the lifetime are not detected.
    """

    def __init__(
        self,
        realm: str,
        users: Mapping[str, str],
        secret: bytes,
        *,
        algorithm: str = "MD5",
        nonce_lifetime: float = 300.0,
    ) -> None:
        self.realm = realm
        self.users = dict(users)
        self._secret = secret
        self.algorithm = _canonical_algorithm(algorithm)
        self.nonce_lifetime = nonce_lifetime

    def _signature(self, stamp: bytes) -> bytes:
        return hmac.new(self._secret, stamp + self.realm.encode(), hashlib.sha256).digest()[:16]

    def make_nonce(self, now: float) -> str:
        """A fresh nonce stamped with ``now``."""
        stamp = struct.pack(">d", now)
        return base64.b64encode(stamp + self._signature(stamp)).decode()

    def _nonce_time(self, nonce: str) -> float | None:
        try:
            raw = base64.b64decode(nonce, validate=True)
        except ValueError:
            return None
        if len(raw) != 24 or not hmac.compare_digest(raw[8:], self._signature(raw[:8])):
            return None
        return float(struct.unpack(">d", raw[:8])[0])

    def challenge(self, now: float, *, stale: bool = False) -> str:
        """A WWW-Authenticate / Proxy-Authenticate value."""
        value = (
            f"Digest realm={quote(self.realm)}, nonce={quote(self.make_nonce(now))}, "
            f'algorithm={self.algorithm}, qop="auth"'
        )
        return value + (", stale=true" if stale else "")

    def verify(self, authorization: str | None, method: str, now: float) -> Verdict:
        """Check an Authorization / Proxy-Authorization value for a request of ``method``."""
        if not authorization:
            return Verdict.MISSING
        try:
            params = parse_auth_params(authorization)
            algorithm = _canonical_algorithm(params.get("algorithm"))
        except SipParseError:
            return Verdict.INVALID
        username = params.get("username")
        password = self.users.get(username or "")
        issued = self._nonce_time(params.get("nonce", ""))
        if password is None or issued is None or params.get("realm") != self.realm:
            return Verdict.INVALID
        qop = params.get("qop")
        if qop not in (None, "auth"):
            return Verdict.INVALID
        expected = compute_response(
            algorithm=algorithm,
            username=username or "",
            realm=self.realm,
            password=password,
            method=method,
            uri=params.get("uri", ""),
            nonce=params["nonce"],
            qop=qop,
            nc=params.get("nc", ""),
            cnonce=params.get("cnonce", ""),
        )
        if not hmac.compare_digest(expected, params.get("response", "").lower()):
            return Verdict.INVALID
        if not 0 <= now - issued <= self.nonce_lifetime:
            return Verdict.STALE
        return Verdict.OK
