"""SIP INFO DTMF bodies as real senders write them, and INFO retransmission de-duplication."""

from __future__ import annotations

import pytest

from voxflow.errors import DtmfParseError
from voxflow.media.dtmf import DIGITS, DtmfSource, KeyDown, KeyUp
from voxflow.media.dtmf.rfc4733 import TelephoneEventBlock, build_telephone_event_payload
from voxflow.media.dtmf.sip_info import SipInfoDtmf, SipInfoDtmfReceiver, parse_sip_info_dtmf

RELAY = "application/dtmf-relay"


@pytest.mark.parametrize(
    ("body", "key", "duration"),
    [
        ("Signal=5\r\nDuration=160\r\n", "5", 160.0),  # FreeSWITCH, pjsua, Janus
        ("Signal=5\r\nDuration=160", "5", 160.0),  # no trailing CRLF
        ("Signal= 5\r\nDuration= 250\r\n", "5", 250.0),  # space after '=' (Mitel, draft grammar)
        ("Signal = 5\nDuration = 100\n", "5", 100.0),
        ("signal=5\r\nduration=100\r\n", "5", 100.0),  # lower case names
        ("SIGNAL=5\r\nDURATION=100\r\n", "5", 100.0),
        ("Signal=5\nDuration=160\n", "5", 160.0),  # LF-only
        ("Signal=5\rDuration=160\r", "5", 160.0),  # CR-only
        ("Signal=5\r\n", "5", None),  # missing Duration
        ("Signal=5", "5", None),
        ("Signal=3\r\nDuration=100\r\nVolume=10\r\nX-Foo: bar\r\n", "3", 100.0),  # extra lines
        ("\r\nSignal=3\r\n\r\nDuration=100\r\n", "3", 100.0),  # blank lines
        ("Duration=120\r\nSignal=4\r\n", "4", 120.0),  # order reversed
        ("Signal=10\r\nDuration=100", "*", 100.0),
        ("Signal=11\r\nDuration=100", "#", 100.0),
        ("Signal=*\r\nDuration=100", "*", 100.0),
        ("Signal=#\r\nDuration=100", "#", 100.0),
        ("Signal=A\r\nDuration=100", "A", 100.0),
        ("Signal=d\r\nDuration=100", "D", 100.0),
        ("Signal=12\r\nDuration=100", "A", 100.0),
        ("Signal=15\r\nDuration=100", "D", 100.0),
        ("Signal=0\r\nDuration=100", "0", 100.0),
        ('Signal="7"\r\nDuration=100', "7", 100.0),
        ("Signal: 8\r\nDuration: 100\r\n", "8", 100.0),  # header-style separator
        ("d=9\r\n", "9", None),  # d= style
        ("Signal=2\r\nDuration=100ms", "2", 100.0),
        ("Signal=2\r\nDuration=abc", "2", None),  # unusable duration is dropped, key kept
        ("Signal=2\r\nDuration=", "2", None),
        ("6", "6", None),  # bare key body
        (" #\r\n", "#", None),
    ],
)
def test_dtmf_relay_variants(body: str, key: str, duration: float | None) -> None:
    assert parse_sip_info_dtmf(RELAY, body) == SipInfoDtmf(key, False, duration)


def test_bytes_body_and_content_type_parameters() -> None:
    report = parse_sip_info_dtmf(
        "Application/DTMF-Relay; charset=utf-8", b"Signal=1\r\nDuration=90"
    )
    assert report == SipInfoDtmf("1", False, 90.0)


@pytest.mark.parametrize("body", ["Signal=16", "Signal=!", "signal=hf"])
def test_dtmf_relay_flash(body: str) -> None:
    assert parse_sip_info_dtmf(RELAY, body) == SipInfoDtmf(None, True, None)


@pytest.mark.parametrize(
    ("body", "key"), [("5", "5"), ("11", "#"), ("10", "*"), ("#", "#"), ("b", "B"), (" 3\r\n", "3")]
)
def test_application_dtmf_is_the_key_or_its_event_number(body: str, key: str) -> None:
    assert parse_sip_info_dtmf("application/dtmf", body) == SipInfoDtmf(key, False, None)


@pytest.mark.parametrize("body", ["", "signal=hf", "anything"])
def test_hook_flash_content_type(body: str) -> None:
    assert parse_sip_info_dtmf("application/hook-flash", body) == SipInfoDtmf(None, True, None)


def test_audio_telephone_event_body() -> None:
    payload = build_telephone_event_payload([TelephoneEventBlock(11, True, 10, 800)])
    assert parse_sip_info_dtmf("audio/telephone-event", payload) == SipInfoDtmf("#", False, None)
    flash = build_telephone_event_payload([TelephoneEventBlock(16, True, 10, 800)])
    assert parse_sip_info_dtmf("audio/telephone-event", flash).flash


@pytest.mark.parametrize(
    ("content_type", "body", "problem"),
    [
        ("text/plain", "Signal=5", "carries no DTMF"),
        ("application/sdp", "v=0", "carries no DTMF"),
        (RELAY, "", "no Signal line"),
        (RELAY, "Duration=160\r\n", "no Signal line"),
        (RELAY, "Foo=1\r\nBar=2", "no Signal line"),
        (RELAY, "Signal=\r\nDuration=100", "signal is empty"),
        (RELAY, "Signal=E", "'E' is not a key"),
        (RELAY, "Signal=17", "'17' is not a key"),
        (RELAY, "Signal=55", "'55' is not a key"),
        (RELAY, "hello world", "'hello world' is not a key"),
        (RELAY, b"Signal=\xff", "not UTF-8"),
        ("application/dtmf", "", "body is empty"),
        ("application/dtmf", "x", "'x' is not a key"),
        ("audio/telephone-event", b"\x01\x02", "payload is 2 bytes"),
        ("audio/telephone-event", bytes([40, 0x80, 0, 160]), "event 40, not a key"),
    ],
)
def test_unusable_bodies_raise_a_clear_error(
    content_type: str, body: str | bytes, problem: str
) -> None:
    with pytest.raises(DtmfParseError, match=problem):
        parse_sip_info_dtmf(content_type, body)


def test_receiver_reports_press_start_and_end_with_duration() -> None:
    rx = SipInfoDtmfReceiver()
    events = rx.receive("abc@host", 2, RELAY, "Signal=5\r\nDuration=160\r\n", now_ms=1000.0)
    assert events == [
        KeyDown("5", DtmfSource.SIP_INFO, 1000.0, 1000.0),
        KeyUp("5", DtmfSource.SIP_INFO, 1000.0, 160.0),
    ]


def test_retransmitted_info_is_one_press_and_new_cseq_is_another() -> None:
    rx = SipInfoDtmfReceiver()
    body = "Signal=1\r\nDuration=100"
    first = rx.receive("call-1", 5, RELAY, body, now_ms=0.0)
    retransmissions = [
        rx.receive("call-1", 5, RELAY, body, now_ms=t) for t in (500.0, 1500.0, 3500.0)
    ]
    second = rx.receive("call-1", 6, RELAY, body, now_ms=4000.0)
    other_call = rx.receive("call-2", 5, RELAY, body, now_ms=4100.0)
    assert len(first) == 2 and retransmissions == [[], [], []]
    assert [e.key for e in second if isinstance(e, KeyDown)] == ["1"]
    assert [e.key for e in other_call if isinstance(e, KeyDown)] == ["1"]


def test_dedup_memory_is_bounded_by_the_transaction_lifetime() -> None:
    rx = SipInfoDtmfReceiver(dedup_ms=32_000)
    body = "Signal=1"
    assert rx.receive("c", 1, RELAY, body, now_ms=0.0)
    assert rx.receive("c", 1, RELAY, body, now_ms=31_999.0) == []
    # Long after the transaction could still be retransmitted, the entry is forgotten.
    assert rx.receive("c", 1, RELAY, body, now_ms=70_000.0)


def test_bad_body_raises_and_is_not_remembered() -> None:
    rx = SipInfoDtmfReceiver()
    with pytest.raises(DtmfParseError):
        rx.receive("c", 1, RELAY, "Signal=Z", now_ms=0.0)
    with pytest.raises(DtmfParseError):
        rx.receive("c", 1, RELAY, "Signal=Z", now_ms=10.0)


def test_flash_and_filtered_keys_give_no_key_events() -> None:
    rx = SipInfoDtmfReceiver(key_filter=DIGITS)
    assert rx.receive("c", 1, "application/hook-flash", "", now_ms=0.0) == []
    assert rx.receive("c", 2, RELAY, "Signal=A", now_ms=0.0) == []
    assert rx.receive("c", 3, RELAY, "Signal=#", now_ms=0.0) != []
