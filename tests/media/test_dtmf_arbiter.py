"""The per-call DTMF arbiter: every cross-source double becomes one press, genuine repeats stay."""

from __future__ import annotations

import logging

import pytest

from voxflow.media.dtmf import DtmfSource, KeyDown, KeyUp
from voxflow.media.dtmf.arbiter import DtmfArbiter, DtmfPress
from voxflow.media.dtmf.rfc4733 import TelephoneEventReceiver, TelephoneEventSender
from voxflow.media.dtmf.sip_info import SipInfoDtmfReceiver

INBAND = DtmfSource.INBAND
RFC = DtmfSource.RFC4733
INFO = DtmfSource.SIP_INFO
Report = tuple[float, KeyDown | KeyUp]


def down(key: str, source: DtmfSource, at: float, onset: float | None = None) -> Report:
    return at, KeyDown(key, source, at, at if onset is None else onset)


def up(key: str, source: DtmfSource, at: float, duration: float | None = 100.0) -> Report:
    return at, KeyUp(key, source, at, duration)


def arbitrate(
    arbiter: DtmfArbiter, reports: list[Report], *, until_ms: float = 10_000
) -> list[DtmfPress]:
    """Feed reports in time order, polling at every deadline like the engine's timer does."""
    presses: list[DtmfPress] = []
    for at, event in [*sorted(reports, key=lambda r: r[0]), (until_ms, None)]:
        deadline = arbiter.next_deadline()
        while deadline is not None and deadline <= at:
            presses += arbiter.poll(deadline)
            deadline = arbiter.next_deadline()
        if event is not None:
            presses += arbiter.feed(event, at)
    return presses


def pressed(presses: list[DtmfPress]) -> str:
    return "".join(p.key for p in presses)


def inband_press(key: str, at: float, length: float = 80.0) -> list[Report]:
    # The in-band detector reports about 30 ms after onset.
    return [down(key, INBAND, at + 30, onset=at), up(key, INBAND, at + length + 38, length)]


def rfc_press(key: str, at: float, length: float = 80.0) -> list[Report]:
    return [down(key, RFC, at + 20, onset=at), up(key, RFC, at + length, length)]


def info_press(key: str, at: float) -> list[Report]:
    return [down(key, INFO, at), up(key, INFO, at, 100.0)]


# --- single sources ----------------------------------------------------------------------------


def test_inband_without_telephone_event_is_emitted_at_once() -> None:
    arbiter = DtmfArbiter(telephone_event_negotiated=False)
    presses = arbiter.feed(KeyDown("5", INBAND, 130.0, 100.0), 130.0)
    assert presses == [DtmfPress("5", INBAND, 130.0, 100.0)]
    assert arbiter.next_deadline() is None


def test_inband_with_telephone_event_is_held_then_released() -> None:
    arbiter = DtmfArbiter(telephone_event_negotiated=True, inband_hold_ms=200)
    assert arbiter.feed(KeyDown("5", INBAND, 130.0, 100.0), 130.0) == []
    assert arbiter.next_deadline() == 330.0
    assert arbiter.poll(329.0) == []
    assert arbiter.poll(330.0) == [DtmfPress("5", INBAND, 330.0, 100.0)]
    assert arbiter.next_deadline() is None


@pytest.mark.parametrize("source", [RFC, INFO, DtmfSource.STREAM])
def test_out_of_band_is_emitted_at_once(source: DtmfSource) -> None:
    arbiter = DtmfArbiter(telephone_event_negotiated=True)
    assert arbiter.feed(KeyDown("#", source, 50.0, 40.0), 50.0) == [
        DtmfPress("#", source, 50.0, 40.0)
    ]


@pytest.mark.parametrize(
    ("make", "negotiated"),
    [(rfc_press, True), (info_press, False), (inband_press, False), (inband_press, True)],
)
def test_genuine_repeats_via_one_source_all_pass(make: object, negotiated: bool) -> None:
    """Failure mode 6: "11" and "111" must not merge."""
    assert callable(make)
    reports = [r for i in range(3) for r in make("1", i * 130.0)]
    presses = arbitrate(DtmfArbiter(telephone_event_negotiated=negotiated), reports)
    assert pressed(presses) == "111"


# --- in-band + RFC 4733 (failure mode 4) -------------------------------------------------------


@pytest.mark.parametrize("rfc_delay_ms", [-40.0, -10.0, 0.0, 20.0, 60.0, 150.0])
def test_inband_residue_plus_rfc4733_is_one_press(rfc_delay_ms: float) -> None:
    reports = inband_press("7", 0.0, length=40) + rfc_press("7", rfc_delay_ms, length=100)
    presses = arbitrate(DtmfArbiter(telephone_event_negotiated=True), reports)
    assert pressed(presses) == "7"
    assert presses[0].source is RFC


def test_rfc4733_first_then_inband_residue_is_suppressed(caplog: pytest.LogCaptureFixture) -> None:
    reports = rfc_press("3", 0.0) + inband_press("3", 30.0, length=40)
    with caplog.at_level(logging.INFO, logger="voxflow.media.dtmf.arbiter"):
        presses = arbitrate(DtmfArbiter(telephone_event_negotiated=True), reports)
    assert pressed(presses) == "3"
    assert "ignored" in caplog.text


def test_after_any_out_of_band_press_inband_is_off_for_the_call() -> None:
    reports = rfc_press("1", 0.0) + inband_press("2", 2000.0) + inband_press("9", 5000.0)
    presses = arbitrate(DtmfArbiter(telephone_event_negotiated=True), reports)
    assert pressed(presses) == "1"


def test_rfc4733_arriving_after_the_hold_window_is_still_one_press() -> None:
    # In-band is released at 230 ms; the late RFC 4733 report overlaps the accepted press.
    reports = inband_press("4", 0.0, length=300) + rfc_press("4", 250.0)
    presses = arbitrate(DtmfArbiter(telephone_event_negotiated=True, inband_hold_ms=200), reports)
    assert pressed(presses) == "4" and presses[0].source is INBAND


def test_inband_only_on_a_call_that_negotiated_telephone_event() -> None:
    """Gateways that negotiate telephone-event but send tones must not lose digits."""
    reports = [r for i, key in enumerate("0815") for r in inband_press(key, i * 300.0)]
    presses = arbitrate(DtmfArbiter(telephone_event_negotiated=True), reports)
    assert pressed(presses) == "0815"
    assert all(p.at_ms - p.onset_ms == pytest.approx(230) for p in presses)


def test_inband_before_telephone_event_negotiated_then_rfc4733_twin() -> None:
    arbiter = DtmfArbiter(telephone_event_negotiated=False)
    presses = arbitrate(arbiter, inband_press("6", 0.0), until_ms=140.0)
    assert pressed(presses) == "6"
    arbiter.renegotiate(True, 150.0)
    assert arbiter.feed(KeyDown("6", RFC, 160.0, 40.0), 160.0) == []


def test_renegotiation_without_telephone_event_releases_held_presses() -> None:
    arbiter = DtmfArbiter(telephone_event_negotiated=True)
    arbiter.feed(KeyDown("2", INBAND, 30.0, 0.0), 30.0)
    assert arbiter.renegotiate(False, 100.0) == [DtmfPress("2", INBAND, 100.0, 0.0)]
    assert not arbiter.telephone_event_negotiated
    assert arbiter.feed(KeyDown("3", INBAND, 500.0, 470.0), 500.0) == [
        DtmfPress("3", INBAND, 500.0, 470.0)
    ]


def test_held_press_of_another_key_is_released_before_the_out_of_band_press() -> None:
    reports = (
        inband_press("1", 0.0) + inband_press("2", 130.0) + [down("2", RFC, 170.0, onset=130.0)]
    )
    presses = arbitrate(DtmfArbiter(telephone_event_negotiated=True), reports)
    assert [(p.key, p.source) for p in presses] == [("1", INBAND), ("2", RFC)]


def test_fast_repeat_held_in_band_pairs_one_to_one_with_rfc4733() -> None:
    reports = [
        *inband_press("1", 0.0, 60),
        *inband_press("1", 110.0, 60),
        *rfc_press("1", 5.0, 60),
        *rfc_press("1", 115.0, 60),
    ]
    presses = arbitrate(DtmfArbiter(telephone_event_negotiated=True), reports)
    assert [(p.key, p.source) for p in presses] == [("1", RFC), ("1", RFC)]


# --- SIP INFO + RFC 4733 -----------------------------------------------------------------------


@pytest.mark.parametrize("info_delay_ms", [-30.0, 0.0, 10.0, 90.0, 200.0])
def test_info_plus_rfc4733_is_one_press_first_wins(info_delay_ms: float) -> None:
    reports = rfc_press("9", 0.0) + info_press("9", 20.0 + info_delay_ms)
    presses = arbitrate(DtmfArbiter(telephone_event_negotiated=True), reports)
    assert pressed(presses) == "9"
    assert presses[0].source is (INFO if info_delay_ms < 0 else RFC)


def test_info_and_rfc4733_fast_repeats_give_two_presses() -> None:
    # The second press arrives only as INFO (its RFC 4733 packets were lost) within the window
    # of the first press, which already absorbed its own INFO twin: "11" stays "11".
    reports = [*rfc_press("1", 0.0), *info_press("1", 30.0), *info_press("1", 190.0)]
    presses = arbitrate(DtmfArbiter(telephone_event_negotiated=True), reports)
    assert [(p.key, p.source) for p in presses] == [("1", RFC), ("1", INFO)]


def test_second_press_info_before_its_rfc4733_packets() -> None:
    reports = [
        *rfc_press("1", 0.0),
        *info_press("1", 30.0),
        *info_press("1", 190.0),
        *rfc_press("1", 180.0),
    ]
    presses = arbitrate(DtmfArbiter(telephone_event_negotiated=True), reports)
    assert pressed(presses) == "11"


def test_info_long_after_rfc4733_is_a_new_press() -> None:
    reports = rfc_press("5", 0.0) + info_press("5", 800.0)
    assert pressed(arbitrate(DtmfArbiter(telephone_event_negotiated=True), reports)) == "55"


def test_different_keys_from_two_sources_both_pass() -> None:
    reports = rfc_press("1", 0.0) + info_press("2", 30.0)
    assert pressed(arbitrate(DtmfArbiter(telephone_event_negotiated=True), reports)) == "12"


# --- A-D ---------------------------------------------------------------------------------------


def test_abcd_dropped_by_default_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    reports = rfc_press("A", 0.0) + rfc_press("1", 300.0) + inband_press("D", 600.0)
    with caplog.at_level(logging.INFO, logger="voxflow.media.dtmf.arbiter"):
        presses = arbitrate(DtmfArbiter(), reports)
    assert pressed(presses) == "1"
    assert "'A'" in caplog.text and "not enabled" in caplog.text


def test_abcd_pass_when_enabled() -> None:
    reports = inband_press("A", 0.0) + inband_press("D", 300.0)
    assert pressed(arbitrate(DtmfArbiter(allow_abcd=True), reports)) == "AD"


# --- failure modes 7 and 8: presses reported on the first report, whatever the call is doing --


def test_presses_surface_on_the_first_report_not_on_release() -> None:
    """Failure modes 7/8: the arbiter never waits for KeyUp and holds nothing out of band."""
    arbiter = DtmfArbiter(telephone_event_negotiated=True)
    assert pressed(arbiter.feed(KeyDown("8", RFC, 20.0, 0.0), 20.0)) == "8"
    assert arbiter.next_deadline() is None


# --- real receivers into the arbiter -----------------------------------------------------------


def test_real_rfc4733_receiver_and_info_receiver_into_the_arbiter() -> None:
    """One press sent as RFC 4733 (with END triple) and retransmitted INFO: one press."""
    arbiter = DtmfArbiter(telephone_event_negotiated=True)
    rtp = TelephoneEventReceiver()
    info = SipInfoDtmfReceiver()
    presses: list[DtmfPress] = []
    for seq, packet in enumerate(TelephoneEventSender(101).packets_for_key("4", 120)):
        now = 1000 + packet.send_offset_ms
        for event in rtp.receive(
            ssrc=9, seq=seq, timestamp=500, marker=packet.marker, payload=packet.payload, now_ms=now
        ):
            presses += arbiter.feed(event, now)
        if seq in (1, 3):  # the INFO and its retransmission, mid-press
            for event in info.receive(
                "c1", 7, "application/dtmf-relay", "Signal=4\r\nDuration=120", now
            ):
                presses += arbiter.feed(event, now)
    assert [(p.key, p.source) for p in presses] == [("4", RFC)]
