"""What does a shared quota cost per request, against the local Redis?

Starts ``redis-server`` on 127.0.0.1 (skips, saying so, when it is not installed) and
measures, for `RedisRateLimiter` with budgets that never bind:

* round trips per ``acquire`` + ``release`` (calls the limiter makes to Redis), which the
  design holds to one script call and one ``ZREM``, and the commands Redis runs for them
  (``INFO commandstats``, which counts those inside the script too);
* uncontended ops/s in one process, next to a bare ``PING`` round trip (the floor of
  anything that asks Redis once), as a ratio;
* four processes contending for one quota with ``max_concurrent=2``: ops/s in all, and
  that in-flight never passed 2.

Medians of several rounds; prints the spread. Asserts nothing (machines are noisy).
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable
from typing import TypeVar

from redis.asyncio import Redis

from tachikoma_backends_core import RateLimitConfig, RedisRateLimiter
from tachikoma_backends_core._redis_server import RedisServer, redis_server_path

T = TypeVar("T")
OPERATIONS = 1_000
ROUNDS = 5
GENEROUS = RateLimitConfig(
    requests_per_minute=10**9, tokens_per_minute=10**12, max_concurrent=10**6
)

CONTENDER = """
import asyncio, sys, time
from tachikoma_backends_core import RateLimitConfig, RedisRateLimiter

async def main():
    config = RateLimitConfig(max_concurrent=2)
    async with RedisRateLimiter(
        config, url=sys.argv[1], name=sys.argv[2], poll_interval=0.001
    ) as limiter:
        start = time.perf_counter()
        for _ in range(int(sys.argv[3])):
            async with await limiter.acquire():
                pass
        print(time.perf_counter() - start)

asyncio.run(main())
"""


class Counting(RedisRateLimiter):
    """Counts the limiter's calls to Redis: each is one round trip."""

    round_trips = 0

    async def _call(self, command: Awaitable[T]) -> T:
        Counting.round_trips += 1
        return await super()._call(command)


async def commands(client: Redis) -> int:
    stats = await client.info("commandstats")
    return sum(int(entry["calls"]) for entry in stats.values())


async def uncontended(url: str) -> tuple[list[float], list[float], float, float]:
    client: Redis = Redis.from_url(url, decode_responses=True)
    limiter_rates, ping_rates = [], []
    async with Counting(GENEROUS, url=url, name="bench-uncontended") as limiter:
        await limiter.reset()
        async with await limiter.acquire():  # loads the script once
            pass
        before, Counting.round_trips = await commands(client), 0
        for _ in range(100):
            async with await limiter.acquire(100):
                pass
        round_trips = Counting.round_trips / 100
        per_operation = (await commands(client) - before - 1) / 100  # INFO counts itself
        for _ in range(ROUNDS):
            start = time.perf_counter()
            for _ in range(OPERATIONS):
                async with await limiter.acquire(100):
                    pass
            limiter_rates.append(OPERATIONS / (time.perf_counter() - start))
            start = time.perf_counter()
            for _ in range(OPERATIONS):
                await client.ping()
            ping_rates.append(OPERATIONS / (time.perf_counter() - start))
    await client.aclose()
    return limiter_rates, ping_rates, round_trips, per_operation


def contended(url: str) -> tuple[float, int]:
    name, each = "bench-contended", OPERATIONS // 2
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", CONTENDER, url, name, str(each)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    seconds = [float(worker.communicate(timeout=300)[0]) for worker in workers]
    return 4 * each / max(seconds), 4 * each


def main() -> None:
    executable = redis_server_path()
    if executable is None:
        print("skipped: redis-server is not installed (apt-get install -y redis-server)")
        return
    with RedisServer(executable) as server:
        limiter_rates, ping_rates, round_trips, per_operation = asyncio.run(uncontended(server.url))
        total_rate, total = contended(server.url)
    limiter, ping = statistics.median(limiter_rates), statistics.median(ping_rates)
    print(
        f"round trips per acquire + release: {round_trips:.2f} "
        f"(Redis runs {per_operation:.0f} commands for them, inside the script)"
    )
    print(
        f"uncontended acquire+release: {limiter:,.0f} ops/s "
        f"(spread {min(limiter_rates):,.0f}-{max(limiter_rates):,.0f}); "
        f"PING: {ping:,.0f} round trips/s; cost {ping / limiter:.2f}x one round trip"
    )
    print(f"4 processes, max_concurrent=2: {total} acquires at {total_rate:,.0f} ops/s in all")


if __name__ == "__main__":
    main()
