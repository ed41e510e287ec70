"""Rate limits shared by every web process and host: atomic counters in Redis.

One round trip per request: a small Lua script reads a sliding window (this
minute's count plus the share of the last minute's still inside the window),
and adds the request's cost only if it fits. Redis runs the script atomically,
so concurrent requests from any number of processes cannot overshoot.

When Redis cannot be reached, each process falls back to the same counters in
its own memory for ``RETRY_SECONDS`` before trying Redis again: predictions and
contributions keep working, each process enforcing the limit on its own (so a
client may get up to the limit times the number of web processes). Counting
never fails a request; the database's quotas on contributions
(``collector.abuse``) hold whatever happens to Redis.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry
from rest_framework.exceptions import Throttled
from rest_framework.throttling import BaseThrottle

from digits_site.clients import client_key

logger = logging.getLogger(__name__)

RETRY_SECONDS = 5.0
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# KEYS: this window's counter, the previous window's. ARGV: the previous window's
# share still inside the sliding window, the cost, the limit, the counter's life,
# and '1' to only ask whether the cost would fit.
_SCRIPT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
local used = previous * tonumber(ARGV[1]) + current
local cost = tonumber(ARGV[2])
if used + cost > tonumber(ARGV[3]) then
  return {0, math.ceil(used)}
end
if ARGV[5] == '1' then
  return {1, math.ceil(used)}
end
redis.call('INCRBY', KEYS[1], cost)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return {1, math.ceil(used + cost)}
"""


@dataclass(frozen=True)
class Rate:
    limit: int
    period: int  # seconds

    @classmethod
    def parse(cls, text: str) -> Rate:
        """'600/min', '30/m', '5000/day': DRF's spelling (the period's first letter counts)."""
        count, _, period = text.partition("/")
        try:
            return cls(int(count), _PERIODS[period.strip().lower()[:1]])
        except (KeyError, ValueError):
            raise ValueError(f"not a rate: {text!r} (say e.g. 600/min)") from None


def rate_for(scope: str) -> Rate | None:
    text = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"].get(scope)
    return _parsed(text) if text else None


@functools.lru_cache(maxsize=64)
def _parsed(text: str) -> Rate:
    """Parsed once per spelling, not on every request (keyed by the text, so a
    changed setting is read afresh)."""
    return Rate.parse(text)


def _redis_client() -> redis.Redis:
    """Redis for the counters, failing fast: one try within 0.2 s. redis-py's own
    retries (three, with back-off) made every request wait 4 to 6 s on a Redis
    that accepts connections but never answers."""
    url = settings.REDIS_URL
    timeouts = {"socket_timeout": 0.2, "socket_connect_timeout": 0.2,
                "retry": Retry(NoBackoff(), 0)}  # fmt: skip
    if url.startswith("redis+socket://"):  # kombu's spelling of the embedded socket
        return redis.Redis(unix_socket_path=url.removeprefix("redis+socket://"), **timeouts)
    return redis.Redis.from_url(url, **timeouts)


class Counters:
    """The sliding-window counters: Redis first, this process's memory when it is down."""

    def __init__(self) -> None:
        self._client: redis.Redis | None = None
        self._script = None
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._local: dict[str, int] = {}

    def take(
        self, key: str, cost: int, rate: Rate, now: float | None = None, *, dry: bool = False
    ) -> tuple[bool, float]:
        """Add ``cost`` to the client's window if it fits: (allowed, seconds to wait).
        ``dry``: only say whether it would fit (a lockout checked before the attempt
        it would count)."""
        now = time.time() if now is None else now
        window = int(now // rate.period)
        keys = [f"digits:rl:{key}:{window}", f"digits:rl:{key}:{window - 1}"]
        share = 1 - (now % rate.period) / rate.period
        args = (share, cost, rate.limit, 2 * rate.period, "1" if dry else "0")
        if now >= self._down_until:
            try:
                allowed, _ = self._redis_script()(keys=keys, args=args)
                return bool(allowed), self._wait(rate, now, allowed)
            except (redis.RedisError, OSError) as exc:
                self._down_until = now + RETRY_SECONDS
                logger.warning(
                    "Rate limits fall back to per-process counters for %ss: %s", RETRY_SECONDS, exc
                )
        return self._take_locally(keys, args, rate, now)

    def _redis_script(self):
        if self._script is None:
            self._client = _redis_client()
            self._script = self._client.register_script(_SCRIPT)
        return self._script

    def _take_locally(self, keys, args, rate: Rate, now: float) -> tuple[bool, float]:
        share, cost, limit, _, dry = args
        with self._lock:
            if len(self._local) > 50_000:  # old windows of clients long gone
                self._local.clear()
            used = self._local.get(keys[1], 0) * share + self._local.get(keys[0], 0)
            allowed = used + cost <= limit
            if allowed and dry == "0":
                self._local[keys[0]] = self._local.get(keys[0], 0) + cost
        return allowed, self._wait(rate, now, allowed)

    @staticmethod
    def _wait(rate: Rate, now: float, allowed) -> float:
        return 0.0 if allowed else max(1.0, rate.period - now % rate.period)

    def reset(self) -> None:
        """Forget everything (tests): the local counters, the Redis keys, the client."""
        with self._lock:
            self._local.clear()
        self._down_until = 0.0
        self._client = self._script = None
        try:
            client = _redis_client()
            keys = list(client.scan_iter("digits:rl:*", count=1000))
            if keys:
                client.delete(*keys)
        except (redis.RedisError, OSError):
            pass


counters = Counters()


def charge(request, scope: str, cost: int) -> None:
    """Charge ``cost`` more units of ``scope`` to the request's client, or raise 429.

    For requests whose price is known only once their body is read: each item
    of a batch, each quarter megapixel of an image.
    """
    rate = rate_for(scope)
    if rate is None or cost <= 0:
        return
    allowed, wait = counters.take(f"{scope}:{client_key(request)}", cost, rate)
    if not allowed:
        raise Throttled(wait=math.ceil(wait))


# A request is charged one unit against its rate limit per image, and one more per
# started quarter megapixel beyond the first (the page's canvas is one unit; a
# 1024×1024 upload, which costs about five times the work, is five).
PIXELS_PER_UNIT = 250_000


def units(pixels: int) -> int:
    """What an image of ``pixels`` costs against the rate limits."""
    return max(1, -(-pixels // PIXELS_PER_UNIT))


def charge_for_image(request, scope: str, pixels: int | None) -> None:
    """Charge a large image's extra units (the request itself paid one) before any
    pixel is decoded; a 429 if they do not fit. ``None``, an unreadable header,
    costs nothing more: preprocessing refuses it with its own message."""
    if pixels is not None:
        charge(request, scope, units(pixels) - 1)


# What decoding an image may cost before the request is charged for its CPU time
# as well: a canvas PNG takes about 1 ms, a 1024×1024 photo about 30 ms (and
# pays 5 units for its pixels already). Past it, one unit per CPU_PER_UNIT.
CPU_FREE_SECONDS = 0.05
CPU_PER_UNIT = 0.025


@contextlib.contextmanager
def charged_by_cpu(request, scope: str) -> Iterator[None]:
    """Charge the work done inside by the CPU time it took, once it turns out
    expensive: an image crafted to be slow pays for the seconds it cost, so one
    address cannot keep every worker busy on its unit's worth of requests. The
    work does not yield (decoding), so this thread's CPU time is the request's."""
    started = time.thread_time()
    try:
        yield
    finally:
        spent = time.thread_time() - started
        if spent > CPU_FREE_SECONDS:
            charge(request, scope, math.ceil((spent - CPU_FREE_SECONDS) / CPU_PER_UNIT))


class ScopedLimit(BaseThrottle):
    """DRF throttle: one unit of the view's ``throttle_scope`` per request."""

    def allow_request(self, request, view) -> bool:
        scope = getattr(view, "throttle_scope", None)
        rate = rate_for(scope) if scope else None
        if rate is None:
            return True
        allowed, self._wait = counters.take(f"{scope}:{client_key(request)}", 1, rate)
        return allowed

    def wait(self) -> float | None:
        return math.ceil(getattr(self, "_wait", 0)) or None
