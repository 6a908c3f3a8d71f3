"""Settings of the SIP line: where to listen, what to advertise, RTP ports, trunk registration."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from voxflow.errors import ConfigError
from voxflow.sip.config import Credentials, SipConfig, TrunkRegistration


@dataclass(frozen=True)
class TrunkSettings:
    """Register to a trunk: ``registrar`` is the SIP domain, ``host:port`` where REGISTER goes."""

    registrar: str
    host: str
    username: str
    password: str
    port: int = 5060
    user: str | None = None
    expires: int = 3600
    retry_after: float = 60.0

    def __post_init__(self) -> None:
        if not self.registrar or not self.host or not self.username:
            raise ConfigError("trunk registrar, host and username must not be empty")
        if not 0 < self.port < 65536:
            raise ConfigError(f"trunk port {self.port} is not a UDP port")
        if self.expires < 60:
            raise ConfigError(f"trunk expires must be at least 60 s, got {self.expires}")


@dataclass(frozen=True)
class SipLineConfig:
    """Everything the SIP line needs; :meth:`sip_config` derives the user agent's settings.

    ``public_address`` goes into Via/Contact and SDP when the engine sits behind NAT or listens
    on a wildcard address; without it the listen address is advertised (so a wildcard listen
    address needs a public one). RTP uses even ports of ``rtp_port_min``..``rtp_port_max``.
    """

    listen_host: str = "0.0.0.0"
    listen_port: int = 5060
    public_address: str | None = None
    rtp_host: str | None = None
    rtp_port_min: int = 40000
    rtp_port_max: int = 40999
    user: str = "voxflow"
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    max_calls: int = 500
    allowed_sources: tuple[str, ...] = ()
    trunk: TrunkSettings | None = None

    def __post_init__(self) -> None:
        for name in ("listen_host", "public_address", "rtp_host"):
            value = getattr(self, name)
            if value is not None and not _is_ip(value):
                raise ConfigError(f"sip line {name} must be an IP address, got {value!r}")
        if not 0 <= self.listen_port < 65536:
            raise ConfigError(f"sip line listen_port {self.listen_port} is not a UDP port")
        if not 0 < self.rtp_port_min <= self.rtp_port_max < 65536:
            raise ConfigError(
                f"sip line RTP port range {self.rtp_port_min}-{self.rtp_port_max} is not a "
                "range of UDP ports (min <= max, 1..65535)"
            )
        if not any(port % 2 == 0 for port in range(self.rtp_port_min, self.rtp_port_max + 1)):
            raise ConfigError(
                f"sip line RTP port range {self.rtp_port_min}-{self.rtp_port_max} has no even port"
            )
        if self.advertised_address in ("0.0.0.0", "::"):
            raise ConfigError(
                "sip line listens on a wildcard address: set public_address to the address "
                "peers must send SIP and RTP to"
            )

    @property
    def advertised_address(self) -> str:
        """Address peers reach us at (SIP Contact and SDP ``c=``)."""
        return self.public_address or self.listen_host

    @property
    def rtp_bind_host(self) -> str:
        """Address RTP sockets bind to."""
        return self.rtp_host or self.listen_host

    @property
    def rtp_ports(self) -> range:
        """The configured RTP ports as a range."""
        return range(self.rtp_port_min, self.rtp_port_max + 1)

    def sip_config(self) -> SipConfig:
        """The user agent's configuration (raises ConfigError on invalid combinations)."""
        registration = None
        if self.trunk is not None:
            trunk = self.trunk
            registration = TrunkRegistration(
                registrar=trunk.registrar,
                address=(trunk.host, trunk.port),
                credentials=Credentials(trunk.username, trunk.password),
                user=trunk.user or trunk.username,
                expires=trunk.expires,
                retry_after=trunk.retry_after,
            )
        return SipConfig(
            listen_address=self.listen_host,
            listen_port=self.listen_port,
            public_address=self.public_address,
            user=self.user,
            allowed_sources=self.allowed_sources,
            registration=registration,
            codecs=self.codecs,
            max_calls=self.max_calls,
        )


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
