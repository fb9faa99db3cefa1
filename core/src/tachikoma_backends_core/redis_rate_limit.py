"""One provider quota shared by many processes and machines, kept in Redis.

Why: every worker of an application (web workers, job queues, several machines) spends
the same API key's requests per minute, tokens per minute and concurrent requests. A
`RateLimiter` per process overshoots by the number of processes, and the provider
answers with 429s. `RedisRateLimiter` keeps the quota's state in the Redis the
deployment already runs, with the same semantics as `RateLimiter`:

* the same sliding 60-second window log for requests (+ burst) and tokens, and
  ``max_concurrent`` permits, updated atomically by Lua scripts that read Redis's own
  clock (``TIME``), so machines with skewed clocks still agree;
* one round trip per ``acquire`` when the request fits; a caller that must wait sleeps
  exactly until it would fit, or polls (``poll_interval``) when only a release can
  free it;
* first come, first served across processes: a waiter takes a ticket and only the first
  in line is admitted; a waiter that stops polling (a killed process) drops out of line
  after ``waiter_seconds``;
* concurrency slots are leases with a TTL (``lease_seconds``), renewed while the permit
  is held, so a process that dies frees its slots within one TTL;
* keys are named ``tachikoma:rl:{<name>:<key fingerprint>}:...``: the quota's name plus
  the first 16 hex digits of the API key's SHA-256, never the key; every key expires
  when the quota goes unused;
* `RedisAdaptiveRateLimiter` keeps the multiplier and the ``retry-after`` pause in Redis
  too: a 429 seen by one process halves the budgets of all of them.

Redis unreachable (or restarted): the limiter fails closed by default, raising
`RateLimiterUnavailableError` after at most ``timeout`` seconds, never hanging; with
``on_unavailable="local"`` it falls back to a per-process `RateLimiter` with the same
config, and tries Redis again ``retry_unavailable_after`` seconds later. Permits admitted
before a restart are released with a command that touches nothing after it, so no
permit is counted twice.

It uses redis-py's asyncio client (``pip install 'tachikoma-backends-core[redis]'``), so
it runs under asyncio. ``release`` and ``record_usage`` keep `Permit`'s synchronous
signatures: they send their command in a background task (a lost one is made good by
the lease TTL and the window's expiry); ``async with permit`` and `aclose` wait for them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio

from ._rate_budget import WINDOW_SECONDS, RateLimitConfig
from .errors import ConfigurationError, RateLimiterUnavailableError
from .plugin import REDIS_URL_ENV_VAR
from .rate_limit import (
    Allow,
    Permit,
    RateLimitDecision,
    RateLimiter,
    Wait,
    _check_fractions,
    _check_retry_after,
    _check_tokens,
    _oversized,
    _refuse_unfit,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = [
    "ON_UNAVAILABLE_ENV_VAR",
    "RATE_LIMIT_ENV_VAR",
    "REDIS_URL_ENV_VAR",
    "QuotaSnapshot",
    "RedisAdaptiveRateLimiter",
    "RedisPermit",
    "RedisRateLimiter",
    "quota_fingerprint",
    "rate_limiter_from_environment",
]

#: Budgets for the quota `BackendPlugin.create` makes from the environment, over the
#: plugin's own: ``"requests_per_minute=50,tokens_per_minute=30000,max_concurrent=4"``.
RATE_LIMIT_ENV_VAR = "TACHIKOMA_RATE_LIMIT"
#: ``fail`` (default) or ``local``: what that quota does while Redis is unavailable.
ON_UNAVAILABLE_ENV_VAR = "TACHIKOMA_REDIS_ON_UNAVAILABLE"

_log = logging.getLogger(__name__)
T = TypeVar("T")

# Every script starts from Redis's clock and the same pruning; KEYS are, in order:
# log (zset id -> admission time), tok (hash id -> tokens), total (string), leases
# (zset id -> lease expiry), queue (zset id -> ticket), waiters (zset id -> heartbeat
# expiry), seq (string), mult (string), pause (string).
# A script sets ``window`` (seconds) before it.
_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - window)
if #expired > 0 then
  local freed = 0
  for _, id in ipairs(expired) do
    freed = freed + tonumber(redis.call('HGET', KEYS[2], id) or '0')
    redis.call('HDEL', KEYS[2], id)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  redis.call('DECRBY', KEYS[3], freed)
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local dead = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now)
for _, id in ipairs(dead) do redis.call('ZREM', KEYS[5], id) end
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)
local mult = tonumber(redis.call('GET', KEYS[8]) or '1')
local function scaled(budget)
  if budget < 0 then return -1 end
  return math.max(1, math.floor(budget * mult + 1e-9))
end
"""

# ARGV: 1 id, 2 tokens, 3 requests/min (-1: none), 4 tokens/min (-1), 5 burst,
# 6 max concurrent (-1), 7 lease seconds, 8 waiter seconds, 9 window, 10 allow oversized
# (1/0), 11 key expiry ms, 12 dry run (1: check only).
# Returns {admitted 1/0, wait seconds (-1: until a release), multiplier, admission time}
# (numbers as text: Redis would truncate Lua numbers to integers).
_ACQUIRE = (
    "local window = tonumber(ARGV[9])"
    + _PRELUDE
    + """
local id, tokens, dry = ARGV[1], tonumber(ARGV[2]), ARGV[12] == '1'
local function done(admitted, wait, at)
  if not dry then
    for i = 1, 9 do redis.call('PEXPIRE', KEYS[i], ARGV[11]) end
  end
  return {admitted, tostring(wait), tostring(mult), tostring(at or now)}
end
local earlier = redis.call('ZSCORE', KEYS[1], id)
if earlier then return done(1, 0, earlier) end  -- a retried acquire
if not dry then
  if not redis.call('ZSCORE', KEYS[5], id) then
    redis.call('ZADD', KEYS[5], redis.call('INCR', KEYS[7]), id)
  end
  redis.call('ZADD', KEYS[6], now + tonumber(ARGV[8]), id)
  local first = redis.call('ZRANGE', KEYS[5], 0, 0)[1]
  if first ~= id then return done(0, -1) end
elseif redis.call('ZCARD', KEYS[5]) > 0 then
  return done(0, 0)
end
local wait = 0
local pause = tonumber(redis.call('GET', KEYS[9]) or '0')
if pause > now then wait = pause - now end
local rpm = tonumber(ARGV[3])
if rpm >= 0 then
  local limit = scaled(rpm) + math.floor(tonumber(ARGV[5]) * mult + 1e-9)
  local count = redis.call('ZCARD', KEYS[1])
  if count + 1 > limit then
    local oldest = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window - now)
  end
end
local tpm = tonumber(ARGV[4])
if tpm >= 0 then
  local budget = scaled(tpm)
  local total = tonumber(redis.call('GET', KEYS[3]) or '0')
  if tokens > budget then
    -- allowed only when oversized requests are, and then alone in the window
    if total > 0 then
      local entries = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
      wait = math.max(wait, tonumber(entries[2]) + window - now)
    end
  elseif total + tokens > budget then
    local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
    local freed = 0
    for i = 1, #entries, 2 do
      freed = freed + tonumber(redis.call('HGET', KEYS[2], entries[i]) or '0')
      if total - freed + tokens <= budget then
        wait = math.max(wait, tonumber(entries[i + 1]) + window - now)
        break
      end
    end
  end
end
if wait > 0 then return done(0, wait) end
local concurrent = tonumber(ARGV[6])
if concurrent >= 0 and redis.call('ZCARD', KEYS[4]) >= concurrent then
  return done(0, -1)
end
if dry then return done(1, 0) end
redis.call('ZADD', KEYS[1], now, id)
redis.call('HSET', KEYS[2], id, tokens)
redis.call('INCRBY', KEYS[3], tokens)
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[7]), id)
redis.call('ZREM', KEYS[5], id)
redis.call('ZREM', KEYS[6], id)
return done(1, 0)
"""
)

# ARGV: 1 id, 2 tokens. Only an entry still in the window is corrected.
_CORRECT = """
local old = redis.call('HGET', KEYS[2], ARGV[1])
if not old then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('INCRBY', KEYS[3], tonumber(ARGV[2]) - tonumber(old))
return 1
"""

# ARGV: 1 id, 2 lease seconds. Only a lease still held is renewed.
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
return redis.call('ZADD', KEYS[4], 'XX', 'CH', now + tonumber(ARGV[2]), ARGV[1])
"""

# ARGV 1: window. Returns {requests, tokens, in flight, waiting, multiplier, paused for}.
_SNAPSHOT = (
    "local window = tonumber(ARGV[1])"
    + _PRELUDE
    + """
local pause = tonumber(redis.call('GET', KEYS[9]) or '0')
return {redis.call('ZCARD', KEYS[1]), tonumber(redis.call('GET', KEYS[3]) or '0'),
        redis.call('ZCARD', KEYS[4]), redis.call('ZCARD', KEYS[5]), tostring(mult),
        tostring(math.max(0, pause - now))}
"""
)

# ARGV: 1 factor, 2 floor, 3 retry-after seconds (-1: none), 4 key expiry ms.
_BACK_OFF = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local mult = tonumber(redis.call('GET', KEYS[8]) or '1')
mult = math.max(tonumber(ARGV[2]), mult * tonumber(ARGV[1]))
redis.call('SET', KEYS[8], string.format('%.9f', mult), 'PX', ARGV[4])
local wait = tonumber(ARGV[3])
if wait >= 0 then
  local pause = tonumber(redis.call('GET', KEYS[9]) or '0')
  if pause < now + wait then redis.call('SET', KEYS[9], tostring(now + wait), 'PX', ARGV[4]) end
end
return tostring(mult)
"""

# ARGV: 1 step, 2 key expiry ms.
_RECOVER = """
local mult = tonumber(redis.call('GET', KEYS[8]) or '1')
if mult >= 1 then return '1' end
mult = math.min(1, mult + tonumber(ARGV[1]))
redis.call('SET', KEYS[8], string.format('%.9f', mult), 'PX', ARGV[2])
return tostring(mult)
"""

_KEY_PARTS = ("log", "tok", "total", "leases", "queue", "waiters", "seq", "mult", "pause")


def quota_fingerprint(api_key: str | None) -> str:
    """The first 16 hex digits of the key's SHA-256: tells quotas apart, reveals nothing."""
    if not api_key:
        return "nokey"
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class QuotaSnapshot:
    """What a shared quota holds right now, as Redis sees it.

    Attributes:
        window_requests: requests admitted in the last window.
        window_tokens: tokens they count for (estimates, or recorded usage).
        in_flight: leases held (permits not released and not expired).
        waiting: acquirers in line, in every process.
        multiplier: the fraction of the budgets in force (adaptive limiters).
        paused_for: seconds left of a ``retry-after`` pause (0 when none).
    """

    window_requests: int
    window_tokens: int
    in_flight: int
    waiting: int
    multiplier: float
    paused_for: float


class RedisPermit:
    """The right to send one request, held as a lease in Redis; see `Permit`.

    The lease is renewed in the background while the permit is held. ``release`` and
    ``record_usage`` return at once and send their command in the background; ``async
    with permit`` waits for the release to reach Redis.
    """

    __slots__ = ("_id", "_limiter", "_released", "_renewal", "_tokens", "admitted_at")

    def __init__(
        self, limiter: RedisRateLimiter, permit_id: str, tokens: int, admitted_at: float
    ) -> None:
        #: When Redis admitted the request, by Redis's clock (Unix seconds).
        self.admitted_at = admitted_at
        self._limiter = limiter
        self._id = permit_id
        self._tokens = tokens
        self._released = False
        self._renewal = limiter._start_renewal(permit_id)

    @property
    def tokens(self) -> int:
        """The tokens this request counts for: the estimate, or the recorded usage."""
        return self._tokens

    @property
    def released(self) -> bool:
        return self._released

    def release(self) -> None:
        """Give the concurrency slot back (in the background). Calling it again does nothing."""
        if self._stop_holding():
            self._limiter._in_background(self._limiter._release, self._id)

    def record_usage(self, actual_tokens: int) -> None:
        """Count ``actual_tokens`` for this request instead of the estimate."""
        _check_tokens(actual_tokens, "actual_tokens")
        self._tokens = actual_tokens
        self._limiter._in_background(self._limiter._correct, self._id, actual_tokens)

    async def __aenter__(self) -> RedisPermit:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._stop_holding():
            await self._limiter._quietly(self._limiter._release(self._id))

    def _stop_holding(self) -> bool:
        """Mark the permit released and stop renewing its lease; whether it was held."""
        if self._released:
            return False
        self._released = True
        self._renewal.cancel()
        return True

    def __repr__(self) -> str:
        return f"RedisPermit(tokens={self._tokens}, released={self._released})"


class RedisRateLimiter:
    """A `RateLimiter` whose state lives in Redis, shared by every process that names
    the same quota; see the module docstring.

    Args:
        config: the budgets, as for `RateLimiter`.
        url: the Redis URL (``redis://host:6379/0``); or pass ``redis``, a client.
        name: the quota's name (say, the plugin's); with ``api_key``'s fingerprint it
            names the keys.
        api_key: the API key whose quota this is (only its fingerprint is used).
        lease_seconds: how long a concurrency slot outlives a process that died.
        waiter_seconds: how long a waiter that stopped polling keeps its place.
        poll_interval: how often a waiter blocked by concurrency, or behind another
            waiter, asks again.
        timeout: seconds a call to Redis may take before the limiter gives up on it.
        on_unavailable: ``"fail"`` (default) raises `RateLimiterUnavailableError`;
            ``"local"`` admits through a per-process `RateLimiter` meanwhile.
        retry_unavailable_after: with ``"local"``, seconds before Redis is tried again.
        window_seconds: the window's length; 60 (the providers' minute) unless a test
            needs a shorter one.
    """

    def __init__(
        self,
        config: RateLimitConfig,
        *,
        url: str | None = None,
        redis: Redis | None = None,
        name: str = "default",
        api_key: str | None = None,
        lease_seconds: float = 30.0,
        waiter_seconds: float = 10.0,
        poll_interval: float = 0.05,
        timeout: float = 2.0,
        on_unavailable: Literal["fail", "local"] = "fail",
        retry_unavailable_after: float = 5.0,
        window_seconds: float = WINDOW_SECONDS,
    ) -> None:
        if (url is None) == (redis is None):
            raise ConfigurationError("give exactly one of url and redis (a client)", field="url")
        for field, value in (
            ("lease_seconds", lease_seconds),
            ("waiter_seconds", waiter_seconds),
            ("poll_interval", poll_interval),
            ("timeout", timeout),
            ("window_seconds", window_seconds),
        ):
            if not 0 < value < math.inf:
                raise ConfigurationError(
                    f"{field} must be a positive number, got {value!r}", field=field
                )
        if on_unavailable not in ("fail", "local"):
            raise ConfigurationError(
                f"on_unavailable must be 'fail' or 'local', got {on_unavailable!r}",
                field="on_unavailable",
            )
        if redis is None:
            redis = _client(url or "", timeout)
        self._redis = redis
        self._owns_client = url is not None
        self._config = config
        self._name = name
        prefix = f"tachikoma:rl:{{{name}:{quota_fingerprint(api_key)}}}"
        self._keys = [f"{prefix}:{part}" for part in _KEY_PARTS]
        self._lease_seconds = lease_seconds
        self._waiter_seconds = waiter_seconds
        self._poll_interval = poll_interval
        self._timeout = timeout
        self._window = window_seconds
        self._on_unavailable = on_unavailable
        self._retry_unavailable_after = retry_unavailable_after
        self._local_until = 0.0
        self._local: RateLimiter | None = None
        self._tasks: set[asyncio.Task[Any]] = set()  # commands sent in the background
        self._renewals: set[asyncio.Task[Any]] = set()  # one per permit held
        # Idle keys expire after a window and a lease, with room to spare.
        self._expire_ms = int((window_seconds + lease_seconds) * 1000) + 10_000
        self._acquire_script: AsyncScript = redis.register_script(_ACQUIRE)
        self._correct_script: AsyncScript = redis.register_script(_CORRECT)
        self._renew_script: AsyncScript = redis.register_script(_RENEW)
        self._snapshot_script: AsyncScript = redis.register_script(_SNAPSHOT)
        self.multiplier = 1.0  # as of the last answer from Redis

    @property
    def config(self) -> RateLimitConfig:
        return self._config

    @property
    def keys_prefix(self) -> str:
        """The prefix of every key this quota uses in Redis."""
        return self._keys[0].rsplit(":", 1)[0]

    async def check(self, tokens: int = 0) -> RateLimitDecision:
        """Whether a request of ``tokens`` would be admitted now, without admitting it.

        Like `RateLimiter.check`; when others wait in line, ``Wait(0.0)`` (they go first).
        """
        _check_tokens(tokens, "tokens")
        if _oversized(self._config, tokens):
            return Wait(math.inf)
        admitted, wait, _ = await self._ask(uuid.uuid4().hex, tokens, dry=True)
        if admitted:
            return Allow()
        return Wait(max(wait, 0.0))

    async def acquire(self, tokens: int = 0) -> RedisPermit | Permit:
        """Wait until a request of ``tokens`` fits the shared quota, then admit it.

        Raises:
            InvalidRequestError: at once, if ``tokens`` is negative or can never fit.
            RateLimiterUnavailableError: Redis did not answer within ``timeout``
                (unless ``on_unavailable="local"``).
        """
        _refuse_unfit(self._config, tokens)
        if time.monotonic() < self._local_until:
            return await self._local_limiter().acquire(tokens)
        permit_id = uuid.uuid4().hex
        admitted = False
        try:
            while True:
                try:
                    admitted, wait, at = await self._ask(permit_id, tokens, dry=False)
                except RateLimiterUnavailableError:
                    if self._on_unavailable == "fail":
                        raise
                    self._local_until = time.monotonic() + self._retry_unavailable_after
                    _log.warning(
                        "shared rate limit %r: Redis is unavailable; admitting through a "
                        "per-process limiter for %g s",
                        self._name,
                        self._retry_unavailable_after,
                    )
                    return await self._local_limiter().acquire(tokens)
                if admitted:
                    return RedisPermit(self, permit_id, tokens, at)
                # Ask again before the line forgets us (a waiter silent for
                # waiter_seconds is taken for dead).
                pause = self._poll_interval if wait < 0 else wait
                await asyncio.sleep(min(pause, self._waiter_seconds / 2))
        except BaseException:
            if not admitted:  # leave the line; an admission the reply lost is let go too
                self._in_background(self._abandon, permit_id)
            raise

    async def snapshot(self) -> QuotaSnapshot:
        """What the quota holds now, in every process (one round trip)."""
        reply = await self._call(self._snapshot_script(keys=self._keys, args=[self._window]))
        requests, tokens, in_flight, waiting, multiplier, paused = reply
        return QuotaSnapshot(
            int(requests),
            int(tokens),
            int(in_flight),
            int(waiting),
            float(multiplier),
            float(paused),
        )

    async def reset(self) -> None:
        """Forget the quota's state in Redis (every process's): for tests and operators."""
        await self._call(self._redis.delete(*self._keys))

    async def aclose(self) -> None:
        """Wait for background commands (releases, corrections), stop renewing the
        leases of permits still held (they expire), then close the client if the limiter
        made it from a URL."""
        for renewal in list(self._renewals):
            renewal.cancel()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._owns_client:
            await self._redis.aclose()

    async def __aenter__(self: _L) -> _L:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r}, config={self._config!r})"

    # -- Redis calls ------------------------------------------------------------------

    async def _ask(self, permit_id: str, tokens: int, *, dry: bool) -> tuple[bool, float, float]:
        """``(admitted, seconds to wait (-1: until a release), admission time)``."""
        config = self._config
        args: list[str | int | float] = [
            permit_id,
            tokens,
            _or_none(config.requests_per_minute),
            _or_none(config.tokens_per_minute),
            config.burst_allowance,
            _or_none(config.max_concurrent),
            self._lease_seconds,
            self._waiter_seconds,
            self._window,
            int(config.allow_oversized),
            self._expire_ms,
            int(dry),
        ]
        admitted, wait, multiplier, at = await self._call(
            self._acquire_script(keys=self._keys, args=args)
        )
        self.multiplier = float(multiplier)
        return bool(admitted), float(wait), float(at)

    async def _release(self, permit_id: str) -> None:
        await self._call(self._redis.zrem(self._keys[3], permit_id))

    async def _correct(self, permit_id: str, tokens: int) -> None:
        await self._call(self._correct_script(keys=self._keys, args=[permit_id, tokens]))

    async def _abandon(self, permit_id: str) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrem(self._keys[3], permit_id)
        pipe.zrem(self._keys[4], permit_id)
        pipe.zrem(self._keys[5], permit_id)
        await self._call(pipe.execute())

    def _start_renewal(self, permit_id: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._renew_while_held(permit_id))
        self._renewals.add(task)
        task.add_done_callback(self._renewals.discard)
        return task

    async def _renew_while_held(self, permit_id: str) -> None:
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            await self._quietly(self._renew(permit_id))

    async def _renew(self, permit_id: str) -> None:
        await self._call(self._renew_script(keys=self._keys, args=[permit_id, self._lease_seconds]))

    async def _call(self, command: Awaitable[T]) -> T:
        """``command``'s reply, or `RateLimiterUnavailableError` within ``timeout``."""
        from redis.exceptions import RedisError

        try:
            with anyio.fail_after(self._timeout):
                return await command
        except (RedisError, OSError, TimeoutError) as error:
            raise RateLimiterUnavailableError(
                f"shared rate limit {self._name!r}: Redis did not answer within "
                f"{self._timeout:g} s ({type(error).__name__}: {error})",
                provider="redis",
            ) from None

    async def _quietly(self, command: Awaitable[Any]) -> None:
        """Await ``command`` (a method that calls Redis through `_call`), logging
        instead of raising when Redis is unavailable."""
        try:
            await command
        except RateLimiterUnavailableError as error:
            # The lease TTL and the window's expiry make good what is lost here.
            _log.debug("%s", error.message)

    def _in_background(self, send: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``send(*args)`` in a task, quietly (made only when the task runs, so a task
        cancelled before it starts leaves no coroutine unawaited)."""

        async def run() -> None:
            await self._quietly(send(*args))

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _local_limiter(self) -> RateLimiter:
        if self._local is None:
            self._local = RateLimiter(self._config)
        return self._local


_L = TypeVar("_L", bound=RedisRateLimiter)


class RedisAdaptiveRateLimiter(RedisRateLimiter):
    """A `RedisRateLimiter` that backs off for every process when one sees a 429.

    As `AdaptiveRateLimiter` (multiplicative decrease by ``decrease_factor`` down to
    ``min_multiplier``, additive recovery by ``recovery_step``, a pause for the
    provider's ``retry-after``), with the multiplier and the pause kept in Redis.
    """

    def __init__(
        self,
        config: RateLimitConfig,
        *,
        decrease_factor: float = 0.5,
        recovery_step: float = 0.05,
        min_multiplier: float = 0.1,
        **options: Any,
    ) -> None:
        _check_fractions(
            decrease_factor=decrease_factor,
            recovery_step=recovery_step,
            min_multiplier=min_multiplier,
        )
        super().__init__(config, **options)
        self._decrease_factor = decrease_factor
        self._recovery_step = recovery_step
        self._min_multiplier = min_multiplier
        self._back_off_script: AsyncScript = self._redis.register_script(_BACK_OFF)
        self._recover_script: AsyncScript = self._redis.register_script(_RECOVER)

    async def record_rate_limit(self, retry_after: float | None = None) -> None:
        """The provider refused a request (429): shrink every process's budgets, and
        pause them all for ``retry_after`` seconds if given."""
        _check_retry_after(retry_after)
        wait = -1.0 if retry_after is None else retry_after
        args = [self._decrease_factor, self._min_multiplier, wait, self._expire_ms]
        try:
            multiplier = await self._call(self._back_off_script(keys=self._keys, args=args))
        except RateLimiterUnavailableError:
            if self._on_unavailable == "fail":
                raise
            return
        self.multiplier = float(multiplier)

    def record_success(self) -> None:
        """A request succeeded: recover ``recovery_step`` of the budgets (in the
        background, and only while they are reduced)."""
        if self.multiplier < 1.0:
            self._in_background(self._recover)

    async def _recover(self) -> None:
        args = [self._recovery_step, self._expire_ms]
        self.multiplier = float(await self._call(self._recover_script(keys=self._keys, args=args)))


def rate_limiter_from_environment(
    name: str, default: Callable[[], RateLimitConfig] | None, api_key: str | None
) -> RedisAdaptiveRateLimiter:
    """The shared quota the environment asks for, for plugin ``name`` and ``api_key``.

    ``TACHIKOMA_REDIS_URL`` says where; the budgets are ``TACHIKOMA_RATE_LIMIT``'s
    (``key=value`` pairs of `RateLimitConfig`), else the plugin's ``default``;
    ``TACHIKOMA_REDIS_ON_UNAVAILABLE`` may say ``local``.

    Raises:
        ConfigurationError: no budgets (the plugin declares none and the environment
            gives none), or a malformed setting.
    """
    url = os.environ[REDIS_URL_ENV_VAR]
    spec = os.environ.get(RATE_LIMIT_ENV_VAR, "").strip()
    if spec:
        config = _parse_budgets(spec)
    elif default is not None:
        config = default()
    else:
        raise ConfigurationError(
            f"{REDIS_URL_ENV_VAR} asks for a shared quota, but plugin {name!r} declares no "
            f"default budgets: set {RATE_LIMIT_ENV_VAR} (e.g. "
            "'requests_per_minute=50,tokens_per_minute=30000')",
            field=RATE_LIMIT_ENV_VAR,
        )
    on_unavailable = os.environ.get(ON_UNAVAILABLE_ENV_VAR, "fail").strip() or "fail"
    if on_unavailable not in ("fail", "local"):
        raise ConfigurationError(
            f"{ON_UNAVAILABLE_ENV_VAR} must be 'fail' or 'local', got {on_unavailable!r}",
            field=ON_UNAVAILABLE_ENV_VAR,
        )
    return RedisAdaptiveRateLimiter(
        config,
        url=url,
        name=name,
        api_key=api_key,
        on_unavailable="local" if on_unavailable == "local" else "fail",
    )


def _parse_budgets(spec: str) -> RateLimitConfig:
    settings: dict[str, Any] = {}
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in RateLimitConfig.model_fields:
            raise ConfigurationError(
                f"{RATE_LIMIT_ENV_VAR}: {item.strip()!r} is not <setting>=<value>, with a "
                f"setting among {', '.join(RateLimitConfig.model_fields)}",
                field=RATE_LIMIT_ENV_VAR,
            )
        if key == "allow_oversized":
            settings[key] = value.lower() in ("1", "true", "yes")
        else:
            try:
                settings[key] = int(value)
            except ValueError:
                raise ConfigurationError(
                    f"{RATE_LIMIT_ENV_VAR}: {key} must be a whole number, got {value!r}",
                    field=RATE_LIMIT_ENV_VAR,
                ) from None
    return RateLimitConfig(**settings)


def _client(url: str, timeout: float) -> Redis:
    try:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
    except ImportError:
        raise ConfigurationError(
            "a shared rate limit needs redis-py: pip install 'tachikoma-backends-core[redis]'",
            field="url",
        ) from None
    # No retries inside the client: a call either answers within the timeout or fails.
    client: Redis = Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )
    return client


def _or_none(value: int | None) -> int:
    return -1 if value is None else value
