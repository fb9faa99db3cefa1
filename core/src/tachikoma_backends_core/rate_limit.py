"""Client-side rate limiting: stay inside a provider's per-minute budgets, fairly.

Why: a request the provider refuses (HTTP 429) costs a round trip and a back-off that is
often longer than waiting our turn would have been. So a `RateLimiter` admits a request
only when it fits, and makes the caller wait until it does.

The algorithm is a sliding-window log (arithmetic in ``_rate_budget``). Each admission is
logged with its time and token estimate and counts for exactly 60 seconds of the
limiter's clock. A request is admitted when, counting it, the log holds at most
``requests_per_minute + burst_allowance`` requests and ``tokens_per_minute`` tokens, and
fewer than ``max_concurrent`` permits are held. The log is sorted by time, so the wait is
exact: walk from the oldest entry until enough have expired. Unlike a fixed window (twice
the budget across a boundary) or a token bucket (a full burst after any pause), a sliding
log never exceeds the budget in *any* 60-second window.

Fairness is strict first come, first served. Only the first in line watches the clock: it
sleeps until its request fits (or, if only the concurrency limit blocks, until a permit is
released) while everyone behind it waits for their turn, so a small request never
overtakes a big one that asked first. Releasing a permit, correcting its tokens, or a
change of limits wakes the first in line to look again.

`AdaptiveRateLimiter` shrinks the budgets when the provider says 429 anyway (another
client may share the key), grows them back as requests succeed, and pauses everyone for a
``retry-after``. Time is read and slept through a `Clock`, so tests need no real waiting.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol, TypeAlias

import anyio

from ._rate_budget import (
    Limits,
    RateLimitConfig,
    RateLimiterStats,
    WindowEntry,
    WindowLog,
    delay_until,
    scale,
)
from .clock import Clock, SystemClock
from .errors import ConfigurationError, InvalidRequestError

__all__ = [
    "AdaptiveRateLimiter",
    "Allow",
    "Permit",
    "RateLimitConfig",
    "RateLimitDecision",
    "RateLimiter",
    "RateLimiterStats",
    "RateLimiting",
    "Wait",
]


@dataclass(frozen=True, slots=True)
class Allow:
    """The request fits now: ``acquire`` would not wait."""


@dataclass(frozen=True, slots=True)
class Wait:
    """The request does not fit now.

    Attributes:
        delay: seconds until it would fit the request and token budgets, counting the
            acquirers already waiting ahead of it. ``math.inf`` when it can never fit;
            ``0.0`` when only the concurrency limit blocks: nobody can know when a permit
            will be released, so ``0.0`` is the only true lower bound (``acquire`` waits
            for exactly that release).
    """

    delay: float


RateLimitDecision: TypeAlias = Allow | Wait


class Permit:
    """The right to send one request: holds a concurrency slot until released.

    Release it with ``release()`` (idempotent) or, better, by using it as an async
    context manager: a permit never released holds its slot for good. ``record_usage``
    replaces the token estimate with the real count once the response says it, so the
    window reflects what the provider counted; the request keeps its original place
    (admission time) in the window.

    Examples:
        >>> import anyio
        >>> async def main() -> None:
        ...     limiter = RateLimiter(RateLimitConfig(tokens_per_minute=1_000))
        ...     async with await limiter.acquire(400) as permit:
        ...         permit.record_usage(250)
        ...     print(permit.tokens, permit.released, limiter.window_tokens())
        >>> anyio.run(main)
        250 True 250
    """

    __slots__ = ("_entry", "_limiter", "_released")

    def __init__(self, limiter: RateLimiter, entry: WindowEntry) -> None:
        self._limiter = limiter
        self._entry = entry
        self._released = False

    @property
    def tokens(self) -> int:
        """The tokens this request counts for: the estimate, or the recorded usage."""
        return self._entry.tokens

    @property
    def released(self) -> bool:
        return self._released

    def release(self) -> None:
        """Give the concurrency slot back. Calling it again does nothing."""
        if not self._released:
            self._released = True
            self._limiter._release()

    def record_usage(self, actual_tokens: int) -> None:
        """Count ``actual_tokens`` for this request instead of the estimate."""
        _check_tokens(actual_tokens, "actual_tokens")
        self._limiter._correct(self._entry, actual_tokens)

    async def __aenter__(self) -> Permit:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Permit(tokens={self.tokens}, released={self._released})"


class PermitLike(Protocol):
    """What a limiter's permit offers the code that holds it (`Permit`, `RedisPermit`)."""

    @property
    def tokens(self) -> int: ...

    def release(self) -> None: ...

    def record_usage(self, actual_tokens: int) -> None: ...


class RateLimiting(Protocol):
    """What a `ManagedBackend` needs of a rate limiter: `RateLimiter` and its adaptive
    variant in one process, `RedisRateLimiter` and its adaptive variant across many.

    An adaptive limiter also has ``record_rate_limit(retry_after)`` (awaited after a 429)
    and ``record_success()``; the managed backend calls them when they are there.
    """

    async def acquire(self, tokens: int = 0) -> PermitLike: ...


class AdaptiveRateLimiting(RateLimiting, Protocol):
    """A `RateLimiting` that learns from the provider's answers."""

    async def record_rate_limit(self, retry_after: float | None = None) -> None: ...

    def record_success(self) -> None: ...


class _Waiter:
    __slots__ = ("scope", "tokens")

    def __init__(self, tokens: int) -> None:
        self.tokens = tokens
        self.scope: anyio.CancelScope | None = None


class RateLimiter:
    """Admits requests within a `RateLimitConfig`, first come first served.

    One limiter per budget: share it between every task that spends the same provider
    key and model. It lives in one event loop (asyncio or trio) and is not thread-safe.

    Observability: ``in_flight`` (permits held), ``waiting`` (acquirers in line),
    ``window_requests()`` and ``window_tokens()`` (what the current 60-second window
    holds).

    Examples:
        >>> import anyio
        >>> from tachikoma_backends_core.clock import FakeClock
        >>> async def main() -> None:
        ...     limiter = RateLimiter(RateLimitConfig(requests_per_minute=2), clock=FakeClock())
        ...     for _ in range(2):
        ...         (await limiter.acquire()).release()
        ...     print(await limiter.check())
        >>> anyio.run(main)
        Wait(delay=60.0)
    """

    def __init__(self, config: RateLimitConfig, *, clock: Clock | None = None) -> None:
        self._config = config
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._log = WindowLog()
        self._queue: deque[_Waiter] = deque()
        self._in_flight = 0
        self._paused_until: float | None = None
        self._limits = Limits.scaled(config)

    @property
    def config(self) -> RateLimitConfig:
        return self._config

    @property
    def in_flight(self) -> int:
        """Permits acquired and not yet released."""
        return self._in_flight

    @property
    def waiting(self) -> int:
        """Tasks waiting in ``acquire``."""
        return len(self._queue)

    def window_requests(self) -> int:
        """Requests admitted in the last 60 seconds."""
        self._log.prune(self._clock.now())
        return self._log.requests

    def window_tokens(self) -> int:
        """Tokens counted in the last 60 seconds (estimates, or recorded usage)."""
        self._log.prune(self._clock.now())
        return self._log.tokens

    async def check(self, tokens: int = 0) -> RateLimitDecision:
        """Whether a request of ``tokens`` would be admitted now, without admitting it.

        Returns `Allow` or `Wait` with the seconds until the request would fit, counting
        the acquirers already in line; see `Wait` for ``inf`` and ``0.0``.
        """
        _check_tokens(tokens, "tokens")
        await anyio.lowlevel.checkpoint()
        if _oversized(self._config, tokens):
            return Wait(math.inf)
        now = self._clock.now()
        self._log.prune(now)
        queued = [waiter.tokens for waiter in self._queue]
        when = self._log.admission_time(self._start(now), queued, tokens, self._limits)
        if when > now:
            return Wait(delay_until(now, when))
        limit = self._config.max_concurrent
        if limit is not None and self._in_flight + len(queued) >= limit:
            return Wait(0.0)
        return Allow()

    async def acquire(self, tokens: int = 0) -> Permit:
        """Wait until a request of ``tokens`` fits, then admit it and return its permit.

        Raises:
            InvalidRequestError: at once, if ``tokens`` is negative or can never fit
                (above ``tokens_per_minute`` without ``allow_oversized``).
        """
        _refuse_unfit(self._config, tokens)
        await anyio.lowlevel.checkpoint_if_cancelled()
        now = self._clock.now()
        if not self._queue and self._ready(tokens, now):
            permit = self._admit(tokens, now)
            try:
                await anyio.lowlevel.cancel_shielded_checkpoint()
            except BaseException:
                permit.release()
                raise
            return permit
        return await self._wait_in_line(tokens)

    async def _wait_in_line(self, tokens: int) -> Permit:
        waiter = _Waiter(tokens)
        self._queue.append(waiter)
        try:
            while True:
                delay = math.inf  # behind someone, or blocked by concurrency: wait for a poke
                if self._queue[0] is waiter:
                    now = self._clock.now()
                    self._log.prune(now)
                    when = self._log.admission_time(self._start(now), (), tokens, self._limits)
                    if when > now:
                        delay = delay_until(now, when)
                    elif self._slot_free():
                        self._queue.popleft()
                        permit = self._admit(tokens, now)
                        self._poke_first()
                        return permit
                with anyio.CancelScope() as waiter.scope:
                    if delay == math.inf:
                        await anyio.sleep_forever()
                    else:
                        await self._clock.sleep(delay)
                waiter.scope = None
        except BaseException:
            first = self._queue[0] is waiter
            self._queue.remove(waiter)
            if first:
                self._poke_first()
            raise

    def _start(self, now: float) -> float:
        paused_until = self._paused_until
        return now if paused_until is None or paused_until <= now else paused_until

    def _slot_free(self) -> bool:
        limit = self._config.max_concurrent
        return limit is None or self._in_flight < limit

    def _ready(self, tokens: int, now: float) -> bool:
        if not self._slot_free() or self._start(now) > now:
            return False
        self._log.prune(now)
        return self._log.fits_now(tokens, self._limits)

    def _admit(self, tokens: int, now: float) -> Permit:
        self._in_flight += 1
        return Permit(self, self._log.add(now, tokens))

    def _poke_first(self) -> None:
        """Wake the first in line to look again: something it waits for may have changed."""
        if self._queue:
            scope = self._queue[0].scope
            if scope is not None:
                scope.cancel()

    def _release(self) -> None:
        self._in_flight -= 1
        self._poke_first()

    def _correct(self, entry: WindowEntry, tokens: int) -> None:
        self._log.correct(entry, tokens)
        self._poke_first()

    def _set_limits(self, limits: Limits) -> None:
        self._limits = limits
        self._poke_first()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(in_flight={self._in_flight}, waiting={len(self._queue)}, "
            f"config={self._config!r})"
        )


class AdaptiveRateLimiter(RateLimiter):
    """A `RateLimiter` that backs off when the provider rate-limits us anyway.

    The configured budgets are a ceiling. Each 429 multiplies the budgets by
    ``decrease_factor`` (never below ``min_multiplier``) and, when the provider said how
    long, pauses every acquirer for that long; each success adds ``recovery_step`` back,
    up to 1.0 (additive increase, multiplicative decrease, as TCP does, so a shared key
    settles near what is really available). Effective budgets are the configured ones
    times the multiplier, rounded down, and at least 1. A request bigger than the reduced
    token budget but within the configured one is admitted alone rather than rejected.

    Examples:
        >>> import anyio
        >>> from tachikoma_backends_core.clock import FakeClock
        >>> async def main() -> None:
        ...     limiter = AdaptiveRateLimiter(RateLimitConfig.claude_default(), clock=FakeClock())
        ...     await limiter.record_rate_limit(retry_after=20.0)
        ...     stats = limiter.stats()
        ...     print(stats.multiplier, stats.requests_per_minute, await limiter.check())
        >>> anyio.run(main)
        0.5 25 Wait(delay=20.0)
    """

    def __init__(
        self,
        config: RateLimitConfig,
        *,
        clock: Clock | None = None,
        decrease_factor: float = 0.5,
        recovery_step: float = 0.05,
        min_multiplier: float = 0.1,
    ) -> None:
        _check_fractions(
            decrease_factor=decrease_factor,
            recovery_step=recovery_step,
            min_multiplier=min_multiplier,
        )
        super().__init__(config, clock=clock)
        self._decrease_factor = decrease_factor
        self._recovery_step = recovery_step
        self._min_multiplier = min_multiplier
        self._multiplier = 1.0
        self._rate_limits = 0
        self._successes = 0

    @property
    def multiplier(self) -> float:
        return self._multiplier

    def record_success(self) -> None:
        """A request succeeded: recover ``recovery_step`` of the budgets (up to all of them)."""
        self._successes += 1
        if self._multiplier < 1.0:
            self._set_multiplier(min(1.0, self._multiplier + self._recovery_step))

    async def record_rate_limit(self, retry_after: float | None = None) -> None:
        """The provider refused a request (429): shrink the budgets, and pause if told to.

        Args:
            retry_after: seconds the provider asked us to wait (``RateLimitError``'s
                ``retry_after``). Nobody is admitted before then, whatever the budgets.
        """
        _check_retry_after(retry_after)
        self._rate_limits += 1
        if retry_after is not None:
            until = self._clock.now() + retry_after
            if self._paused_until is None or self._paused_until < until:
                self._paused_until = until
        decreased = max(self._min_multiplier, self._multiplier * self._decrease_factor)
        self._set_multiplier(decreased)
        await anyio.lowlevel.checkpoint()

    def stats(self) -> RateLimiterStats:
        """The multiplier, effective budgets, counters and current usage."""
        now = self._clock.now()
        paused = self._paused_until if self._start(now) > now else None
        per_minute = scale(self._config.requests_per_minute, self._multiplier)
        in_window = self._limits.requests
        return RateLimiterStats(
            multiplier=self._multiplier,
            requests_per_minute=per_minute,
            tokens_per_minute=self._limits.tokens,
            burst_allowance=0
            if in_window is None or per_minute is None
            else in_window - per_minute,
            rate_limits=self._rate_limits,
            successes=self._successes,
            paused_until=paused,
            in_flight=self.in_flight,
            waiting=self.waiting,
            window_requests=self.window_requests(),
            window_tokens=self.window_tokens(),
        )

    def _set_multiplier(self, multiplier: float) -> None:
        # Rounded so that repeated steps land on 0.55, 0.6, ... rather than 0.6000000000000001.
        self._multiplier = round(multiplier, 9)
        self._set_limits(Limits.scaled(self._config, self._multiplier))


def _oversized(config: RateLimitConfig, tokens: int) -> bool:
    """Whether a request of ``tokens`` can never fit ``config``'s token budget."""
    budget = config.tokens_per_minute
    return budget is not None and tokens > budget and not config.allow_oversized


def _refuse_unfit(config: RateLimitConfig, tokens: int) -> None:
    """Raise `InvalidRequestError` for a token count no limiter of ``config`` can admit."""
    _check_tokens(tokens, "tokens")
    if _oversized(config, tokens):
        raise InvalidRequestError(
            f"a request estimated at {tokens} tokens can never fit the budget of "
            f"{config.tokens_per_minute} tokens per minute: split the request, "
            "raise tokens_per_minute, or set allow_oversized=True to admit it alone",
            field="tokens",
        )


def _check_fractions(**values: float) -> None:
    """An adaptive limiter's factors are fractions in (0, 1]."""
    for name, value in values.items():
        if not 0.0 < value <= 1.0:
            raise ConfigurationError(
                f"{name} must be a number in (0, 1], got {value!r}", field=name
            )


def _check_retry_after(retry_after: float | None) -> None:
    if retry_after is not None and not 0.0 <= retry_after < math.inf:
        raise InvalidRequestError(
            f"retry_after must be a finite number of seconds >= 0, got {retry_after!r}",
            field="retry_after",
        )


def _check_tokens(value: int, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequestError(
            f"{field} must be a whole number of tokens >= 0, got {value!r}", field=field
        )
