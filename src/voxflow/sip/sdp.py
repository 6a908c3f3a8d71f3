"""SDP (RFC 4566) parsing and serialization, and the offer/answer model (RFC 3264) for audio.

We speak G.711 (PCMU, PCMA) and telephone-event (RFC 4733). The telephone-event payload
type and clock are always taken from the offer, never assumed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace

from voxflow.errors import SdpError

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_ANSWER_DIRECTION = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}
_STATIC_PAYLOADS = {0: ("PCMU", 8000), 8: ("PCMA", 8000), 9: ("G722", 8000), 18: ("G729", 8000)}
TELEPHONE_EVENT = "telephone-event"


@dataclass
class MediaDescription:
    """One ``m=`` section with its ``c=`` and ``a=`` lines."""

    media: str
    port: int
    proto: str
    formats: list[str]
    connection: str | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)

    def attribute(self, name: str) -> str | None:
        """Value of the first ``a=name:value`` (empty string for a flag), None if absent."""
        for key, value in self.attributes:
            if key == name:
                return value if value is not None else ""
        return None

    def attribute_values(self, name: str) -> list[str]:
        """Values of every ``a=name:value``."""
        return [value for key, value in self.attributes if key == name and value is not None]

    @property
    def direction(self) -> str | None:
        """The direction attribute if the section has one."""
        for key, _ in self.attributes:
            if key in DIRECTIONS:
                return key
        return None

    def rtpmap(self) -> dict[int, tuple[str, int]]:
        """Payload type → (encoding name, clock rate), static types filled in."""
        mapping: dict[int, tuple[str, int]] = {}
        for fmt in self.formats:
            if fmt.isdecimal() and int(fmt) in _STATIC_PAYLOADS:
                mapping[int(fmt)] = _STATIC_PAYLOADS[int(fmt)]
        for value in self.attribute_values("rtpmap"):
            pt_text, _, encoding = value.partition(" ")
            name, _, rest = encoding.strip().partition("/")
            clock_text = rest.partition("/")[0]
            if pt_text.isdecimal() and clock_text.isdecimal():
                mapping[int(pt_text)] = (name, int(clock_text))
        return mapping

    def fmtp(self, payload_type: int) -> str | None:
        """The ``a=fmtp`` parameters of one payload type."""
        for value in self.attribute_values("fmtp"):
            pt_text, _, params = value.partition(" ")
            if pt_text == str(payload_type):
                return params.strip()
        return None


@dataclass
class SessionDescription:
    """A whole SDP body."""

    origin: str = "- 0 0 IN IP4 0.0.0.0"
    session_name: str = "-"
    connection: str | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    extra_lines: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, body: bytes) -> SessionDescription:
        """Parse an SDP body; malformed input raises :class:`SdpError` with status 400."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise SdpError("SDP body is not UTF-8 text", status=400) from None
        session = cls()
        seen_version = False
        current: MediaDescription | None = None
        for number, raw in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
            line = raw.strip()
            if not line:
                continue
            if len(line) < 2 or line[1] != "=":
                raise SdpError(f"SDP line {number} is not '<type>=<value>': {line[:40]!r}", 400)
            kind, value = line[0], line[2:]
            if kind == "v":
                seen_version = True
            elif kind == "m":
                current = _parse_media_line(value, number)
                session.media.append(current)
            elif kind == "c":
                address = _parse_connection(value, number)
                if current is None:
                    session.connection = address
                else:
                    current.connection = address
            elif kind == "a":
                name, colon, attr_value = value.partition(":")
                item = (name.strip(), attr_value.strip() if colon else None)
                (current.attributes if current else session.attributes).append(item)
            elif current is None and kind == "o":
                session.origin = value
            elif current is None and kind == "s":
                session.session_name = value
            elif current is None:
                session.extra_lines.append(line)
        if not seen_version:
            raise SdpError("SDP body has no v= line", status=400)
        return session

    def to_bytes(self) -> bytes:
        """Serialize with CRLF line ends."""
        lines = ["v=0", f"o={self.origin}", f"s={self.session_name}"]
        if self.connection is not None:
            lines.append(f"c={_connection_line(self.connection)}")
        lines.extend(line for line in self.extra_lines if line[0] in "bt")
        if not any(line.startswith("t=") for line in self.extra_lines):
            lines.append("t=0 0")
        lines.extend(_attribute_lines(self.attributes))
        for media in self.media:
            lines.append(f"m={media.media} {media.port} {media.proto} {' '.join(media.formats)}")
            if media.connection is not None:
                lines.append(f"c={_connection_line(media.connection)}")
            lines.extend(_attribute_lines(media.attributes))
        return ("\r\n".join(lines) + "\r\n").encode()


def _attribute_lines(attributes: list[tuple[str, str | None]]) -> list[str]:
    return [f"a={name}" if value is None else f"a={name}:{value}" for name, value in attributes]


def _connection_line(address: str) -> str:
    family = "IP6" if ":" in address else "IP4"
    return f"IN {family} {address}"


def _parse_media_line(value: str, number: int) -> MediaDescription:
    parts = value.split()
    if len(parts) < 3:
        raise SdpError(f"SDP line {number}: m= needs '<media> <port> <proto> <formats>'", 400)
    port_text = parts[1].partition("/")[0]
    if not port_text.isdecimal() or int(port_text) > 65535:
        raise SdpError(f"SDP line {number}: bad port {parts[1]!r} in m=", 400)
    return MediaDescription(parts[0], int(port_text), parts[2], parts[3:])


def _parse_connection(value: str, number: int) -> str:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"SDP line {number}: c= must be 'IN IP4|IP6 <address>', got {value!r}", 400)
    address = parts[2].partition("/")[0]
    if not address:  # 'c=IN IP4 /127' would serialize as a c= line without an address
        raise SdpError(f"SDP line {number}: c= has no address, got {value!r}", 400)
    return address


@dataclass(frozen=True)
class Codec:
    """An RTP payload format: encoding name, payload type, clock rate."""

    name: str
    payload_type: int
    clock_rate: int


@dataclass(frozen=True)
class NegotiatedMedia:
    """The outcome of offer/answer for the audio stream."""

    codec: Codec
    telephone_event: Codec | None
    ptime: int
    direction: str
    remote_address: str
    remote_port: int
    telephone_event_fmtp: str | None = None

    @property
    def on_hold(self) -> bool:
        """True when the peer does not want to receive our audio (sendonly/inactive/0.0.0.0)."""
        return self.direction in ("recvonly", "inactive")

    @property
    def we_send(self) -> bool:
        """Whether we may send RTP."""
        return self.direction in ("sendrecv", "sendonly")


@dataclass(frozen=True)
class LocalMedia:
    """What we can do: our RTP address/port, codec preference, ptime, telephone-event."""

    address: str
    port: int
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    ptime: int = 20
    direction: str = "sendrecv"
    telephone_event: bool = True
    telephone_event_payload_type: int = 101


_DEFAULT_PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8}
_SUPPORTED_PTIMES = range(10, 121)


def _origin(address: str, session_id: int, version: int) -> str:
    family = "IP6" if ":" in address else "IP4"
    return f"voxflow {session_id} {version} IN {family} {address}"


def _is_null_address(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return False


def _audio_section(
    local: LocalMedia,
    codec: Codec,
    event: Codec | None,
    event_fmtp: str,
    ptime: int,
    direction: str,
) -> MediaDescription:
    formats = [str(codec.payload_type)]
    attributes: list[tuple[str, str | None]] = [
        ("rtpmap", f"{codec.payload_type} {codec.name}/{codec.clock_rate}")
    ]
    if event is not None:
        formats.append(str(event.payload_type))
        attributes.append(("rtpmap", f"{event.payload_type} {TELEPHONE_EVENT}/{event.clock_rate}"))
        attributes.append(("fmtp", f"{event.payload_type} {event_fmtp}"))
    attributes += [("ptime", str(ptime)), (direction, None)]
    return MediaDescription("audio", local.port, "RTP/AVP", formats, None, attributes)


def _choose_codec(section: MediaDescription, local: LocalMedia) -> Codec | None:
    offered = section.rtpmap()
    for wanted in local.codecs:
        for fmt in section.formats:
            if fmt.isdecimal() and int(fmt) in offered:
                name, clock = offered[int(fmt)]
                if name.upper() == wanted.upper():
                    return Codec(wanted.upper(), int(fmt), clock)
    return None


def _choose_event(section: MediaDescription, clock: int) -> tuple[Codec | None, str]:
    offered = section.rtpmap()
    for fmt in section.formats:
        if fmt.isdecimal() and int(fmt) in offered:
            name, rate = offered[int(fmt)]
            if name.lower() == TELEPHONE_EVENT and rate == clock:
                return Codec(TELEPHONE_EVENT, int(fmt), rate), section.fmtp(int(fmt)) or "0-15"
    return None, ""


def _offered_ptime(section: MediaDescription, default: int) -> int:
    text = section.attribute("ptime") or ""
    try:
        value = round(float(text))
    except ValueError:
        return default
    return value if value in _SUPPORTED_PTIMES else default


def _remote_direction(session: SessionDescription, section: MediaDescription, address: str) -> str:
    direction = section.direction or next(
        (name for name, _ in session.attributes if name in DIRECTIONS), "sendrecv"
    )
    # RFC 2543 hold: c=0.0.0.0 means "do not send to me", so the peer at most sends.
    if _is_null_address(address):
        return {"sendrecv": "sendonly", "recvonly": "inactive"}.get(direction, direction)
    return direction


def _combine_directions(answer_direction: str, local_direction: str) -> str:
    local_send = local_direction in ("sendrecv", "sendonly")
    local_recv = local_direction in ("sendrecv", "recvonly")
    send = answer_direction in ("sendrecv", "sendonly") and local_send
    recv = answer_direction in ("sendrecv", "recvonly") and local_recv
    return {
        (True, True): "sendrecv",
        (True, False): "sendonly",
        (False, True): "recvonly",
        (False, False): "inactive",
    }[(send, recv)]


def answer_offer(
    offer: SessionDescription, local: LocalMedia, session_id: int = 0, version: int = 0
) -> tuple[SessionDescription, NegotiatedMedia]:
    """Answer an SDP offer; :class:`SdpError` (status 488) when no audio stream fits."""
    answer = SessionDescription(
        origin=_origin(local.address, session_id, version), connection=local.address
    )
    negotiated: NegotiatedMedia | None = None
    problems: list[str] = []
    for index, section in enumerate(offer.media):
        accepted = None
        if negotiated is None and section.media == "audio" and section.port != 0:
            accepted = _answer_audio(offer, section, local, index, problems)
        if accepted is None:
            answer.media.append(
                MediaDescription(section.media, 0, section.proto, section.formats[:1])
            )
            continue
        negotiated, description = accepted
        answer.media.append(description)
    if negotiated is None:
        detail = "; ".join(problems) or "the offer has no active audio stream"
        raise SdpError(f"no acceptable audio stream in the offer: {detail}", status=488)
    return answer, negotiated


def _answer_audio(
    offer: SessionDescription,
    section: MediaDescription,
    local: LocalMedia,
    index: int,
    problems: list[str],
) -> tuple[NegotiatedMedia, MediaDescription] | None:
    if "RTP/AVP" not in section.proto.upper() or "SAVP" in section.proto.upper():
        problems.append(f"m= line {index + 1} uses transport {section.proto}, only RTP/AVP works")
        return None
    address = section.connection or offer.connection
    if address is None:
        raise SdpError(f"m= line {index + 1} has no c= line and the session has none", status=400)
    codec = _choose_codec(section, local)
    if codec is None:
        problems.append(
            f"m= line {index + 1} offers {_describe_formats(section)}, we need one of "
            f"{', '.join(local.codecs)}"
        )
        return None
    event, event_fmtp = (
        _choose_event(section, codec.clock_rate) if local.telephone_event else (None, "")
    )
    ptime = _offered_ptime(section, local.ptime)
    remote_direction = _remote_direction(offer, section, address)
    direction = _combine_directions(_ANSWER_DIRECTION[remote_direction], local.direction)
    negotiated = NegotiatedMedia(
        codec, event, ptime, direction, address, section.port, event_fmtp or None
    )
    return negotiated, _audio_section(local, codec, event, event_fmtp, ptime, direction)


def _describe_formats(section: MediaDescription) -> str:
    mapping = section.rtpmap()
    names = [
        f"{mapping[int(f)][0]}/{mapping[int(f)][1]}" if f.isdecimal() and int(f) in mapping else f
        for f in section.formats
    ]
    return ", ".join(names) or "no formats"


def build_offer(local: LocalMedia, session_id: int = 0, version: int = 0) -> SessionDescription:
    """Our offer: every preferred codec, telephone-event/8000, ptime and direction."""
    section = MediaDescription("audio", local.port, "RTP/AVP", [])
    for name in local.codecs:
        payload_type = _DEFAULT_PAYLOAD_TYPES.get(name.upper())
        if payload_type is None:
            raise SdpError(f"cannot offer codec {name!r}: only PCMU and PCMA are known", 500)
        section.formats.append(str(payload_type))
        section.attributes.append(("rtpmap", f"{payload_type} {name.upper()}/8000"))
    if local.telephone_event:
        pt = local.telephone_event_payload_type
        section.formats.append(str(pt))
        section.attributes += [("rtpmap", f"{pt} {TELEPHONE_EVENT}/8000"), ("fmtp", f"{pt} 0-16")]
    section.attributes += [("ptime", str(local.ptime)), (local.direction, None)]
    return SessionDescription(
        origin=_origin(local.address, session_id, version),
        connection=local.address,
        media=[section],
    )


def process_answer(offer: SessionDescription, answer: SessionDescription) -> NegotiatedMedia:
    """What an answer to our offer settles; :class:`SdpError` if it is unusable."""
    for index, section in enumerate(answer.media):
        if section.media != "audio" or section.port == 0:
            continue
        if index >= len(offer.media):
            raise SdpError("the answer has more m= lines than our offer", status=400)
        ours = offer.media[index]
        allowed = LocalMedia("", 0, tuple(n for n, _ in ours.rtpmap().values()), 20)
        codec = _choose_codec(section, replace(allowed, codecs=_names_in_order(section)))
        if codec is None or codec.name not in allowed.codecs:
            raise SdpError(f"the answer chose {_describe_formats(section)}, which we did not offer")
        address = section.connection or answer.connection
        if address is None:
            raise SdpError("the answer's audio stream has no c= line", status=400)
        event, event_fmtp = _choose_event(section, codec.clock_rate)
        remote_direction = _remote_direction(answer, section, address)
        direction = _combine_directions(
            _ANSWER_DIRECTION[remote_direction], ours.direction or "sendrecv"
        )
        return NegotiatedMedia(
            codec,
            event,
            _offered_ptime(section, _offered_ptime(ours, 20)),
            direction,
            address,
            section.port,
            event_fmtp or None,
        )
    raise SdpError("the answer rejected every audio stream", status=488)


def _names_in_order(section: MediaDescription) -> tuple[str, ...]:
    mapping = section.rtpmap()
    return tuple(
        mapping[int(f)][0].upper()
        for f in section.formats
        if f.isdecimal() and int(f) in mapping and mapping[int(f)][0].lower() != TELEPHONE_EVENT
    )
