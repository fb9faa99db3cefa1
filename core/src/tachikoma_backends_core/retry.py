"""The one retry loop: exponential back-off with jitter, honouring ``retry_after``.

Why one loop, in core: a provider plugin that also retried underneath would multiply
attempts (2 retries over 2 retries is 9 calls) and hide rate limits from the limiter.
Plugins therefore never retry; `BackendPlugin.create` puts this loop in front of every
backend, sized by the plugin config's ``max_retries`` (``0`` disables it). The
conformance suite counts HTTP attempts to hold plugins to that.

What is retried is decided by data, never by guessing from messages: an error is
retried only when its ``retryable`` flag is set (rate limits, overload, 5xx, network
trouble, timeouts), and a ``retry_after`` the provider sent is the wait, exactly.

Examples:
    >>> policy = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=8.0, jitter=0.0)
    >>> [policy.backoff(n) for n in (1, 2, 3)]
    [0.5, 1.0, 2.0]
    >>> RetryPolicy.from_max_retries(0).max_attempts
    1
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import anyio

from .clock import Clock, SystemClock
from .errors import BackendError, BackendTimeoutError, ConfigurationError

__all__ = ["RetryPolicy"]

T = TypeVar("T")

# Called before each wait: (the error, the attempt that failed, seconds until the next).
RetryObserver = Callable[[BackendError, int, float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a failed call.

    Attributes:
        max_attempts: attempts in all, the first one included (``1`` never retries).
        base_delay: the first back-off in seconds; each retry doubles it.
        max_delay: the longest back-off in seconds (a provider's ``retry_after`` may be
            longer and is honoured anyway, within ``total_timeout``).
        jitter: the fraction of each back-off taken off at random (``0.25``: between
            75 % and 100 % of it), so that many clients do not retry in lockstep.
        total_timeout: seconds the whole call may take, waits included (``None``: no
            bound). A wait that would end past it is not started: the last error is
            raised at once instead. An attempt still running at the deadline is
            cancelled and ends in `BackendTimeoutError`.
        clock: where time is read and waits happen; tests pass a `FakeClock`.
    """

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25
    total_timeout: float | None = 600.0
    clock: Clock = field(default_factory=SystemClock, compare=False, repr=False)

    def __post_init__(self) -> None:
        checks = {
            "max_attempts": self.max_attempts >= 1,
            "base_delay": self.base_delay >= 0,
            "max_delay": self.max_delay >= self.base_delay,
            "jitter": 0.0 <= self.jitter <= 1.0,
            "total_timeout": self.total_timeout is None or self.total_timeout > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigurationError(
                    f"RetryPolicy.{name} = {getattr(self, name)!r} is out of range "
                    "(max_attempts >= 1, 0 <= base_delay <= max_delay, 0 <= jitter <= 1, "
                    "total_timeout > 0 or None)",
                    field=name,
                )

    @classmethod
    def from_max_retries(cls, max_retries: int, **settings: object) -> RetryPolicy:
        """The policy for a plugin config's ``max_retries`` (retries after the first try)."""
        if max_retries < 0:
            raise ConfigurationError(
                f"max_retries must be 0 or more, got {max_retries}", field="max_retries"
            )
        return cls(max_attempts=max_retries + 1, **settings)  # type: ignore[arg-type]

    @classmethod
    def disabled(cls) -> RetryPolicy:
        """One attempt, no waiting: errors reach the caller as they happen."""
        return cls(max_attempts=1)

    def backoff(self, retry_number: int) -> float:
        """The wait before retry ``retry_number`` (1 for the first retry), jitter applied."""
        delay = min(self.max_delay, self.base_delay * 2.0 ** (retry_number - 1))
        if self.jitter:
            delay *= 1.0 - self.jitter * random.random()
        return delay

    def delay_before_retry(self, error: BackendError, retry_number: int) -> float | None:
        """Seconds to wait before retrying after ``error``, or ``None`` to give up."""
        if not error.retryable or retry_number >= self.max_attempts:
            return None
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, (int, float)) and math.isfinite(retry_after):
            return max(0.0, float(retry_after))
        return self.backoff(retry_number)

    async def call(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        on_retry: RetryObserver | None = None,
    ) -> T:
        """Run ``attempt`` until it succeeds, fails for good, or time runs out.

        Only `BackendError`s are considered; anything else propagates unchanged (the
        managed backend turns it into a typed error first).
        """
        clock = self.clock
        deadline = None if self.total_timeout is None else clock.now() + self.total_timeout
        attempt_number = 1
        while True:
            remaining = None if deadline is None else max(deadline - clock.now(), 0.0)
            try:
                if remaining is None:  # no deadline, no cancel scope to pay for
                    return await attempt()
                with anyio.move_on_after(remaining):
                    return await attempt()
            except BackendError as error:
                delay = self.delay_before_retry(error, attempt_number)
                if delay is None:
                    raise
                if deadline is not None and clock.now() + delay > deadline:
                    raise  # the wait would outlast total_timeout: the last error is the answer
                if on_retry is not None:
                    await on_retry(error, attempt_number, delay)
                await clock.sleep(delay)
                attempt_number += 1
                continue
            # Only a deadline cancellation leaves the ``with`` without a result.
            raise BackendTimeoutError(
                f"gave up: total_timeout of {self.total_timeout} s elapsed during "
                f"attempt {attempt_number} of {self.max_attempts}",
                retryable=False,
            )
