"""SIP line settings: validation with clear messages and the user agent's derived config."""

import pytest

from voxflow.errors import ConfigError
from voxflow.lines.config import SipLineConfig, TrunkSettings


def test_public_address_is_advertised_and_trunk_becomes_a_registration() -> None:
    trunk = TrunkSettings(registrar="sip.example", host="192.0.2.5", username="u", password="p")
    config = SipLineConfig(listen_host="0.0.0.0", public_address="198.51.100.7", trunk=trunk)
    sip = config.sip_config()
    assert sip.advertised_address == "198.51.100.7"
    assert sip.registration is not None
    assert sip.registration.address == ("192.0.2.5", 5060)
    assert sip.registration.credentials.username == "u"
    assert config.rtp_ports == range(40000, 41000)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"listen_host": "0.0.0.0"}, "wildcard"),
        ({"listen_host": "localhost"}, "must be an IP address"),
        ({"rtp_port_min": 5001, "rtp_port_max": 5001}, "no even port"),
        ({"rtp_port_min": 6000, "rtp_port_max": 5000}, "RTP port range"),
        ({"listen_port": 70000}, "not a UDP port"),
    ],
)
def test_bad_settings_are_refused_with_a_message(options: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"listen_host": "127.0.0.1"}
    with pytest.raises(ConfigError, match=message):
        SipLineConfig(**{**base, **options})  # type: ignore[arg-type]


def test_trunk_needs_a_sane_expiry() -> None:
    with pytest.raises(ConfigError, match="expires"):
        TrunkSettings(registrar="r", host="192.0.2.1", username="u", password="p", expires=5)
