"""What does an uncontended `acquire` + `release` cost, next to a bare `anyio.Lock`?

With budgets that never bind, every acquire takes the fast path: prune the window, compare
two sums, log the admission, one cancel-shielded checkpoint (as `anyio.Lock.acquire` does).
Prints operations per second for `RateLimiter`, `AdaptiveRateLimiter` and the lock, on
asyncio and trio, and each limiter's cost as a multiple of the lock's. Asserts nothing
(machines are noisy); runs in a few seconds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable

import anyio

from tachikoma_backends_core.rate_limit import AdaptiveRateLimiter, RateLimitConfig, RateLimiter

OPERATIONS = 10_000
ROUNDS = 9
# Generous: nothing ever waits, so this measures the bookkeeping alone.
GENEROUS = RateLimitConfig(
    requests_per_minute=10**9, tokens_per_minute=10**12, max_concurrent=1_000
)


async def limiter_loop(limiter: RateLimiter) -> None:
    for _ in range(OPERATIONS):
        permit = await limiter.acquire(100)
        permit.release()


async def lock_loop(lock: anyio.Lock) -> None:
    for _ in range(OPERATIONS):
        await lock.acquire()
        lock.release()


async def timed(make_loop: Callable[[], Awaitable[None]]) -> float:
    loop = make_loop()  # inside the event loop: anyio.Lock() binds to it
    start = time.perf_counter()
    await loop
    return time.perf_counter() - start


def measure(backend: str) -> dict[str, float]:
    """Median ops/s over ``ROUNDS`` rounds; each round runs every variant once, in turn,
    so that noise from other processes falls on all of them alike."""
    variants: dict[str, Callable[[], Awaitable[None]]] = {
        "anyio.Lock (baseline)": lambda: lock_loop(anyio.Lock()),
        "RateLimiter": lambda: limiter_loop(RateLimiter(GENEROUS)),
        "AdaptiveRateLimiter": lambda: limiter_loop(AdaptiveRateLimiter(GENEROUS)),
    }
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(ROUNDS):
        for name, make_loop in variants.items():
            samples[name].append(anyio.run(timed, make_loop, backend=backend))
    return {name: OPERATIONS / statistics.median(times) for name, times in samples.items()}


def main() -> None:
    print(f"{OPERATIONS:,} uncontended acquire + release per run, median of {ROUNDS} runs")
    for backend in ("asyncio", "trio"):
        rates = measure(backend)
        lock = rates["anyio.Lock (baseline)"]
        print(f"[{backend}]")
        for name, rate in rates.items():
            ratio = "" if rate == lock else f", {lock / rate:.2f}x the lock's cost"
            print(f"  {name:<22}: {rate:>9,.0f} ops/s{ratio}")


if __name__ == "__main__":
    main()
