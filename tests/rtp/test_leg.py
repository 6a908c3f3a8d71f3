"""MediaLeg: RTP in and out, and every key press through one arbiter (all sans-IO)."""

from __future__ import annotations

import itertools
import random
import subprocess

import numpy as np
import pytest
from rtp_caller import PEER, TICK, Caller, drive, keys, merge

from voxflow.errors import DtmfParseError, MediaError
from voxflow.media.audio import decode_wav_at
from voxflow.media.dtmf import DtmfSource, detect_digits, generate_tone
from voxflow.media.dtmf.rfc4733 import parse_telephone_event_payload
from voxflow.media.g711 import Codec
from voxflow.media.serial import seq_diff, ts_diff
from voxflow.rtp.echo_guard import OutboundToneGuard
from voxflow.rtp.inband import InbandDetectorPool
from voxflow.rtp.leg import LegMedia, MediaLeg
from voxflow.rtp.packet import RtpPacket, parse_rtp
from voxflow.sip.sdp import Codec as SdpCodec
from voxflow.sip.sdp import NegotiatedMedia

EVENT_PT = 101
STRANGER = ("127.0.0.1", 40002)


def make_leg(codec: Codec = Codec.PCMU, event_pt: int | None = EVENT_PT, **kw: object) -> MediaLeg:
    media = LegMedia(
        codec=codec,
        payload_type=codec.payload_type,
        telephone_event_payload_type=event_pt,
        remote=PEER,
        **kw,  # type: ignore[arg-type]
    )
    return MediaLeg(media, label="test", rng=random.Random(7))


def speechlike(frames: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 2000, frames * 160)).astype(np.int16)


# -- configuration -------------------------------------------------------------------------------


def test_media_from_negotiated_sdp_takes_payload_types_and_clock_from_it() -> None:
    negotiated = NegotiatedMedia(
        codec=SdpCodec("PCMA", 8, 8000),
        telephone_event=SdpCodec("telephone-event", 96, 16000),
        ptime=30,
        direction="recvonly",
        remote_address="192.0.2.7",
        remote_port=30000,
    )
    media = LegMedia.from_negotiated(negotiated, red_payload_type=99)
    assert media == LegMedia(Codec.PCMA, 8, 96, 16000, 99, 30, ("192.0.2.7", 30000), False)
    with pytest.raises(MediaError, match="G722"):
        LegMedia.from_negotiated(
            NegotiatedMedia(SdpCodec("G722", 9, 8000), None, 20, "sendrecv", "192.0.2.7", 1)
        )


# -- inbound audio -------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", [Codec.PCMU, Codec.PCMA])
def test_audio_in_comes_out_decoded_frame_by_frame(codec: Codec) -> None:
    leg, caller = make_leg(codec), Caller(codec)
    sent = speechlike(10)
    frames = drive(leg, caller.audio(sent), tail_ticks=4)
    audible = [frame for frame in frames if not frame.lost]
    assert len(audible) == 10
    received = np.concatenate([frame.samples for frame in audible])
    np.testing.assert_array_equal(received, codec.decode_codes(codec.encode_samples(sent)))
    assert all(
        frame.samples.dtype == np.int16 and frame.samples.shape == (160,) for frame in frames
    )


def test_a_lost_packet_comes_out_as_a_lost_silent_frame() -> None:
    leg, caller = make_leg(), Caller()
    ticks = caller.audio(speechlike(8))
    ticks[4] = []  # the network ate it
    frames = [frame for frame in drive(leg, ticks, tail_ticks=4)]
    first = next(i for i, frame in enumerate(frames) if not frame.lost)
    window = frames[first : first + 8]
    assert [frame.lost for frame in window] == [False] * 4 + [True] + [False] * 3
    assert not window[4].samples.any()
    assert leg.stats.rtp.jitter.lost == 1


# -- key presses -----------------------------------------------------------------------------------


def rfc4733_keys(caller: Caller, sequence: str) -> list[list[bytes]]:
    ticks: list[list[bytes]] = []
    for key in sequence:
        train = caller.key_train(key, EVENT_PT, 100)
        ticks += merge(train, caller.silence(len(train) + 3))
    return ticks


def test_rfc4733_sequence_gives_each_press_exactly_once() -> None:
    leg, caller = make_leg(), Caller()
    drive(leg, rfc4733_keys(caller, "123#"))
    presses = leg.presses()
    assert [p.key for p in presses] == list("123#")
    assert {p.source for p in presses} == {DtmfSource.RFC4733}
    assert leg.presses() == []  # drained
    assert leg.stats.presses == {DtmfSource.RFC4733: 4}


def test_press_both_as_rfc4733_and_inband_residue_counts_once() -> None:
    leg, caller = make_leg(), Caller()
    pool = InbandDetectorPool()
    pool.add(leg)
    tone = generate_tone("5", 120, level_dbm0=-10)
    train = caller.key_train("5", EVENT_PT, 120)
    drive(leg, merge(caller.silence(3), []) + merge(train, caller.audio(tone)), pool=pool)
    assert [(p.key, p.source) for p in leg.presses()] == [("5", DtmfSource.RFC4733)]


def test_info_and_rfc4733_of_the_same_press_count_once() -> None:
    leg, caller = make_leg(), Caller()
    assert leg.receive_info("call-1", 7, "application/dtmf-relay", "Signal=5\nDuration=160", 0.0)
    # The retransmitted INFO is the same transaction.
    assert leg.receive_info("call-1", 7, "application/dtmf-relay", "Signal=5\nDuration=160", 0.5)
    drive(leg, merge(caller.key_train("5", EVENT_PT), caller.silence(8)), start=0.01)
    assert [(p.key, p.source) for p in leg.presses()] == [("5", DtmfSource.SIP_INFO)]


def test_info_bodies_that_are_not_dtmf_are_reported_not_raised() -> None:
    leg = make_leg()
    assert not leg.receive_info("c", 1, "application/json", "{}", 0.0)
    assert not leg.receive_info("c", 2, "application/dtmf-relay", "Signal=Z", 0.0)
    assert leg.stats.bad_info_bodies == 2
    assert leg.presses() == []


def test_inband_only_call_detects_every_digit_from_the_rtp_audio() -> None:
    leg, caller = make_leg(event_pt=None), Caller()
    pool = InbandDetectorPool()
    pool.add(leg)
    drive(leg, caller.tones("0123456789*#"), pool=pool)
    presses = leg.presses()
    assert "".join(p.key for p in presses) == "0123456789*#"
    assert {p.source for p in presses} == {DtmfSource.INBAND}


def test_inband_press_alone_is_released_after_the_hold_window() -> None:
    leg, caller = make_leg(), Caller()
    pool = InbandDetectorPool()
    pool.add(leg)
    drive(leg, caller.tones("8"), pool=pool, tail_ticks=2)
    assert leg.presses() == []  # still held, waiting for an out-of-band twin
    deadline = leg.next_deadline()
    assert deadline is not None
    leg.poll(deadline)
    assert [(p.key, p.source) for p in leg.presses()] == [("8", DtmfSource.INBAND)]
    assert leg.next_deadline() is None


def test_reinvite_switches_codec_and_adds_telephone_event() -> None:
    leg, pcmu = make_leg(event_pt=None), Caller(Codec.PCMU)
    drive(leg, pcmu.audio(speechlike(5)), tail_ticks=3)
    pcma_media = LegMedia(Codec.PCMA, 8, telephone_event_payload_type=96, remote=PEER)
    leg.update_media(pcma_media, 1.0)
    pcma = Caller(Codec.PCMA, ssrc=0xBEEF)
    sent = speechlike(6, seed=9)
    old_pt_train = pcma.key_train("3", EVENT_PT)  # 101 is no longer negotiated
    ticks = merge(pcma.audio(sent), old_pt_train) + merge(pcma.key_train("4", 96), pcma.silence(9))
    frames = drive(leg, ticks, start=1.0)
    audible = np.concatenate([f.samples for f in frames if not f.lost])
    expected = Codec.PCMA.decode_codes(Codec.PCMA.encode_samples(sent))
    np.testing.assert_array_equal(audible[: expected.size], expected)
    assert [(p.key, p.source) for p in leg.presses()] == [("4", DtmfSource.RFC4733)]
    assert leg.stats.rtp.rejected_unknown_payload_type == sum(len(tick) for tick in old_pt_train)


def test_reinvite_to_hold_stops_sending_and_keeps_the_clock() -> None:
    leg = make_leg()
    first = parse_rtp(leg.send_silence(0.0)[0])
    leg.update_media(LegMedia(Codec.PCMU, 0, EVENT_PT, remote=PEER, sending=False), 0.02)
    assert [leg.send_silence(0.02 * i) for i in range(1, 4)] == [[], [], []]
    leg.update_media(LegMedia(Codec.PCMU, 0, EVENT_PT, remote=PEER), 0.08)
    resumed = parse_rtp(leg.send_silence(0.08)[0])
    assert ts_diff(resumed.timestamp, first.timestamp) == 4 * 160
    assert resumed.marker and seq_diff(resumed.sequence, first.sequence) == 1


def test_packets_from_a_stranger_after_latching_are_ignored() -> None:
    leg, caller, stranger = make_leg(), Caller(), Caller(ssrc=0xBAD)
    drive(leg, caller.silence(2), tail_ticks=0)
    assert leg.remote == PEER
    drive(leg, merge(stranger.key_train("9", EVENT_PT), stranger.silence(8)), source=STRANGER)
    assert leg.presses() == []
    assert leg.stats.rtp.rejected_wrong_source >= 8
    assert leg.remote == PEER


def test_garbage_datagrams_are_counted_never_raised() -> None:
    leg, caller = make_leg(), Caller()
    rng = random.Random(5)
    garbage = [b"", b"\x00", b"\x80" * 11, bytes(rng.getrandbits(8) for _ in range(200))]
    bad_event = RtpPacket(EVENT_PT, 1, 0, caller.ssrc, b"\x05\x80\x01").to_bytes()
    for index, data in enumerate([*garbage, bad_event]):
        leg.receive_datagram(data, PEER, index * TICK)
    stats = leg.stats
    assert stats.rejected >= len(garbage) - 1  # random bytes may happen to look like RTP
    assert stats.bad_telephone_events == 1
    assert leg.presses() == []
    drive(leg, rfc4733_keys(caller, "7"), start=1.0)
    assert keys(leg) == "7"  # and the leg still works


def test_red_wrapped_telephone_events_are_unwrapped() -> None:
    media = LegMedia(Codec.PCMU, 0, EVENT_PT, red_payload_type=99, remote=PEER)
    leg, caller = MediaLeg(media), Caller()
    start = caller.ts
    datagrams = []
    for item in caller.key_train("6", EVENT_PT):
        for data in item:
            packet = parse_rtp(data)
            red = bytes([EVENT_PT]) + packet.payload  # primary block only
            datagrams.append([caller.packet(99, red, packet.timestamp, packet.marker)])
    assert parse_rtp(datagrams[0][0]).timestamp == start
    drive(leg, merge(datagrams, caller.silence(8)))
    assert keys(leg) == "6"


# -- outbound ------------------------------------------------------------------------------------


def test_send_audio_encodes_with_the_negotiated_law_and_ptime() -> None:
    media = LegMedia(Codec.PCMA, 8, None, ptime=40, remote=PEER)
    leg = MediaLeg(media, rng=random.Random(1))
    frames = speechlike(4)
    packets = [
        parse_rtp(d)
        for i in range(4)
        for d in leg.send_audio(frames[i * 160 : (i + 1) * 160], i * TICK)
    ]
    assert len(packets) == 2 and all(p.payload_type == 8 for p in packets)
    np.testing.assert_array_equal(
        np.frombuffer(b"".join(p.payload for p in packets), np.uint8),
        Codec.PCMA.encode_samples(frames),
    )
    with pytest.raises(MediaError, match="int16"):
        leg.send_audio(np.zeros(160, np.float32), 0.1)


def test_send_dtmf_makes_an_rfc4733_train_between_audio_packets() -> None:
    leg = make_leg()
    audio = np.full(160, 1000, np.int16)
    sent = [leg.send_audio(audio, 0.0)]
    leg.send_dtmf("9", 100, 0.02)
    sent += [leg.send_audio(audio, (i + 1) * TICK) for i in range(10)]
    packets = [parse_rtp(d) for tick in sent for d in tick]
    kinds = ["a" if p.payload_type == 0 else "e" for p in packets]
    assert "".join(kinds) == "a" + "e" * 8 + "a" * 2  # 5 updates + 3 ENDs, one per tick
    events = packets[1:9]
    blocks = [parse_telephone_event_payload(p.payload)[0] for p in events]
    assert {b.event for b in blocks} == {9}
    assert [p.marker for p in events] == [True] + [False] * 7
    assert len({p.timestamp for p in events}) == 1
    assert ts_diff(events[0].timestamp, packets[0].timestamp) == 160
    assert [b.end for b in blocks] == [False] * 5 + [True] * 3
    assert [b.duration for b in blocks] == [0, 160, 320, 480, 640, 800, 800, 800]
    resumed = packets[9]
    assert resumed.marker and ts_diff(resumed.timestamp, events[0].timestamp) == 8 * 160
    assert all(seq_diff(b.sequence, a.sequence) == 1 for a, b in itertools.pairwise(packets))
    # The far end (another leg) hears exactly one 9.
    far = make_leg()
    for index, tick in enumerate(sent):
        for data in tick:
            far.receive_datagram(data, PEER, index * TICK)
    far.poll(1.0)
    assert keys(far) == "9"


def test_send_dtmf_falls_back_to_tones_the_detector_decodes() -> None:
    leg = make_leg(event_pt=None)
    for key in "4#":
        leg.send_dtmf(key, 80, 0.0)
    payloads = [parse_rtp(d).payload for i in range(30) for d in leg.send_silence(i * TICK)]
    assert detect_digits(Codec.PCMU.decode_codes(b"".join(payloads))) == "4#"
    with pytest.raises(DtmfParseError):
        leg.send_dtmf("x", 80, 1.0)


# -- echo guard ----------------------------------------------------------------------------------


def prompt_with_tone_pair() -> np.ndarray:
    """A prompt: noise, the tone pair of '9' for 300 ms (a jingle), noise again."""
    tone = generate_tone("9", 300, level_dbm0=-8)
    return np.concatenate([speechlike(5), tone, speechlike(5, seed=4)]).astype(np.int16)


def echo_call(leg: MediaLeg, prompt: np.ndarray, *, send: bool) -> None:
    """Our leg plays ``prompt`` (or silence); the caller's line returns the prompt's echo at
    -10 dB, 40 ms late, as its own RTP audio."""
    pool = InbandDetectorPool()
    pool.add(leg)
    caller = Caller()
    frames = prompt.reshape(-1, 160)
    echo = np.concatenate([np.zeros(320), prompt * 10 ** (-10 / 20)]).astype(np.int16)
    inbound = caller.audio(echo)
    for index in range(len(inbound) + 20):
        now = index * TICK
        if index < len(frames):
            leg.send_audio(frames[index] if send else np.zeros(160, np.int16), now)
        for data in inbound[index] if index < len(inbound) else []:
            leg.receive_datagram(data, PEER, now)
        pool.process(now + 0.001)
        leg.poll(now + 0.001)


def test_echo_of_our_own_prompt_is_not_a_key_press() -> None:
    guarded = make_leg(event_pt=None)
    echo_call(guarded, prompt_with_tone_pair(), send=True)
    assert guarded.presses() == []
    assert guarded.stats.echo_suppressed == 1
    # Control: the same inbound audio, when we did not send the prompt, is a real '9'.
    control = make_leg(event_pt=None)
    echo_call(control, prompt_with_tone_pair(), send=False)
    assert keys(control) == "9"


def test_echo_guard_lets_a_different_key_through_during_the_prompt() -> None:
    leg = make_leg(event_pt=None)
    pool = InbandDetectorPool()
    pool.add(leg)
    caller = Caller()
    prompt = prompt_with_tone_pair().reshape(-1, 160)
    inbound = caller.audio(np.concatenate([np.zeros(800, np.int16), generate_tone("1", 200)]))
    for index in range(len(prompt) + 10):
        now = index * TICK
        if index < len(prompt):
            leg.send_audio(prompt[index], now)
        for data in inbound[index] if index < len(inbound) else []:
            leg.receive_datagram(data, PEER, now)
        pool.process(now + 0.001)
    assert keys(leg) == "1"


def spoken_prompt() -> np.ndarray:
    """Real speech (espeak-ng), 8 kHz, as a spoken menu prompt would be."""
    wav = subprocess.run(
        ["espeak-ng", "--stdout", "Press one for sales, two for support, or hash to end the call."],
        check=True, capture_output=True,
    ).stdout
    samples = decode_wav_at(wav, 8000)
    return samples[: len(samples) // 160 * 160]


def test_echo_guard_never_takes_a_key_pressed_over_speech_for_echo() -> None:
    # Regression: the guard used to remember the strongest row/column pair of every loud
    # enough outbound frame, which for speech is some pair nearly every frame; a caller's real
    # key whose pair happened to match was then dropped as "echo of our own audio".
    guard = OutboundToneGuard()
    frames = spoken_prompt().reshape(-1, 160)
    for index, frame in enumerate(frames):
        guard.record(frame, index * 20.0)
    # A caller pressing any key at any moment while the prompt plays (onset 40 ms after a
    # frame went out, recognised 40 ms later).
    taken_for_echo = [
        (key, index)
        for index in range(len(frames))
        for key in "0123456789*#"
        if guard.is_echo(key, index * 20.0 + 40, index * 20.0 + 80)
    ]
    assert taken_for_echo == []
    end_ms = len(frames) * 20.0
    guard.record(generate_tone("5", 20, level_dbm0=-10), end_ms)
    assert guard.is_echo("5", end_ms + 40, end_ms + 80)  # a real tone pair is still remembered


@pytest.mark.parametrize("codec", [Codec.PCMU, Codec.PCMA])
def test_silence_is_sent_exactly_like_a_frame_of_zeros(codec: Codec) -> None:
    # send_silence takes a shortcut (a cached payload, no encoding); the packets must be the
    # ones the general path makes for the same samples, before and after a queued key.
    fast, general = make_leg(codec), make_leg(codec)
    zeros = np.zeros(160, dtype=np.int16)
    sent_fast, sent_general = [], []
    for tick in range(12):
        now = tick * TICK
        if tick == 3:
            fast.send_dtmf("7", 60, now)
            general.send_dtmf("7", 60, now)
        sent_fast += fast.send_silence(now)
        sent_general += general.send_audio(zeros.copy(), now)
    assert sent_fast == sent_general
    assert len(sent_fast) == 12
    assert {parse_rtp(d).payload_type for d in sent_fast} == {codec.payload_type, EVENT_PT}
