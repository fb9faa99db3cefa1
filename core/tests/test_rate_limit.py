"""RateLimiter and AdaptiveRateLimiter through their public API, on a fake clock.

Property tests (random configs and operation sequences) are in test_rate_limit_properties.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
from typing import Any

import anyio
import pytest

from tachikoma_backends_core.clock import FakeClock
from tachikoma_backends_core.errors import ConfigurationError, InvalidRequestError
from tachikoma_backends_core.rate_limit import (
    AdaptiveRateLimiter,
    Allow,
    Permit,
    RateLimitConfig,
    RateLimiter,
    RateLimiterStats,
    Wait,
)

pytestmark = pytest.mark.anyio


async def settle() -> None:
    """Let every other task run until it blocks.

    On trio this is ``wait_all_tasks_blocked``. anyio's asyncio version sleeps 0.1 s of
    real time whenever a task is still runnable, so there we yield until none is.
    """
    try:
        this_task = asyncio.current_task()
    except RuntimeError:  # not asyncio
        await anyio.wait_all_tasks_blocked()
        return
    for _ in range(10_000):
        await anyio.lowlevel.checkpoint()
        others = [task for task in asyncio.all_tasks() if task is not this_task]
        waiters = [getattr(task, "_fut_waiter", None) for task in others]
        if all(waiter is not None and not waiter.done() for waiter in waiters):
            return
    raise AssertionError("the tasks never settled")


def limiter_on_fake_clock(**config: Any) -> tuple[RateLimiter, FakeClock]:
    clock = FakeClock()
    return RateLimiter(RateLimitConfig(**config), clock=clock), clock


# --- the seed's scenarios -----------------------------------------------------------------


async def test_rate_limiter_allows_requests() -> None:
    config = RateLimitConfig(
        requests_per_minute=10, tokens_per_minute=10_000, max_concurrent=5, burst_allowance=2
    )
    limiter = RateLimiter(config)

    decision = await limiter.check(100)

    assert isinstance(decision, Allow)


async def test_rate_limiter_blocks_on_limit() -> None:
    config = RateLimitConfig(
        requests_per_minute=2, tokens_per_minute=10_000, max_concurrent=5, burst_allowance=0
    )
    limiter = RateLimiter(config)

    await limiter.acquire(100)
    await limiter.acquire(100)

    decision = await limiter.check(100)
    assert isinstance(decision, Wait)


async def test_rate_limiter_token_limit() -> None:
    config = RateLimitConfig(
        requests_per_minute=100, tokens_per_minute=500, max_concurrent=5, burst_allowance=0
    )
    limiter = RateLimiter(config)

    decision = await limiter.check(600)

    assert isinstance(decision, Wait)


async def test_adaptive_rate_limiter() -> None:
    limiter = AdaptiveRateLimiter(RateLimitConfig.claude_default())

    for _ in range(10):
        limiter.record_success()
    await limiter.record_rate_limit(60.0)

    assert limiter.stats().multiplier < 1.0


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("requests_per_minute", 0),
        ("requests_per_minute", -5),
        ("requests_per_minute", "10"),
        ("requests_per_minute", 2.5),
        ("tokens_per_minute", 0),
        ("tokens_per_minute", True),
        ("max_concurrent", 0),
        ("burst_allowance", -1),
        ("burst_allowance", None),
        ("allow_oversized", "yes"),
        ("rpm", 10),
    ],
)
def test_invalid_config_names_the_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        RateLimitConfig(**{field: value})
    assert caught.value.field == field
    assert field in str(caught.value)


def test_config_is_immutable_and_unlimited_by_default() -> None:
    config = RateLimitConfig()
    assert (config.requests_per_minute, config.tokens_per_minute, config.max_concurrent) == (
        None,
        None,
        None,
    )
    with pytest.raises(ConfigurationError):
        config.requests_per_minute = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (RateLimitConfig.claude_default(), (50, 30_000, None)),
        (RateLimitConfig.openai_default(), (500, 30_000, None)),
        (RateLimitConfig.ollama_default(), (None, None, 1)),
    ],
    ids=["claude", "openai", "ollama"],
)
def test_provider_defaults(config: RateLimitConfig, expected: tuple[Any, ...]) -> None:
    assert (config.requests_per_minute, config.tokens_per_minute, config.max_concurrent) == (
        expected
    )
    assert (config.burst_allowance, config.allow_oversized) == (0, False)


# --- check ----------------------------------------------------------------------------------


async def test_check_has_no_side_effect() -> None:
    limiter, _ = limiter_on_fake_clock(requests_per_minute=1, tokens_per_minute=100)
    for _ in range(5):
        assert await limiter.check(100) == Allow()
    state = (limiter.window_requests(), limiter.window_tokens(), limiter.in_flight)
    assert state == (0, 0, 0)
    await limiter.acquire(100)
    assert await limiter.check(0) == Wait(60.0)
    assert (limiter.window_requests(), limiter.window_tokens(), limiter.waiting) == (1, 100, 0)


@pytest.mark.parametrize(
    ("config", "acquisitions", "asked_at", "asked", "expected_delay"),
    [
        # acquisitions are (clock time, tokens); the request waits for the oldest to expire
        ({"requests_per_minute": 2}, [(0.0, 0), (10.3, 0)], 10.3, 0, 60.0 - 10.3),
        ({"tokens_per_minute": 1_000}, [(0.0, 600), (7.25, 300)], 7.25, 500, 60.0 - 7.25),
        ({"tokens_per_minute": 1_000}, [(0.0, 600), (7.25, 300)], 7.25, 800, 60.0),
        ({"requests_per_minute": 1, "burst_allowance": 1}, [(0.1, 0), (0.3, 0)], 0.3, 0, 59.8),
        # 23.99 + (63.57 - 23.99) rounds below 63.57: the delay must be rounded up
        ({"requests_per_minute": 1}, [(3.57, 0)], 23.99, 0, 63.57 - 23.99),
    ],
)
async def test_wait_delay_is_exact(
    config: dict[str, int],
    acquisitions: list[tuple[float, int]],
    asked_at: float,
    asked: int,
    expected_delay: float,
) -> None:
    limiter, clock = limiter_on_fake_clock(**config)
    for at, tokens in acquisitions:
        clock.advance_to(at)
        await limiter.acquire(tokens)
    clock.advance_to(asked_at)

    decision = await limiter.check(asked)

    assert isinstance(decision, Wait)
    assert decision.delay == pytest.approx(expected_delay)
    clock.advance_to(asked_at + decision.delay - 1e-6)
    assert isinstance(await limiter.check(asked), Wait)
    clock.advance_to(asked_at + decision.delay)
    assert await limiter.check(asked) == Allow()


async def test_budgets_are_inclusive() -> None:
    limiter, clock = limiter_on_fake_clock(requests_per_minute=2, tokens_per_minute=1_000)
    await limiter.acquire(600)
    assert await limiter.check(401) == Wait(60.0)
    assert await limiter.check(400) == Allow()
    async with anyio.create_task_group() as tg:
        tg.start_soon(limiter.acquire, 401)
        await settle()
        assert limiter.waiting == 1  # one token over: it waits
        clock.advance(60.0)
    await limiter.acquire(599)
    assert (limiter.window_requests(), limiter.window_tokens()) == (2, 1_000)
    assert await limiter.check(0) == Wait(60.0)


async def test_concurrency_only_wait_is_zero_and_a_release_admits_the_next() -> None:
    limiter, _ = limiter_on_fake_clock(max_concurrent=1)
    permit = await limiter.acquire()
    assert await limiter.check() == Wait(0.0)
    admitted: list[Permit] = []

    async def acquire() -> None:
        admitted.append(await limiter.acquire())

    async with anyio.create_task_group() as tg:
        tg.start_soon(acquire)
        await settle()
        assert (limiter.waiting, admitted) == (1, [])
        permit.release()
    assert len(admitted) == 1
    assert (limiter.in_flight, limiter.waiting) == (1, 0)


# --- acquire: oversized and invalid requests ----------------------------------------------


async def test_oversized_request_is_rejected_at_once_with_guidance() -> None:
    limiter, _ = limiter_on_fake_clock(requests_per_minute=100, tokens_per_minute=500)

    assert await limiter.check(600) == Wait(math.inf)
    with pytest.raises(InvalidRequestError) as caught:
        await limiter.acquire(600)

    error = caught.value
    assert error.field == "tokens"
    for expected in ("600", "500 tokens per minute", "split", "tokens_per_minute"):
        assert expected in error.message
    assert "allow_oversized=True" in error.message
    assert (limiter.window_requests(), limiter.in_flight, limiter.waiting) == (0, 0, 0)


async def test_allow_oversized_admits_a_big_request_alone() -> None:
    limiter, clock = limiter_on_fake_clock(tokens_per_minute=500, allow_oversized=True)
    await limiter.acquire(100)
    assert await limiter.check(600) == Wait(60.0)

    async with anyio.create_task_group() as tg:
        tg.start_soon(limiter.acquire, 600)
        await settle()
        assert limiter.waiting == 1
        clock.advance(60.0)
    assert limiter.window_tokens() == 600
    assert await limiter.check(0) == Wait(60.0)  # nothing fits an over-full window


@pytest.mark.parametrize("tokens", [-1, 1.5, "10", True])
async def test_invalid_token_counts_are_rejected(tokens: Any) -> None:
    limiter, _ = limiter_on_fake_clock(tokens_per_minute=500)
    with pytest.raises(InvalidRequestError) as from_acquire:
        await limiter.acquire(tokens)
    with pytest.raises(InvalidRequestError) as from_check:
        await limiter.check(tokens)
    permit = await limiter.acquire(1)
    with pytest.raises(InvalidRequestError) as from_usage:
        permit.record_usage(tokens)
    assert (from_acquire.value.field, from_check.value.field) == ("tokens", "tokens")
    assert from_usage.value.field == "actual_tokens"


# --- permits ------------------------------------------------------------------------------


async def test_release_is_idempotent_and_async_with_releases() -> None:
    limiter, _ = limiter_on_fake_clock(max_concurrent=2)
    permit = await limiter.acquire(10)
    permit.release()
    permit.release()
    assert (permit.released, limiter.in_flight) == (True, 0)

    async with await limiter.acquire(20) as held:
        assert (held.tokens, held.released, limiter.in_flight) == (20, False, 1)
    assert (held.released, limiter.in_flight) == (True, 0)


async def test_record_usage_corrects_the_window_before_and_after_release() -> None:
    limiter, clock = limiter_on_fake_clock(tokens_per_minute=1_000)
    first = await limiter.acquire(100)
    clock.advance(30.0)
    first.record_usage(700)  # counts from its admission at 0, not from now
    assert (first.tokens, limiter.window_tokens()) == (700, 700)
    assert await limiter.check(400) == Wait(30.0)

    first.release()
    first.record_usage(200)
    assert limiter.window_tokens() == 200
    assert await limiter.check(400) == Allow()

    clock.advance(30.0)  # the entry has left the window: corrections no longer count
    first.record_usage(900)
    assert (first.tokens, limiter.window_tokens()) == (900, 0)


async def test_record_usage_below_the_estimate_wakes_a_waiter() -> None:
    limiter, _ = limiter_on_fake_clock(tokens_per_minute=1_000)
    permit = await limiter.acquire(900)
    async with anyio.create_task_group() as tg:
        tg.start_soon(limiter.acquire, 500)
        await settle()
        assert limiter.waiting == 1
        permit.record_usage(400)
    assert (limiter.waiting, limiter.window_tokens()) == (0, 900)


# --- fairness and cancellation ------------------------------------------------------------


async def test_a_small_request_does_not_overtake_an_earlier_big_one() -> None:
    limiter, clock = limiter_on_fake_clock(tokens_per_minute=1_000)
    await limiter.acquire(800)
    order: list[str] = []

    async def client(name: str, tokens: int) -> None:
        await limiter.acquire(tokens)
        order.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(client, "big", 500)
        await settle()
        tg.start_soon(client, "small", 100)  # fits now, but "big" asked first
        await settle()
        assert (order, limiter.waiting) == ([], 2)
        assert await limiter.check(100) == Wait(60.0)  # counts the queue ahead of it
        clock.advance(60.0)
    assert order == ["big", "small"]


@pytest.mark.parametrize("cancelled", [0, 1])
async def test_cancelling_a_waiter_removes_it_and_the_rest_proceed(cancelled: int) -> None:
    limiter, clock = limiter_on_fake_clock(tokens_per_minute=1_000)
    await limiter.acquire(800)
    order: list[int] = []
    scopes: list[anyio.CancelScope] = []

    async def client(index: int, tokens: int) -> None:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            await limiter.acquire(tokens)
            order.append(index)

    async with anyio.create_task_group() as tg:
        for index, tokens in enumerate([900, 150, 50]):
            tg.start_soon(client, index, tokens)
            await settle()
        scopes[cancelled].cancel()
        await settle()
        if cancelled == 0:  # the big head is gone: the small ones fit now
            assert (order, limiter.waiting) == ([1, 2], 0)
        else:
            assert (order, limiter.waiting) == ([], 2)
            clock.advance(60.0)
    assert order == ([1, 2] if cancelled == 0 else [0, 2])
    assert clock.sleepers == 0


# --- adaptive -----------------------------------------------------------------------------


def adaptive_on_fake_clock(**config: Any) -> tuple[AdaptiveRateLimiter, FakeClock]:
    clock = FakeClock()
    return AdaptiveRateLimiter(RateLimitConfig(**config), clock=clock), clock


async def test_retry_after_pauses_everyone_until_it_has_passed() -> None:
    limiter, clock = adaptive_on_fake_clock(requests_per_minute=1_000)
    await limiter.record_rate_limit(retry_after=30.0)
    assert await limiter.check() == Wait(30.0)
    assert limiter.stats().paused_until == 30.0

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(limiter.acquire)
        await settle()
        clock.advance(29.5)
        await settle()
        assert (limiter.waiting, limiter.in_flight) == (3, 0)
        clock.advance(0.5)
    assert (limiter.waiting, limiter.in_flight) == (0, 3)
    assert limiter.stats().paused_until is None


async def test_a_shorter_retry_after_does_not_shorten_the_pause() -> None:
    limiter, _ = adaptive_on_fake_clock()
    await limiter.record_rate_limit(retry_after=30.0)
    await limiter.record_rate_limit(retry_after=5.0)
    await limiter.record_rate_limit()
    assert await limiter.check() == Wait(30.0)


async def test_decrease_is_multiplicative_and_recovery_additive() -> None:
    limiter, _ = adaptive_on_fake_clock(
        requests_per_minute=100, tokens_per_minute=10_000, burst_allowance=10
    )
    await limiter.record_rate_limit()
    await limiter.record_rate_limit()
    stats = limiter.stats()
    assert (stats.multiplier, stats.requests_per_minute, stats.tokens_per_minute) == (
        0.25,
        25,
        2_500,
    )
    assert stats.burst_allowance == 2  # 10 x 0.25, rounded down

    multipliers = []
    for _ in range(16):
        limiter.record_success()
        multipliers.append(limiter.multiplier)
    assert multipliers[:5] == [0.3, 0.35, 0.4, 0.45, 0.5]
    assert multipliers[-2:] == [1.0, 1.0]
    assert limiter.stats().requests_per_minute == 100

    for _ in range(10):
        await limiter.record_rate_limit()
    stats = limiter.stats()
    assert (stats.multiplier, stats.requests_per_minute) == (0.1, 10)  # min_multiplier
    assert (stats.rate_limits, stats.successes) == (12, 16)


async def test_effective_budgets_round_down_but_stay_positive() -> None:
    limiter, _ = adaptive_on_fake_clock(requests_per_minute=3, tokens_per_minute=7)
    for _ in range(5):
        await limiter.record_rate_limit()
    stats = limiter.stats()
    assert (stats.multiplier, stats.requests_per_minute, stats.tokens_per_minute) == (0.1, 1, 1)


async def test_recovery_admits_a_waiter_without_waiting_for_the_window() -> None:
    limiter, _ = adaptive_on_fake_clock(requests_per_minute=10)
    await limiter.record_rate_limit()  # 5 per minute now
    for _ in range(5):
        await limiter.acquire()
    assert await limiter.check() == Wait(60.0)

    async with anyio.create_task_group() as tg:
        tg.start_soon(limiter.acquire)
        await settle()
        limiter.record_success()  # 0.55: still 5
        await settle()
        assert limiter.waiting == 1
        limiter.record_success()  # 0.6: 6 per minute
    assert (limiter.waiting, limiter.window_requests()) == (0, 6)


async def test_a_request_above_the_reduced_budget_is_admitted_alone() -> None:
    limiter, clock = adaptive_on_fake_clock(tokens_per_minute=1_000)
    await limiter.record_rate_limit()  # 500 tokens per minute now
    await limiter.acquire(100)
    assert await limiter.check(800) == Wait(60.0)  # within the configured 1,000
    with pytest.raises(InvalidRequestError):
        await limiter.acquire(1_200)  # never fits, even at full budget
    clock.advance(60.0)
    await limiter.acquire(800)
    assert await limiter.check(1) == Wait(60.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("decrease_factor", 0.0),
        ("decrease_factor", 1.5),
        ("recovery_step", 0.0),
        ("min_multiplier", -1.0),
    ],
)
def test_adaptive_parameters_are_validated(name: str, value: float) -> None:
    parameters: dict[str, Any] = {name: value}
    with pytest.raises(ConfigurationError) as caught:
        AdaptiveRateLimiter(RateLimitConfig(), **parameters)
    assert caught.value.field == name


@pytest.mark.parametrize("retry_after", [-1.0, math.inf, math.nan])
async def test_retry_after_must_be_finite_and_not_negative(retry_after: float) -> None:
    limiter, _ = adaptive_on_fake_clock()
    with pytest.raises(InvalidRequestError) as caught:
        await limiter.record_rate_limit(retry_after)
    assert caught.value.field == "retry_after"
    assert limiter.stats().rate_limits == 0


async def test_stats_report_usage_and_counters() -> None:
    limiter, _ = adaptive_on_fake_clock(requests_per_minute=10, max_concurrent=3)
    permit = await limiter.acquire(42)
    limiter.record_success()
    stats = limiter.stats()
    assert stats == RateLimiterStats(
        multiplier=1.0,
        requests_per_minute=10,
        tokens_per_minute=None,
        burst_allowance=0,
        rate_limits=0,
        successes=1,
        paused_until=None,
        in_flight=1,
        waiting=0,
        window_requests=1,
        window_tokens=42,
    )
    assert dataclasses.is_dataclass(stats)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.multiplier = 0.5  # type: ignore[misc]
    permit.release()


# --- many tasks -----------------------------------------------------------------------------


async def test_two_hundred_tasks_keep_every_limit_in_order_and_release_everything() -> None:
    rpm, burst, tpm, concurrent, tasks = 20, 3, 4_000, 4, 200
    clock = FakeClock()
    config = RateLimitConfig(
        requests_per_minute=rpm,
        tokens_per_minute=tpm,
        max_concurrent=concurrent,
        burst_allowance=burst,
    )
    limiter = RateLimiter(config, clock=clock)
    rng = random.Random(75)
    estimates = [rng.choice([0, 10, 80, 300, 1_200]) for _ in range(tasks)]
    holds = [rng.uniform(0.1, 6.0) for _ in range(tasks)]
    cancel_while_waiting = {i for i in range(tasks) if i % 10 == 3}
    cancel_while_holding = {i for i in range(tasks) if i % 10 == 7}
    state: dict[int, str] = {}
    scopes: dict[int, anyio.CancelScope] = {}
    admitted: dict[int, list[float]] = {}  # index -> [admission time, tokens counted]
    max_in_flight = 0

    def tokens_in_window(now: float) -> float:  # an admission at t counts while now < t + 60
        return sum(tokens for at, tokens in admitted.values() if now < at + 60.0)

    async def client(index: int, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        nonlocal max_in_flight
        with anyio.CancelScope() as scope:
            scopes[index] = scope
            state[index] = "waiting"
            task_status.started()
            try:
                permit = await limiter.acquire(estimates[index])
            except anyio.get_cancelled_exc_class():
                state[index] = "cancelled while waiting"
                raise
            now = clock.now()
            admitted[index] = [now, estimates[index]]
            assert tokens_in_window(now) <= tpm
            assert limiter.in_flight <= concurrent
            max_in_flight = max(max_in_flight, limiter.in_flight)
            state[index] = "holding"
            async with permit:
                try:
                    await clock.sleep(holds[index])
                except anyio.get_cancelled_exc_class():
                    state[index] = "cancelled while holding"
                    raise
                actual = rng.randint(0, estimates[index])
                permit.record_usage(actual)
                admitted[index][1] = actual
            state[index] = "done"

    async with anyio.create_task_group() as tg:
        for index in range(tasks):
            await tg.start(client, index)  # acquire is called in index order
        for step in range(5_000):
            await settle()
            holding = [i for i, s in state.items() if s == "holding"]
            waiting = [i for i, s in state.items() if s == "waiting"]
            assert limiter.in_flight == len(holding) <= concurrent
            assert limiter.waiting == len(waiting)
            if holding and waiting:  # FIFO: nobody got in ahead of an earlier waiter
                assert max(admitted) < min(waiting)
            to_cancel = [i for i in waiting if i in cancel_while_waiting and i // 8 <= step]
            to_cancel += [i for i in holding if i in cancel_while_holding]
            for index in to_cancel:
                scopes[index].cancel()
            if to_cancel:
                continue
            if not waiting and not holding:
                break
            deadline = clock.next_deadline
            assert deadline is not None, "every task waits, but nobody sleeps on the clock"
            clock.advance_to(deadline)
        else:
            pytest.fail("the clients did not finish")

    assert (limiter.in_flight, limiter.waiting, clock.sleepers) == (0, 0, 0)
    outcomes = sorted(set(state.values()))
    assert outcomes == ["cancelled while holding", "cancelled while waiting", "done"]
    times = [admitted[i][0] for i in sorted(admitted)]
    assert times == sorted(times)  # admitted in the order acquire was called
    in_window = [sum(1 for other in times if other <= t < other + 60.0) for t in times]
    assert max(in_window) == rpm + burst  # the request budget was reached, and never passed
    assert max_in_flight == concurrent  # so was the concurrency limit
