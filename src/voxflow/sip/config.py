"""Settings of the SIP user agent (the RTP port range belongs to the line adapter)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from voxflow.errors import ConfigError
from voxflow.sip.ratelimit import RateLimits
from voxflow.sip.transaction import TimerValues

Addr = tuple[str, int]


@dataclass(frozen=True)
class Credentials:
    """Username and password for digest authentication."""

    username: str
    password: str


@dataclass(frozen=True)
class TrunkRegistration:
    """REGISTER to a trunk: ``registrar`` is the domain (Request-URI), ``address`` where to send."""

    registrar: str
    address: Addr
    credentials: Credentials
    user: str | None = None
    expires: int = 3600
    retry_after: float = 60.0


@dataclass(frozen=True)
class InboundAuth:
    """Digest challenge for inbound INVITEs (answered with 407)."""

    realm: str
    users: Mapping[str, str]
    secret: bytes
    algorithm: str = "MD5"
    nonce_lifetime: float = 300.0


@dataclass(frozen=True)
class SipConfig:
    """Everything the SIP user agent needs to know about its surroundings."""

    listen_address: str = "0.0.0.0"
    listen_port: int = 5060
    public_address: str | None = None
    public_port: int | None = None
    user: str = "voxflow"
    user_agent: str = "voxflow"
    allowed_sources: tuple[str, ...] = ()
    inbound_auth: InboundAuth | None = None
    registration: TrunkRegistration | None = None
    outbound_proxy: Addr | None = None
    outbound_credentials: Credentials | None = None
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    ptime: int = 20
    max_calls: int = 500
    answer_timeout: float = 120.0
    timers: TimerValues = field(default_factory=TimerValues)
    rate_limits: RateLimits | None = field(default_factory=RateLimits)
    """Per-source limits for INVITE/REGISTER/OPTIONS; None switches them off."""

    def __post_init__(self) -> None:
        if not 0 <= self.listen_port < 65536:
            raise ConfigError(f"sip.listen_port {self.listen_port} is not a UDP port")
        for network in self.allowed_sources:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ConfigError(
                    f"sip.allowed_sources entry {network!r} is not an address or network"
                ) from None
        unknown = [c for c in self.codecs if c.upper() not in ("PCMU", "PCMA")]
        if unknown or not self.codecs:
            raise ConfigError(f"sip.codecs must list PCMU and/or PCMA, got {self.codecs!r}")
        if self.max_calls < 1:
            raise ConfigError("sip.max_calls must be at least 1")

    @property
    def advertised_address(self) -> str:
        """Address for Via, Contact and SDP."""
        return self.public_address or self.listen_address

    @property
    def advertised_port(self) -> int:
        """Port for Via and Contact."""
        return self.public_port or self.listen_port

    def source_allowed(self, host: str) -> bool:
        """Whether a request from ``host`` passes the allow-list (empty list allows all)."""
        if not self.allowed_sources:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(
            address in ipaddress.ip_network(net, strict=False) for net in self.allowed_sources
        )
