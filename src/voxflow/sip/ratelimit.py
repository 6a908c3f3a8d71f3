"""Per-source rate limits for out-of-dialog SIP requests: token buckets, time passed in.

A scanner or a flood from one address must not crowd out a trunk's calls. Each source address
has one token bucket per limited method (INVITE, REGISTER, OPTIONS). A request that finds its
bucket empty is refused with a stateless 503 and Retry-After, but those answers are rationed too
(the ``replies`` bucket): past that hard ceiling requests are dropped silently, so a flood is
never amplified into a flood of answers. Memory is bounded: a source whose buckets have
refilled carries no information and is forgotten, and at most ``max_sources`` are tracked.
"""

from __future__ import annotations

import enum
import ipaddress
import math
from collections import OrderedDict
from dataclasses import dataclass, field

from voxflow.errors import ConfigError

LIMITED_METHODS = ("INVITE", "REGISTER", "OPTIONS")


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: ``rate`` requests per second on average, ``burst`` at once."""

    rate: float
    burst: float

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ConfigError(f"sip.rate_limits: rate must be a positive number, got {self.rate}")
        if not (self.burst >= 1 and math.isfinite(self.burst)):
            raise ConfigError(f"sip.rate_limits: burst must be at least 1, got {self.burst}")

    @property
    def refill_seconds(self) -> float:
        """How long an empty bucket takes to fill up again."""
        return self.burst / self.rate


@dataclass(frozen=True)
class RateLimits:
    """Per-source limits. The defaults let one trunk fill 500 calls at once and sustain 50 call
    attempts per second, while a scanner's OPTIONS/REGISTER sweep is cut down quickly."""

    invite: RateLimit = RateLimit(rate=50.0, burst=600.0)
    register: RateLimit = RateLimit(rate=5.0, burst=20.0)
    options: RateLimit = RateLimit(rate=10.0, burst=50.0)
    replies: RateLimit = RateLimit(rate=5.0, burst=20.0)
    """503 answers per source; refused requests beyond this are dropped without an answer."""
    max_sources: int = 4096
    log_interval: float = 60.0
    exempt: tuple[str, ...] = ()
    """Addresses or networks never limited (e.g. the trunk's signalling addresses)."""
    exempt_allowed_sources: bool = True
    """Sources on a non-empty ``SipConfig.allowed_sources`` list are exempt too."""

    def __post_init__(self) -> None:
        if self.max_sources < 1:
            raise ConfigError("sip.rate_limits.max_sources must be at least 1")
        if not self.log_interval >= 0:
            raise ConfigError("sip.rate_limits.log_interval must not be negative")
        for network in self.exempt:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ConfigError(
                    f"sip.rate_limits.exempt entry {network!r} is not an address or network"
                ) from None

    def for_method(self, method: str) -> RateLimit | None:
        """The limit of one request method, None when the method is not limited."""
        return {"INVITE": self.invite, "REGISTER": self.register, "OPTIONS": self.options}.get(
            method
        )


class Action(enum.Enum):
    """What to do with one request."""

    ALLOW = "allow"
    REJECT = "reject"  # answer 503 with Retry-After, statelessly
    DROP = "drop"  # past the hard ceiling: no answer at all


@dataclass(frozen=True)
class Verdict:
    """The limiter's answer for one request.

    ``log`` is True for the first refusal of a source in each log interval; ``suppressed``
    counts that source's refusals that were not logged before it.
    """

    action: Action
    retry_after: int = 0
    log: bool = False
    suppressed: int = 0


ALLOW = Verdict(Action.ALLOW)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float

    def take(self, limit: RateLimit, now: float) -> float:
        """Take one token; 0.0 on success, else the seconds until one is available."""
        elapsed = max(0.0, now - self.updated)  # a clock step backwards refills nothing
        self.tokens = min(limit.burst, self.tokens + elapsed * limit.rate)
        self.updated = max(self.updated, now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / limit.rate


@dataclass(slots=True)
class _Source:
    last_seen: float
    buckets: dict[str, _Bucket] = field(default_factory=dict)
    logged_at: float | None = None
    suppressed: int = 0


class SourceRateLimiter:
    """Token buckets per source address and method; sans-IO, ``now`` in seconds."""

    def __init__(self, limits: RateLimits, allowed_sources: tuple[str, ...] = ()) -> None:
        self.limits = limits
        exempt = list(limits.exempt)
        if limits.exempt_allowed_sources:
            exempt += allowed_sources
        self._exempt = [ipaddress.ip_network(net, strict=False) for net in exempt]
        self._sources: OrderedDict[str, _Source] = OrderedDict()  # least recently seen first
        # a source idle this long has full buckets and an expired log interval: nothing to keep
        self._idle_after = max(
            limits.log_interval,
            *(
                limit.refill_seconds
                for limit in (limits.invite, limits.register, limits.options, limits.replies)
            ),
        )

    @property
    def tracked_sources(self) -> int:
        """Source addresses currently remembered."""
        return len(self._sources)

    def is_exempt(self, host: str) -> bool:
        """Whether ``host`` is never limited."""
        if not self._exempt:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._exempt)

    def check(self, host: str, method: str, now: float) -> Verdict:
        """Account one request of ``method`` from ``host`` and say what to do with it."""
        limit = self.limits.for_method(method)
        if limit is None or self.is_exempt(host):
            return ALLOW
        self._evict(now)
        source = self._sources.get(host)
        if source is None:
            source = self._sources[host] = _Source(now)
            if len(self._sources) > self.limits.max_sources:
                self._sources.popitem(last=False)  # the least recently seen goes first
        else:
            source.last_seen = max(source.last_seen, now)
            self._sources.move_to_end(host)
        wait = self._bucket(source, method, limit, now).take(limit, now)
        if wait == 0.0:
            return ALLOW
        replies = self._bucket(source, "", self.limits.replies, now)
        action = Action.REJECT if replies.take(self.limits.replies, now) == 0.0 else Action.DROP
        log = source.logged_at is None or now - source.logged_at >= self.limits.log_interval
        suppressed = source.suppressed
        if log:
            source.logged_at, source.suppressed = now, 0
        else:
            source.suppressed += 1
        return Verdict(action, max(1, math.ceil(wait)), log, suppressed if log else 0)

    def _bucket(self, source: _Source, key: str, limit: RateLimit, now: float) -> _Bucket:
        bucket = source.buckets.get(key)
        if bucket is None:
            bucket = source.buckets[key] = _Bucket(limit.burst, now)
        return bucket

    def _evict(self, now: float) -> None:
        while self._sources:
            oldest = next(iter(self._sources.values()))
            if now - oldest.last_seen < self._idle_after:
                return
            self._sources.popitem(last=False)
