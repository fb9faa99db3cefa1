"""One provider quota shared through a real Redis, by many limiters and many processes.

The ``redis_server`` fixture starts ``redis-server`` on 127.0.0.1. Windows are one
second long here (``window_seconds=1.0``), so that hundreds of admissions cross many
windows in seconds; everything else is as in production. Processes are real: four
workers drive the mock backend through ``registry.create(..., rate_limiter=...)``, one is
killed with SIGKILL while it holds slots, and the server is stopped and started again
mid-run.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tachikoma_backends_core import (
    CompletionRequest,
    Message,
    RateLimitConfig,
    RateLimiterUnavailableError,
    RedisAdaptiveRateLimiter,
    RedisRateLimiter,
    Wait,
    registry,
)
from tachikoma_backends_core.rate_limit import Permit
from tachikoma_backends_core.redis_rate_limit import quota_fingerprint

if TYPE_CHECKING:
    from conftest import RedisServer

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis-py's client is asyncio's


@pytest.fixture
def quota(redis_server: RedisServer) -> dict[str, Any]:
    """Settings of a fresh quota (its own name) on the test server."""
    return {"url": redis_server.url, "name": f"test-{uuid.uuid4().hex[:8]}"}


def _limiter(quota: dict[str, Any], config: RateLimitConfig, **options: Any) -> RedisRateLimiter:
    return RedisRateLimiter(config, **quota, window_seconds=1.0, **options)


# -- many processes ---------------------------------------------------------------------

WORKER = """
import asyncio, json, sys, time
from tachikoma_backends_core import CompletionRequest, Message, RateLimitConfig, registry
from tachikoma_backends_core.redis_rate_limit import RedisRateLimiter

url, name, requests = sys.argv[1], sys.argv[2], int(sys.argv[3])
config = RateLimitConfig(**json.loads(sys.argv[4]))
records = []

class Recorded:
    # The permit the backend gets: says when it was released.
    def __init__(self, permit):
        self.permit = permit
        self.record = {"admitted_at": permit.admitted_at, "start": time.time()}
        records.append(self)
    @property
    def tokens(self):
        return self.permit.tokens
    def record_usage(self, tokens):
        self.permit.record_usage(tokens)
    def release(self):
        self.record.setdefault("end", time.time())
        self.permit.release()

class Recording(RedisRateLimiter):
    async def acquire(self, tokens=0):
        return Recorded(await super().acquire(tokens))

async def main():
    async with Recording(config, url=url, name=name, window_seconds=1.0) as limiter:
        backend = registry.create("mock", rate_limiter=limiter, chunk_delay=0.002)
        request = CompletionRequest(messages=[Message.user("Hi")], max_tokens=150)
        todo = list(range(requests))
        async def work():
            while todo:
                todo.pop()
                async with await backend.complete_stream(request) as stream:
                    await stream.collect()
        await asyncio.gather(*(work() for _ in range(5)))
    for recorded in records:
        print(json.dumps({**recorded.record, "tokens": recorded.tokens}))

asyncio.run(main())
"""


def _max_in_any_window(times: list[float], weights: list[int], window: float) -> int:
    """The largest total weight admitted in any window that starts at an admission."""
    pairs = sorted(zip(times, weights, strict=True))
    best = 0
    for index, (start, _) in enumerate(pairs):
        best = max(best, sum(w for t, w in pairs[index:] if t < start + window))
    return best


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    best = current = 0
    for _, step in events:
        current += step
        best = max(best, current)
    return best


def test_four_processes_stay_inside_one_quota(redis_server: RedisServer) -> None:
    budgets = {
        "requests_per_minute": 40,
        "burst_allowance": 5,
        "tokens_per_minute": 7_000,
        "max_concurrent": 4,
    }
    name = f"workers-{uuid.uuid4().hex[:8]}"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, redis_server.url, name, "100", json.dumps(budgets)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    records = []
    for worker in workers:
        out, err = worker.communicate(timeout=90)
        assert worker.returncode == 0, err
        records += [json.loads(line) for line in out.splitlines()]
    assert len(records) == 400
    times = [record["admitted_at"] for record in records]
    # Windows are 1 s here: "per minute" budgets hold per window.
    assert _max_in_any_window(times, [1] * 400, 1.0) <= 45
    assert _max_in_any_window(times, [r["tokens"] for r in records], 1.0) <= 7_000
    assert {r["tokens"] for r in records} == {150}, "each permit carries the reported usage"
    assert _max_overlap([(r["start"], r["end"]) for r in records]) <= 4
    # 400 requests at 45 per window take at least 8 windows: the quota really bound.
    assert max(times) - min(times) >= 8.0


HOLDER = """
import asyncio, sys
from tachikoma_backends_core import RateLimitConfig
from tachikoma_backends_core.redis_rate_limit import RedisRateLimiter

async def main():
    limiter = RedisRateLimiter(
        RateLimitConfig(max_concurrent=2), url=sys.argv[1], name=sys.argv[2],
        lease_seconds=1.0,
    )
    held = [await limiter.acquire() for _ in range(2)]
    print("held", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


@pytest.fixture
def holder(redis_server: RedisServer, quota: dict[str, Any]) -> Iterator[subprocess.Popen[str]]:
    """A process holding both slots of ``quota`` (leases of 1 s), once it said so."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, redis_server.url, quota["name"]],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    with process.stdout:
        assert process.stdout.readline().strip() == "held"
        try:
            yield process
        finally:
            process.kill()
            process.wait(timeout=10)


async def test_a_killed_process_frees_its_slots_within_the_lease(
    holder: subprocess.Popen[str], quota: dict[str, Any]
) -> None:
    limiter = RedisRateLimiter(RateLimitConfig(max_concurrent=2), **quota, lease_seconds=1.0)
    async with limiter:
        await asyncio.sleep(1.5)  # past one lease: the holder renews them while it lives
        assert await limiter.check() == Wait(0.0), "its slots are held while it lives"
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        killed = time.monotonic()
        permits = [await limiter.acquire() for _ in range(2)]
        freed_after = time.monotonic() - killed
        for permit in permits:
            permit.release()
    assert freed_after <= 1.0 + 0.5, f"slots freed {freed_after:.2f} s after the kill"


# -- Redis going away -------------------------------------------------------------------


async def test_redis_stopped_and_restarted_fails_closed_then_recovers(
    redis_server: RedisServer, quota: dict[str, Any]
) -> None:
    limiter = _limiter(quota, RateLimitConfig(max_concurrent=5), timeout=0.5)
    async with limiter:
        before = await limiter.acquire()
        redis_server.stop()
        try:
            started = time.monotonic()
            with pytest.raises(RateLimiterUnavailableError) as raised:
                await limiter.acquire()
            assert time.monotonic() - started <= 0.5 + 1.0, "a bounded wait, never a hang"
            assert raised.value.retryable
            assert "did not answer within 0.5 s" in raised.value.message
            before.release()  # lost with the server: must not count twice later
        finally:
            redis_server.start()
        after = await limiter.acquire()
        snapshot = await limiter.snapshot()
        assert (snapshot.window_requests, snapshot.in_flight) == (1, 1)
        async with after:
            pass
        assert (await limiter.snapshot()).in_flight == 0


async def test_fail_open_admits_through_a_local_limiter_meanwhile(
    redis_server: RedisServer, quota: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    limiter = _limiter(
        quota, RateLimitConfig(requests_per_minute=100), timeout=0.5, on_unavailable="local"
    )
    async with limiter:
        redis_server.stop()
        try:
            permit = await limiter.acquire()
        finally:
            redis_server.start()
    assert isinstance(permit, Permit), "admitted by the per-process limiter"
    assert "Redis is unavailable" in caplog.text


async def test_a_backend_reports_an_unreachable_quota_typed(quota: dict[str, Any]) -> None:
    limiter = RedisRateLimiter(
        RateLimitConfig(max_concurrent=1), url="redis://127.0.0.1:9/0", name="x", timeout=0.3
    )
    backend = registry.create("mock", rate_limiter=limiter)
    async with backend, limiter:
        with pytest.raises(RateLimiterUnavailableError):
            await backend.complete(CompletionRequest(messages=[Message.user("Hi")]))


# -- semantics, as RateLimiter's ----------------------------------------------------------


async def test_first_come_first_served_across_limiters(quota: dict[str, Any]) -> None:
    config = RateLimitConfig(max_concurrent=1)
    first, second = _limiter(quota, config), _limiter(quota, config)
    async with first, second:
        held = await first.acquire()
        order: list[str] = []

        async def wait_for(limiter: RedisRateLimiter, label: str, tokens: int) -> None:
            async with await limiter.acquire(tokens):
                order.append(label)

        big = asyncio.create_task(wait_for(first, "big, asked first", 500))
        await asyncio.sleep(0.1)
        small = asyncio.create_task(wait_for(second, "small, asked second", 1))
        await asyncio.sleep(0.1)
        assert (await first.snapshot()).waiting == 2
        held.release()
        await asyncio.wait_for(asyncio.gather(big, small), 10)
    assert order == ["big, asked first", "small, asked second"]


async def test_a_cancelled_acquire_leaves_the_line(quota: dict[str, Any]) -> None:
    limiter = _limiter(quota, RateLimitConfig(max_concurrent=1))
    async with limiter:
        held = await limiter.acquire()
        waiting = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0.1)
        assert (await limiter.snapshot()).waiting == 1
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.sleep(0.1)  # the line is left in the background
        assert (await limiter.snapshot()).waiting == 0
        held.release()
        async with await limiter.acquire():
            pass


async def test_a_429_in_one_process_backs_off_every_process(quota: dict[str, Any]) -> None:
    config = RateLimitConfig(requests_per_minute=10)
    one = RedisAdaptiveRateLimiter(config, **quota, window_seconds=1.0)
    other = RedisAdaptiveRateLimiter(config, **quota, window_seconds=1.0)
    async with one, other:
        await one.record_rate_limit(retry_after=0.5)
        snapshot = await other.snapshot()
        assert snapshot.multiplier == 0.5
        assert 0.3 < snapshot.paused_for <= 0.5
        decision = await other.check()
        assert isinstance(decision, Wait)
        assert 0.3 < decision.delay <= 0.5
        other.record_success()  # other saw the halving: it recovers for everyone
        await other.aclose()
        assert (await one.snapshot()).multiplier == 0.55


async def test_tokens_are_corrected_and_expire_with_the_window(quota: dict[str, Any]) -> None:
    limiter = _limiter(quota, RateLimitConfig(tokens_per_minute=1_000))
    async with limiter:
        async with await limiter.acquire(800) as permit:
            permit.record_usage(300)
        await asyncio.sleep(0.05)
        assert (await limiter.snapshot()).window_tokens == 300
        assert await limiter.check(700) != Wait(0.0)
        with pytest.raises(Exception, match="can never fit"):
            await limiter.acquire(1_001)
        await asyncio.sleep(1.05)
        assert (await limiter.snapshot()).window_tokens == 0


# -- configuration ------------------------------------------------------------------------


async def test_the_environment_shares_a_quota_without_code(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TACHIKOMA_REDIS_URL", redis_server.url)
    monkeypatch.setenv("TACHIKOMA_RATE_LIMIT", "requests_per_minute=30,max_concurrent=2")
    backend = registry.create("mock")
    limiter = backend.rate_limiter
    assert isinstance(limiter, RedisAdaptiveRateLimiter)
    assert limiter.config == RateLimitConfig(requests_per_minute=30, max_concurrent=2)
    async with backend, limiter:
        await limiter.reset()
        await backend.complete(CompletionRequest(messages=[Message.user("Hi")]))
        assert (await limiter.snapshot()).window_requests == 1

    key = "sk-ant-api03-secret-key-0123456789"
    monkeypatch.delenv("TACHIKOMA_RATE_LIMIT")
    claude = registry.create("claude", api_key=key)
    limiter = claude.rate_limiter
    assert isinstance(limiter, RedisRateLimiter)
    assert limiter.config == RateLimitConfig.claude_default()
    assert limiter.keys_prefix == f"tachikoma:rl:{{claude:{quota_fingerprint(key)}}}"
    assert key not in limiter.keys_prefix
    assert key not in repr(limiter)
    await claude.aclose()
    await limiter.aclose()


def test_a_plugin_without_budgets_needs_them_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TACHIKOMA_REDIS_URL", "redis://127.0.0.1:9/0")
    with pytest.raises(Exception, match="set TACHIKOMA_RATE_LIMIT"):
        registry.create("mock")
    monkeypatch.setenv("TACHIKOMA_RATE_LIMIT", "requests_per_minute=fast")
    with pytest.raises(Exception, match="requests_per_minute must be a whole number"):
        registry.create("mock")
    assert "TACHIKOMA_REDIS_URL" in os.environ


def test_the_many_workers_page_runs_as_shown(redis_server: RedisServer) -> None:
    page = Path(__file__).resolve().parents[1] / "docs" / "concepts" / "many-workers.md"
    (source,) = re.findall(r"^```python\n(.*?)^```", page.read_text(), re.DOTALL | re.MULTILINE)
    env = {**os.environ, "TACHIKOMA_REDIS_URL": redis_server.url}
    result = subprocess.run(
        [sys.executable, "-c", source], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    printed = result.stdout.splitlines()
    assert printed[0] == "Mock response"
    assert printed[1].startswith("QuotaSnapshot(window_requests=")


async def test_a_backend_teaches_the_shared_quota_its_429s(quota: dict[str, Any]) -> None:
    from tachikoma_backend_mock import MockBackend
    from tachikoma_backends_core import RateLimitError

    limiter = RedisAdaptiveRateLimiter(RateLimitConfig(requests_per_minute=10), **quota)
    backend = registry.create("mock", rate_limiter=limiter)
    inner = backend.inner
    assert isinstance(inner, MockBackend)
    inner.queue_failure(RateLimitError("slow down", retry_after=0.2, provider="mock"))
    async with backend, limiter:
        with pytest.raises(RateLimitError):
            await backend.complete(CompletionRequest(messages=[Message.user("Hi")]))
        snapshot = await limiter.snapshot()
    assert snapshot.multiplier == 0.5
    assert 0.0 < snapshot.paused_for <= 0.2


def test_a_limiter_is_given_one_redis() -> None:
    config = RateLimitConfig(max_concurrent=1)
    with pytest.raises(Exception, match="exactly one of url and redis"):
        RedisRateLimiter(config)
    with pytest.raises(Exception, match="lease_seconds must be a positive number"):
        RedisRateLimiter(config, url="redis://127.0.0.1:9/0", lease_seconds=0)
