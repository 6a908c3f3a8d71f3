"""SIPp scenarios of a caller who presses keys by SIP INFO (``application/dtmf-relay``).

The caller places a G.711 call, sends one INFO per key, and then either hangs up itself or
waits for the far end: optionally accepting a REFER (202, then a NOTIFY with a 200 sipfrag)
and answering its BYE.
"""

from __future__ import annotations

_HEADERS = """Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>{to_tag}
Call-ID: [call_id]
CSeq: {cseq} {method}
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70"""

_INVITE = """  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
{headers}
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
{ack_headers}
Content-Length: 0

]]></send>
"""

_INFO = """  <pause milliseconds="{pause_ms}"/>
  <send retrans="500"><![CDATA[
INFO sip:[service]@[remote_ip]:[remote_port] SIP/2.0
{headers}
Content-Type: application/dtmf-relay
Content-Length: [len]

Signal={key}
Duration=160
]]></send>
  <recv response="200"/>
"""

_BYE = """  <send retrans="500"><![CDATA[
BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
{headers}
Content-Length: 0

]]></send>
  <recv response="200" crlf="true"/>
"""

_REPLY = """  <send><![CDATA[
SIP/2.0 {status}
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:sipp@[local_ip]:[local_port]>
Content-Length: 0

]]></send>
"""

_NOTIFY = """  <send><![CDATA[
NOTIFY sip:[service]@[remote_ip]:[remote_port] SIP/2.0
{headers}
Event: refer
Subscription-State: terminated;reason=noresource
Content-Type: message/sipfrag
Content-Length: [len]

SIP/2.0 200 OK
]]></send>
  <recv response="200"/>
"""


def info_keys_scenario(
    keys: str,
    *,
    caller: str = "sipp",
    first_pause_ms: int = 150,
    gap_ms: int = 150,
    hang_up: bool = True,
    accept_refer: bool = False,
) -> str:
    """The scenario XML: call, press ``keys`` by INFO, then hang up (``hang_up``) or wait for
    the far end's BYE, accepting a REFER first when ``accept_refer``."""

    def headers(cseq: int, method: str, dialog: bool = True) -> str:
        return _HEADERS.format(caller=caller, cseq=cseq, method=method,
                               to_tag="[peer_tag_param]" if dialog else "")

    parts = [_INVITE.format(headers=headers(1, "INVITE", dialog=False),
                            ack_headers=headers(1, "ACK"))]
    for index, key in enumerate(keys):
        pause_ms = first_pause_ms if index == 0 else gap_ms
        parts.append(_INFO.format(pause_ms=pause_ms, key=key,
                                  headers=headers(2 + index, "INFO")))
    if hang_up:
        parts.append(_BYE.format(headers=headers(2 + len(keys), "BYE")))
    else:
        if accept_refer:
            parts.append('  <recv request="REFER"/>\n' + _REPLY.format(status="202 Accepted"))
            parts.append(_NOTIFY.format(headers=headers(100, "NOTIFY")))
        parts.append('  <recv request="BYE"/>\n' + _REPLY.format(status="200 OK"))
    body = "".join(parts)
    return (f'<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="INFO keys">\n'
            f"{body}</scenario>\n")
