"""Property tests: random budgets and random operation sequences never break the promises.

Each example runs a whole scenario on a `FakeClock` with ``anyio.run`` (hypothesis and
async fixtures do not mix), under asyncio or trio as drawn. A plain model of the window
(admission time and tokens of every permit) is kept beside the limiter and compared.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from tachikoma_backends_core.clock import FakeClock
from tachikoma_backends_core.errors import InvalidRequestError
from tachikoma_backends_core.rate_limit import (
    AdaptiveRateLimiter,
    Allow,
    Permit,
    RateLimitConfig,
    RateLimiter,
    Wait,
)

BACKENDS = st.sampled_from(["asyncio", "trio"])


async def settle() -> None:
    """Let every other task run until it blocks (see test_rate_limit.settle for why)."""
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


@st.composite
def configs(draw: st.DrawFn, *, concurrency: bool = True) -> RateLimitConfig:
    return RateLimitConfig(
        requests_per_minute=draw(st.none() | st.integers(1, 4)),
        tokens_per_minute=draw(st.none() | st.integers(1, 700)),
        max_concurrent=draw(st.none() | st.integers(1, 4)) if concurrency else None,
        burst_allowance=draw(st.integers(0, 3)),
        allow_oversized=draw(st.booleans()),
    )


TOKENS = st.integers(0, 1_200)
SMALL_TOKENS = st.integers(0, 300)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("acquire"), TOKENS),
        st.tuples(st.just("acquire"), SMALL_TOKENS),
        st.tuples(st.just("acquire"), SMALL_TOKENS),
        st.tuples(st.just("advance"), st.floats(0.0, 90.0)),
        st.tuples(st.just("release"), st.integers(0, 99)),
        st.tuples(st.just("usage"), st.integers(0, 99), TOKENS),
        st.tuples(st.just("rate_limit"), st.none() | st.floats(0.0, 120.0)),
        st.tuples(st.just("success"), st.just(0)),
    ),
    min_size=3,
    max_size=40,
)


@dataclass
class Admission:
    index: int
    at: float
    tokens: int
    permit: Permit


@dataclass
class Model:
    """What the limiter should hold, kept by hand."""

    admissions: list[Admission] = field(default_factory=list)
    asked: list[int] = field(default_factory=list)  # tokens, by call index
    waiting: list[int] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    paused_until: float = 0.0

    def in_window(self, now: float) -> list[Admission]:  # counts while now < at + 60
        return [a for a in self.admissions if now < a.at + 60.0]


def budgets(limiter: RateLimiter) -> tuple[int | None, int | None]:
    """The request and token budgets of one window, as in force now."""
    if isinstance(limiter, AdaptiveRateLimiter):
        stats = limiter.stats()
        per_minute, burst, tokens = (
            stats.requests_per_minute,
            stats.burst_allowance,
            stats.tokens_per_minute,
        )
    else:
        config = limiter.config
        per_minute, burst = config.requests_per_minute, config.burst_allowance
        tokens = config.tokens_per_minute
    return (None if per_minute is None else per_minute + burst), tokens


@settings(deadline=None, max_examples=150)
@given(config=configs(), adaptive=st.booleans(), operations=OPERATIONS, backend=BACKENDS)
def test_random_operations_keep_every_promise(
    config: RateLimitConfig,
    adaptive: bool,
    operations: list[tuple[Any, ...]],
    backend: str,
) -> None:
    clock = FakeClock()
    limiter = (
        AdaptiveRateLimiter(config, clock=clock) if adaptive else RateLimiter(config, clock=clock)
    )
    model = Model()

    async def client(index: int, tokens: int, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        model.waiting.append(index)
        task_status.started()
        try:
            permit = await limiter.acquire(tokens)
        except InvalidRequestError:
            model.rejected.append(index)
            return
        finally:
            model.waiting.remove(index)
        now = clock.now()
        assert now >= model.paused_until
        requests_budget, tokens_budget = budgets(limiter)
        others = model.in_window(now)
        if requests_budget is not None:
            assert len(others) + 1 <= requests_budget
        if tokens_budget is not None:
            already = sum(a.tokens for a in others)
            if tokens > tokens_budget:  # oversized: only alone
                assert already == 0
            else:
                assert already + tokens <= tokens_budget
        if config.max_concurrent is not None:
            assert limiter.in_flight <= config.max_concurrent
        model.admissions.append(Admission(index, now, tokens, permit))

    def fits(tokens: int, now: float) -> bool:
        """Whether the model says a request of ``tokens`` could be admitted right now."""
        requests_budget, tokens_budget = budgets(limiter)
        window = model.in_window(now)
        used = sum(a.tokens for a in window)
        return (
            now >= model.paused_until
            and (requests_budget is None or len(window) < requests_budget)
            and (tokens_budget is None or used + tokens <= tokens_budget or used == 0)
            and (config.max_concurrent is None or len(held()) < config.max_concurrent)
        )

    def held() -> list[Admission]:
        return [a for a in model.admissions if not a.permit.released]

    async def scenario() -> None:
        calls = 0
        async with anyio.create_task_group() as tg:
            for operation in operations:
                match operation:
                    case ("acquire", int(tokens)):
                        model.asked.append(tokens)
                        decision = await limiter.check(tokens)
                        await tg.start(client, calls, tokens)
                        await settle()  # check and acquire agree:
                        if decision == Allow():
                            assert model.admissions[-1].index == calls
                        elif decision == Wait(math.inf):
                            assert model.rejected[-1] == calls
                        else:
                            assert model.waiting[-1] == calls
                        calls += 1
                    case ("advance", float(seconds)):
                        clock.advance(seconds)
                    case ("release", int(pick)) if model.admissions:
                        model.admissions[pick % len(model.admissions)].permit.release()
                    case ("usage", int(pick), int(actual)) if model.admissions:
                        admission = model.admissions[pick % len(model.admissions)]
                        admission.permit.record_usage(actual)
                        admission.tokens = actual
                    case ("rate_limit", retry_after) if isinstance(limiter, AdaptiveRateLimiter):
                        assert retry_after is None or isinstance(retry_after, float)
                        await limiter.record_rate_limit(retry_after)
                        if retry_after is not None:
                            until = clock.now() + retry_after
                            model.paused_until = max(model.paused_until, until)
                    case ("success", _) if isinstance(limiter, AdaptiveRateLimiter):
                        limiter.record_success()
                await settle()
                now = clock.now()
                window = model.in_window(now)
                assert limiter.window_requests() == len(window)
                assert limiter.window_tokens() == sum(a.tokens for a in window)
                assert limiter.in_flight == len(held())
                if config.max_concurrent is not None:
                    assert limiter.in_flight <= config.max_concurrent
                assert limiter.waiting == len(model.waiting)
                admitted = [a.index for a in model.admissions]
                assert admitted == sorted(admitted)  # first come, first served
                if model.waiting:
                    first = min(model.waiting)
                    assert max(admitted, default=-1) < first
                    assert not fits(model.asked[first], now), "the first in line was not woken"

            # Liveness: with every permit given back, time alone admits every waiter.
            for _ in range(500):
                await settle()
                if held():
                    for admission in held():
                        admission.permit.release()
                    continue
                if not model.waiting:
                    break
                deadline = clock.next_deadline
                assert deadline is not None, "a waiter is stuck with nothing to wait for"
                clock.advance_to(deadline)
            assert not model.waiting
            for admission in held():
                admission.permit.release()

        asked = [operation[1] for operation in operations if operation[0] == "acquire"]
        budget = config.tokens_per_minute
        never_fit = {
            index
            for index, tokens in enumerate(asked)
            if budget is not None and tokens > budget and not config.allow_oversized
        }
        assert set(model.rejected) == never_fit
        assert (limiter.in_flight, limiter.waiting, clock.sleepers) == (0, 0, 0)

    anyio.run(scenario, backend=backend)


@settings(deadline=None, max_examples=150)
@given(
    config=configs(concurrency=False),
    back_off=st.none() | st.tuples(st.integers(1, 3), st.none() | st.floats(0.0, 90.0)),
    steps=st.lists(
        st.tuples(st.floats(0.0, 40.0), SMALL_TOKENS, st.none() | TOKENS), min_size=1, max_size=12
    ),
    asked=TOKENS,
    backend=BACKENDS,
)
def test_wait_delay_is_exact(
    config: RateLimitConfig,
    back_off: tuple[int, float | None] | None,
    steps: list[tuple[float, int, int | None]],
    asked: int,
    backend: str,
) -> None:
    """Sleeping for ``Wait.delay`` makes the request fit; anything much shorter does not.

    With ``back_off``, an adaptive limiter is told of that many 429s (the last with that
    ``retry_after``) after the steps: its budgets shrink below what the window already
    holds, and a pause may be on.
    """

    async def scenario() -> None:
        clock = FakeClock()
        limiter = RateLimiter(config, clock=clock)
        if back_off is not None:
            limiter = AdaptiveRateLimiter(config, clock=clock)
        for advance, tokens, actual in steps:
            clock.advance(advance)
            if await limiter.check(tokens) == Allow():
                permit = await limiter.acquire(tokens)
                assert limiter.waiting == 0
                if actual is not None:
                    permit.record_usage(actual)
        if back_off is not None:
            assert isinstance(limiter, AdaptiveRateLimiter)
            count, retry_after = back_off
            for _ in range(count - 1):
                await limiter.record_rate_limit()
            await limiter.record_rate_limit(retry_after)
        start = clock.now()
        decision = await limiter.check(asked)
        if decision == Allow():
            return
        assert isinstance(decision, Wait)
        if decision.delay == float("inf"):
            assert config.tokens_per_minute is not None
            assert asked > config.tokens_per_minute
            assert not config.allow_oversized
            return
        assert 0.0 < decision.delay <= 90.0 + 1e-9  # 60 s of window, or the longest pause
        if decision.delay > 1e-6:
            clock.advance_to(start + decision.delay - 1e-7)
            assert isinstance(await limiter.check(asked), Wait)
        clock.advance_to(start + decision.delay)
        assert await limiter.check(asked) == Allow()

    anyio.run(scenario, backend=backend)
