"""Per-source rate limits: the token buckets on their own (time injected) and inside the agent."""

import logging

import pytest
from sip_harness import AGENT, OFFER_SDP, PEER, SipHarness, request_text

from voxflow.errors import ConfigError
from voxflow.sip.config import SipConfig
from voxflow.sip.events import IncomingCall
from voxflow.sip.message import Response
from voxflow.sip.ratelimit import Action, RateLimit, RateLimits, SourceRateLimiter

SMALL = RateLimits(
    invite=RateLimit(rate=2.0, burst=4.0),
    register=RateLimit(rate=1.0, burst=1.0),
    options=RateLimit(rate=1.0, burst=2.0),
    replies=RateLimit(rate=1.0, burst=3.0),
    log_interval=10.0,
)
A, B = "192.0.2.10", "198.51.100.7"


def actions(limiter: SourceRateLimiter, host: str, method: str, now: float, n: int) -> list[str]:
    return [limiter.check(host, method, now).action.value for _ in range(n)]


def test_burst_passes_then_503_then_silent_drop() -> None:
    limiter = SourceRateLimiter(SMALL)
    assert actions(limiter, A, "INVITE", 0.0, 4) == ["allow"] * 4
    # 3 answers in the replies bucket, then nothing is answered any more
    assert actions(limiter, A, "INVITE", 0.0, 5) == ["reject"] * 3 + ["drop"] * 2


def test_tokens_refill_at_the_configured_rate() -> None:
    limiter = SourceRateLimiter(SMALL)
    actions(limiter, A, "INVITE", 0.0, 4)
    assert limiter.check(A, "INVITE", 0.4).action is Action.REJECT  # 0.8 tokens: not yet
    assert limiter.check(A, "INVITE", 0.5).action is Action.ALLOW  # 1.0 token
    assert actions(limiter, A, "INVITE", 10.0, 5) == ["allow"] * 4 + ["reject"]  # capped at burst


def test_retry_after_says_when_a_token_is_back_in_whole_seconds() -> None:
    limiter = SourceRateLimiter(RateLimits(options=RateLimit(rate=0.25, burst=1.0)))
    assert limiter.check(A, "OPTIONS", 0.0).action is Action.ALLOW
    verdict = limiter.check(A, "OPTIONS", 1.0)
    assert verdict.action is Action.REJECT and verdict.retry_after == 3  # 0.25 tokens, 3 s left
    assert limiter.check(A, "OPTIONS", 3.9).retry_after == 1  # never 0


def test_sources_and_methods_have_separate_buckets() -> None:
    limiter = SourceRateLimiter(SMALL)
    actions(limiter, A, "INVITE", 0.0, 10)
    assert limiter.check(B, "INVITE", 0.0).action is Action.ALLOW
    assert limiter.check(A, "OPTIONS", 0.0).action is Action.ALLOW
    assert limiter.check(A, "REGISTER", 0.0).action is Action.ALLOW
    assert limiter.check(A, "REGISTER", 0.0).action is not Action.ALLOW


def test_unlimited_methods_and_exempt_sources_always_pass() -> None:
    limits = RateLimits(options=RateLimit(rate=1.0, burst=1.0), exempt=("203.0.113.0/24",))
    limiter = SourceRateLimiter(limits, allowed_sources=("192.0.2.0/24",))
    assert actions(limiter, B, "BYE", 0.0, 50) == ["allow"] * 50
    assert actions(limiter, "203.0.113.9", "OPTIONS", 0.0, 50) == ["allow"] * 50
    assert actions(limiter, A, "OPTIONS", 0.0, 50) == ["allow"] * 50  # on the allow-list
    assert actions(limiter, B, "OPTIONS", 0.0, 2) == ["allow", "reject"]
    assert limiter.tracked_sources == 1  # exempt sources cost no memory


def test_allowed_sources_are_limited_when_that_exemption_is_off() -> None:
    limits = RateLimits(options=RateLimit(rate=1.0, burst=1.0), exempt_allowed_sources=False)
    limiter = SourceRateLimiter(limits, allowed_sources=(A,))
    assert actions(limiter, A, "OPTIONS", 0.0, 2) == ["allow", "reject"]


def test_refusals_are_logged_once_per_interval_with_the_suppressed_count() -> None:
    limiter = SourceRateLimiter(SMALL)
    actions(limiter, A, "INVITE", 0.0, 4)
    verdicts = [limiter.check(A, "INVITE", 0.0) for _ in range(5)]
    assert [v.log for v in verdicts] == [True, False, False, False, False]
    assert actions(limiter, A, "INVITE", 9.0, 5) == ["allow"] * 4 + ["reject"]  # refilled
    assert actions(limiter, A, "INVITE", 10.5, 3) == ["allow"] * 3  # 1.5 s refilled 3
    report = limiter.check(A, "INVITE", 10.5)  # a new interval: logged, with what was held back
    assert report.log and report.suppressed == 5


def test_idle_sources_are_forgotten() -> None:
    limiter = SourceRateLimiter(SMALL)
    for n in range(100):
        limiter.check(f"10.0.0.{n}", "OPTIONS", 0.0)
    assert limiter.tracked_sources == 100
    limiter.check(B, "OPTIONS", 9.0)  # not idle long enough (log interval is 10 s)
    assert limiter.tracked_sources == 101
    limiter.check(B, "OPTIONS", 10.0)
    assert limiter.tracked_sources == 1


def test_memory_is_bounded_under_a_spoofed_source_sweep() -> None:
    limiter = SourceRateLimiter(RateLimits(max_sources=64))
    for n in range(5000):
        limiter.check(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", "INVITE", n * 1e-4)
    assert limiter.tracked_sources == 64


def test_clock_stepping_back_refills_nothing() -> None:
    limiter = SourceRateLimiter(SMALL)
    actions(limiter, A, "REGISTER", 100.0, 1)
    assert limiter.check(A, "REGISTER", 50.0).action is Action.REJECT
    assert limiter.check(A, "REGISTER", 100.5).action is Action.REJECT  # no credit from the step
    assert limiter.check(A, "REGISTER", 101.0).action is Action.ALLOW


@pytest.mark.parametrize(
    "make",
    [
        lambda: RateLimit(rate=0.0, burst=5.0),
        lambda: RateLimit(rate=1.0, burst=0.5),
        lambda: RateLimit(rate=float("inf"), burst=5.0),
        lambda: RateLimits(max_sources=0),
        lambda: RateLimits(exempt=("not-a-network",)),
    ],
)
def test_bad_limits_are_config_errors(make: object) -> None:
    with pytest.raises(ConfigError, match="rate_limits"):
        make()  # type: ignore[operator]


# ------------------------------------------------------------------ in the user agent


def invite(n: int) -> bytes:
    return request_text(
        "INVITE",
        call_id=f"flood-{n}",
        branch=f"z9hG4bK-fl{n}",
        body=OFFER_SDP,
        content_type="application/sdp",
    )


def config(**changes: object) -> SipConfig:
    limits = RateLimits(
        invite=RateLimit(rate=1.0, burst=5.0), replies=RateLimit(rate=1.0, burst=10.0)
    )
    settings: dict[str, object] = {
        "listen_address": AGENT[0],
        "listen_port": AGENT[1],
        "answer_timeout": 60.0,
        "rate_limits": limits,
    }
    settings.update(changes)
    return SipConfig(**settings)  # type: ignore[arg-type]


def test_a_flood_from_one_source_is_limited_while_another_sources_call_goes_through(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = SipHarness(config())
    with caplog.at_level(logging.WARNING, logger="voxflow.sip"):
        for n in range(40):
            h.send(invite(n))
    statuses = h.statuses()
    assert statuses == [100] * 5 + [503] * 10  # then silence: the reply ceiling is reached
    assert h.ua.stats.rate_limited == 10 and h.ua.stats.rate_dropped == 25
    assert h.ua.call_count == 5
    assert len([r for r in caplog.records if "rate limit" in r.getMessage()]) == 1

    other = ("198.51.100.20", 5060)
    h.send(invite(1000), other)
    ((trying, addr),) = h.sent()
    assert isinstance(trying, Response) and trying.status == 100 and addr == other
    incoming = [e for e in h.events() if isinstance(e, IncomingCall)]
    assert len(incoming) == 6 and incoming[-1].remote_addr == other


def test_503_carries_retry_after_and_the_source_recovers() -> None:
    h = SipHarness(config())
    for n in range(6):
        h.send(invite(n))
    *_, (refused, _) = h.sent()
    assert isinstance(refused, Response) and refused.status == 503
    assert refused.headers.get("Retry-After") == "1"
    assert "rate limit" in (refused.headers.get("Warning") or "")
    h.now += 1.0
    h.send(invite(99))
    assert h.statuses() == [100]


def test_retransmissions_of_an_accepted_invite_are_not_counted() -> None:
    h = SipHarness(config())
    for _ in range(20):
        h.send(invite(0))
    assert h.ua.stats.rate_limited == 0 and h.ua.call_count == 1
    for n in range(1, 5):
        h.send(invite(n))
    assert h.ua.call_count == 5 and h.ua.stats.rate_limited == 0


def test_allow_listed_trunk_is_exempt_and_others_are_limited_before_the_403() -> None:
    trunk = ("203.0.113.5", 5060)
    h = SipHarness(config(allowed_sources=("203.0.113.0/24",), max_calls=100))
    for n in range(50):
        h.send(invite(n), trunk)
    assert h.statuses().count(100) == 50 and h.ua.stats.rate_limited == 0
    for n in range(50, 80):
        h.send(invite(n), PEER)
    statuses = h.statuses()
    assert statuses == [403] * 5 + [503] * 10
    assert h.ua.stats.forbidden == 5 and h.ua.stats.rate_dropped == 15


def test_rate_limits_can_be_switched_off() -> None:
    h = SipHarness(config(rate_limits=None))
    for n in range(40):
        h.send(invite(n))
    assert h.statuses() == [100] * 40 and h.ua.stats.rate_limited == 0


def test_default_limits_let_a_trunk_fill_the_default_capacity_at_once() -> None:
    h = SipHarness(SipConfig(listen_address=AGENT[0], listen_port=AGENT[1]))
    for n in range(500):
        h.send(invite(n))
    assert h.statuses() == [100] * 500
    h.send(invite(500))
    assert h.statuses() == [503] and h.ua.stats.overloaded == 1 and h.ua.stats.rate_limited == 0


def test_default_limits_cut_an_options_and_register_scan_short() -> None:
    h = SipHarness(SipConfig(listen_address=AGENT[0], listen_port=AGENT[1]))
    for n in range(200):
        h.send(request_text("OPTIONS", call_id=f"scan-{n}", branch=f"z9hG4bK-o{n}"))
    statuses = h.statuses()
    assert statuses == [200] * 50 + [503] * 20  # burst, then the ration of 503s, then silence
    for n in range(100):
        h.send(request_text("REGISTER", call_id=f"reg-{n}", branch=f"z9hG4bK-r{n}"))
    assert h.statuses() == [405] * 20  # the 503 ration of this source is already spent
    assert h.ua.stats.rate_limited == 20 and h.ua.stats.rate_dropped == 130 + 80
    assert h.ua.transaction_count == 70  # answered requests only; refusals are stateless
