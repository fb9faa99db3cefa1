"""The budget a rate limiter enforces, and the arithmetic of the window that spends it.

`RateLimitConfig` says what may be spent per minute and `RateLimiterStats` reports on it
(both public, re-exported by `tachikoma_backends_core.rate_limit`); `WindowLog` records
what was spent; `earliest_start` says when the next request fits. Everything here is pure
and synchronous (no clock, no event loop), so the limiter module can be about waiting and
fairness while this one is about numbers.

The window is the last `WINDOW_SECONDS` of the limiter's clock. An admission at time ``t``
is logged with ``expires_at = t + WINDOW_SECONDS`` and counts while ``now < expires_at``.
Entries are appended in admission order, so the log is sorted by expiry: the oldest entry
is always the next to leave, and "how long until this fits?" is a walk from the left.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, ClassVar

from pydantic import Field

from ._validation import ValidatedModel
from .errors import ConfigurationError, InvalidRequestError

__all__ = [
    "WINDOW_SECONDS",
    "Limits",
    "RateLimitConfig",
    "RateLimiterStats",
    "WindowEntry",
    "WindowLog",
    "delay_until",
    "earliest_start",
    "scale",
]

WINDOW_SECONDS = 60.0

_PositiveInt = Annotated[int, Field(gt=0, strict=True)]


class RateLimitConfig(ValidatedModel):
    """The budgets a `RateLimiter` enforces; ``None`` means unlimited.

    Attributes:
        requests_per_minute: requests admitted in any 60-second window (plus the burst).
        tokens_per_minute: tokens admitted in any 60-second window, counted as the
            estimate given to ``acquire`` until ``Permit.record_usage`` corrects it.
        max_concurrent: permits held at the same time (requests in flight).
        burst_allowance: extra requests allowed in a window on top of
            ``requests_per_minute``, for providers whose buckets tolerate short bursts.
        allow_oversized: admit a request larger than ``tokens_per_minute`` alone (when no
            other tokens are in the window) instead of rejecting it.

    The provider defaults are published tier-1 limits (the lowest paid tier): safe for a
    new account, conservative for others. Check your console and pass your own numbers.
    Sources: https://docs.anthropic.com/en/api/rate-limits (Claude Sonnet 4.x, tier 1:
    50 RPM, 30,000 input and 8,000 output tokens per minute); OpenAI's tier-1 table for
    gpt-4o (500 RPM, 30,000 TPM) as quoted in
    https://community.openai.com/t/gpt-4o-rate-limits-being-30k-tpm-and-90k-tpd-does-that-mean-i-can-only-do-90k-tokens-in-a-day/1028595
    (OpenAI's own model page could not be checked); https://docs.ollama.com/faq
    (``OLLAMA_NUM_PARALLEL``, "default 1"). docs/concepts/rate-limiting.md has the caveats.

    Examples:
        >>> RateLimitConfig(requests_per_minute=60, max_concurrent=4).tokens_per_minute is None
        True
        >>> RateLimitConfig.claude_default().requests_per_minute
        50
    """

    invalid_input_error: ClassVar[type[InvalidRequestError | ConfigurationError]] = (
        ConfigurationError
    )

    requests_per_minute: _PositiveInt | None = None
    tokens_per_minute: _PositiveInt | None = None
    max_concurrent: _PositiveInt | None = None
    burst_allowance: Annotated[int, Field(ge=0, strict=True)] = 0
    allow_oversized: Annotated[bool, Field(strict=True)] = False

    @classmethod
    def claude_default(cls) -> RateLimitConfig:
        """Anthropic tier 1, Claude Sonnet 4.x: 50 RPM and 30,000 input tokens per minute.

        The token budget is the input (ITPM) limit, since the usual estimate is the
        prompt; the separate 8,000 output-tokens limit is not modelled.
        """
        return cls(requests_per_minute=50, tokens_per_minute=30_000)

    @classmethod
    def openai_default(cls) -> RateLimitConfig:
        """OpenAI tier 1, gpt-4o: 500 RPM and 30,000 tokens per minute."""
        return cls(requests_per_minute=500, tokens_per_minute=30_000)

    @classmethod
    def ollama_default(cls) -> RateLimitConfig:
        """A local Ollama server: no rate budgets, one request at a time.

        Ollama documents ``OLLAMA_NUM_PARALLEL`` (requests each model serves at once) as
        "default 1"; more would only queue inside the server, where the wait counts
        against our HTTP timeouts. Raise ``max_concurrent`` if you raised that variable.
        """
        return cls(max_concurrent=1)


@dataclass(frozen=True, slots=True)
class RateLimiterStats:
    """A snapshot of an `AdaptiveRateLimiter` (`tachikoma_backends_core.rate_limit`).

    Attributes:
        multiplier: the fraction of the configured budgets in force (1.0 = all of it).
        requests_per_minute: the effective request budget (``None`` if unlimited).
        tokens_per_minute: the effective token budget (``None`` if unlimited).
        burst_allowance: the effective burst.
        rate_limits: rate limits reported with ``record_rate_limit``.
        successes: successes reported with ``record_success``.
        paused_until: clock time before which nothing is admitted, if a pause is on.
        in_flight: permits held.
        waiting: acquirers in line.
        window_requests: requests in the current 60-second window.
        window_tokens: tokens in the current 60-second window.
    """

    multiplier: float
    requests_per_minute: int | None
    tokens_per_minute: int | None
    burst_allowance: int
    rate_limits: int
    successes: int
    paused_until: float | None
    in_flight: int
    waiting: int
    window_requests: int
    window_tokens: int


@dataclass(frozen=True, slots=True)
class Limits:
    """What one window may hold right now; ``None`` means unlimited."""

    requests: int | None
    tokens: int | None

    @classmethod
    def scaled(cls, config: RateLimitConfig, multiplier: float = 1.0) -> Limits:
        """The config's budgets times ``multiplier``, rounded down and at least 1.

        The burst is scaled too (it may reach 0): a limiter told to back off should not
        keep bursting.
        """
        requests = scale(config.requests_per_minute, multiplier)
        if requests is not None:
            requests += math.floor(config.burst_allowance * multiplier + 1e-9)
        return cls(requests=requests, tokens=scale(config.tokens_per_minute, multiplier))


def scale(budget: int | None, multiplier: float) -> int | None:
    # The epsilon keeps 50 * 0.58 (28.999999999999996) from rounding down to 28.
    if budget is None:
        return None
    return max(1, math.floor(budget * multiplier + 1e-9))


@dataclass(slots=True, eq=False)
class WindowEntry:
    """One admitted request: when it leaves the window and the tokens it counts for.

    ``tokens`` is mutable because a permit's ``record_usage`` replaces the estimate with
    the actual count; ``in_log`` turns false once the entry has expired out of the log,
    after which corrections no longer touch the running total.
    """

    expires_at: float
    tokens: int
    in_log: bool = True


class WindowLog:
    """The admissions still inside the window, with their token total kept current."""

    __slots__ = ("_entries", "_tokens")

    def __init__(self) -> None:
        self._entries: deque[WindowEntry] = deque()
        self._tokens = 0

    def prune(self, now: float) -> None:
        """Drop every entry that has expired at ``now``."""
        entries = self._entries
        while entries and entries[0].expires_at <= now:
            entry = entries.popleft()
            entry.in_log = False
            self._tokens -= entry.tokens

    def add(self, now: float, tokens: int) -> WindowEntry:
        entry = WindowEntry(now + WINDOW_SECONDS, tokens)
        self._entries.append(entry)
        self._tokens += tokens
        return entry

    def correct(self, entry: WindowEntry, tokens: int) -> None:
        """Replace ``entry``'s token count, keeping the total right if it is still logged."""
        if entry.in_log:
            self._tokens += tokens - entry.tokens
        entry.tokens = tokens

    @property
    def requests(self) -> int:
        return len(self._entries)

    @property
    def tokens(self) -> int:
        return self._tokens

    def fits_now(self, tokens: int, limits: Limits) -> bool:
        """Whether one more request of ``tokens`` fits the log as it is (pruned to now)."""
        if limits.requests is not None and len(self._entries) >= limits.requests:
            return False
        if limits.tokens is None:
            return True
        if tokens > limits.tokens:  # oversized: admitted only into a window without tokens
            return self._tokens == 0
        return self._tokens + tokens <= limits.tokens

    def admission_time(
        self, start: float, queued: Sequence[int], tokens: int, limits: Limits
    ) -> float:
        """When a request of ``tokens`` fits, after every request in ``queued`` (in order).

        Simulates the queue without touching the log: each queued request is admitted at
        its own earliest time (never before the one ahead), and so is in the window the
        next one sees. Concurrency is ignored, so this is a lower bound.
        """
        entries = deque(self._entries) if queued else self._entries
        count, total = len(entries), self._tokens
        for queued_tokens in queued:
            while entries and entries[0].expires_at <= start:
                count -= 1
                total -= entries.popleft().tokens
            start = earliest_start(entries, count, total, start, queued_tokens, limits)
            entries.append(WindowEntry(start + WINDOW_SECONDS, queued_tokens))
            count += 1
            total += queued_tokens
        return earliest_start(entries, count, total, start, tokens, limits)


def earliest_start(
    entries: Iterable[WindowEntry],
    count: int,
    total: int,
    start: float,
    tokens: int,
    limits: Limits,
) -> float:
    """The earliest time, not before ``start``, at which a request of ``tokens`` fits.

    ``entries`` are oldest first, ``count`` and ``total`` their number and token sum. Drop
    entries from the left (each is gone at its expiry) until one more request fits the
    request limit and the tokens left leave room for ``tokens``. A request larger than
    the token limit needs a window with no tokens at all. Entries that expire before
    ``start`` cost nothing to drop: ``when`` never moves before ``start``.
    """
    excess = 0 if limits.requests is None else count + 1 - limits.requests
    if limits.tokens is None:
        room = math.inf
    else:
        room = limits.tokens - tokens if tokens <= limits.tokens else 0
    when = start
    for entry in entries:
        if excess <= 0 and total <= room:
            break
        excess -= 1
        total -= entry.tokens
        when = max(when, entry.expires_at)
    return when


def delay_until(now: float, when: float) -> float:
    """Seconds from ``now`` to ``when``, rounded up so that ``now + delay >= when`` exactly.

    ``when - now`` can round down by one ulp, and a clock advanced by it would land just
    before ``when``: whoever sleeps for the delay must then find the request fitting.
    """
    delay = when - now
    if delay <= 0:
        return 0.0
    while now + delay < when:
        delay = math.nextafter(delay, math.inf)
    return delay
