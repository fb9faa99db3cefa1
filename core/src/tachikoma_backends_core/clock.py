"""Time, as the rate limiter and the retry loop see it: replaceable, so tests never wait.

Everything in core that waits (the rate limiter, the retry policy's back-off) reads the
time and sleeps through a `Clock`. Production code uses `SystemClock` (monotonic time,
``anyio.sleep``); tests use `FakeClock`, whose time moves only when the test says so, so a
one-minute rate-limit window takes microseconds and every run is deterministic.

Examples:
    >>> import anyio
    >>> clock = FakeClock(auto_advance=True)
    >>> anyio.run(clock.sleep, 60.0)  # returns at once
    >>> clock.now()
    60.0
"""

from __future__ import annotations

import heapq
import itertools
import time
from typing import Protocol, runtime_checkable

import anyio

__all__ = ["Clock", "FakeClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """A monotonic clock and a way to sleep on it."""

    def now(self) -> float:
        """Seconds on a monotonic scale (only differences are meaningful)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """Real time: `time.monotonic` and `anyio.sleep` (asyncio or trio)."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


class FakeClock:
    """Virtual time for tests.

    Sleepers wait until the test calls `advance` (or `advance_to`) past their deadline;
    they wake in deadline order. With ``auto_advance=True`` a sleep instead moves the
    clock forward to its own deadline at once, which suits sequential code (one retry
    loop) but not many concurrent sleepers.

    Attributes:
        slept: every duration passed to `sleep`, in call order (for assertions such as
            "the retry loop waited 2 s").
    """

    def __init__(self, start: float = 0.0, *, auto_advance: bool = False) -> None:
        self._now = float(start)
        self.auto_advance = auto_advance
        self.slept: list[float] = []
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.slept.append(seconds)
        deadline = self._now + seconds
        if self.auto_advance:
            self._now = max(self._now, deadline)
            await anyio.lowlevel.checkpoint()
            return
        if deadline <= self._now:
            await anyio.lowlevel.checkpoint()
            return
        entry = (deadline, next(self._order), anyio.Event())
        heapq.heappush(self._sleepers, entry)
        try:
            await entry[2].wait()
        finally:
            if not entry[2].is_set():  # cancelled: nobody must count or wake it later
                self._sleepers.remove(entry)
                heapq.heapify(self._sleepers)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake every sleeper whose deadline passed."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self.advance_to(self._now + seconds)

    def advance_to(self, when: float) -> None:
        """Move time forward to ``when`` (never backwards) and wake due sleepers."""
        self._now = max(self._now, when)
        while self._sleepers and self._sleepers[0][0] <= self._now:
            heapq.heappop(self._sleepers)[2].set()

    @property
    def next_deadline(self) -> float | None:
        """The earliest time a sleeper waits for, or ``None`` when nobody sleeps."""
        return self._sleepers[0][0] if self._sleepers else None

    @property
    def sleepers(self) -> int:
        """How many tasks are sleeping on this clock."""
        return len(self._sleepers)

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now}, sleepers={len(self._sleepers)})"
