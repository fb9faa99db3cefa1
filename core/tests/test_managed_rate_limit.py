"""A rate limiter in front of a backend: permits per attempt, held by streams, usage wins."""

from __future__ import annotations

import anyio
import pytest

from tachikoma_backend_mock import MockBackend, MockResponse
from tachikoma_backends_core import (
    AdaptiveRateLimiter,
    CompletionRequest,
    FakeClock,
    Hooks,
    ManagedBackend,
    Message,
    RateLimitConfig,
    RateLimiter,
    RateLimitError,
    RetryPolicy,
    ServerError,
    Usage,
)

pytestmark = pytest.mark.anyio

REQUEST = CompletionRequest(messages=[Message.user("Hi")], max_tokens=100)
LIMITS = RateLimitConfig(requests_per_minute=100, tokens_per_minute=100_000, max_concurrent=2)


def _limited(
    limiter: RateLimiter, **options: object
) -> tuple[ManagedBackend[MockBackend], MockBackend]:
    mock = MockBackend()
    return ManagedBackend(mock, rate_limiter=limiter, hooks=Hooks(), **options), mock  # type: ignore[arg-type]


async def test_the_provider_reported_usage_replaces_the_estimate() -> None:
    limiter = RateLimiter(LIMITS, clock=FakeClock())
    backend, mock = _limited(limiter)
    mock.queue_response(MockResponse.text("ok").with_usage(Usage(7, 3)))

    await backend.complete(REQUEST)

    assert limiter.in_flight == 0
    assert limiter.window_requests() == 1
    assert limiter.window_tokens() == 10  # not the estimate (prompt + max_tokens 100)


async def test_a_stream_holds_its_permit_until_it_is_closed() -> None:
    limiter = RateLimiter(LIMITS, clock=FakeClock())
    backend, mock = _limited(limiter)
    mock.queue_response(MockResponse.text("one two three").with_usage(Usage(4, 5)))

    stream = await backend.complete_stream(REQUEST)
    assert limiter.in_flight == 1
    async with stream:
        await stream.__anext__()
        assert limiter.in_flight == 1
    assert limiter.in_flight == 0
    assert stream.usage == Usage(4, 0)  # what the provider reported before the end
    assert limiter.window_requests() == 1


async def test_a_finished_stream_records_the_final_usage() -> None:
    limiter = RateLimiter(LIMITS, clock=FakeClock())
    backend, mock = _limited(limiter)
    mock.queue_response(MockResponse.text("one two three").with_usage(Usage(4, 5)))

    async with await backend.complete_stream(REQUEST) as stream:
        response = await stream.collect()

    assert (response.usage, stream.usage) == (Usage(4, 5), Usage(4, 5))
    assert (limiter.in_flight, limiter.window_tokens()) == (0, 9)


async def test_concurrency_is_bounded_by_the_limiter() -> None:
    limiter = RateLimiter(LIMITS, clock=FakeClock())
    mock = MockBackend(chunk_delay=0.001)
    backend = ManagedBackend(mock, rate_limiter=limiter, hooks=Hooks())
    peak = 0

    async def one() -> None:
        nonlocal peak
        async with await backend.complete_stream(REQUEST) as stream:
            async for _ in stream:
                peak = max(peak, limiter.in_flight)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            for _ in range(6):
                group.start_soon(one)
    assert peak == 2
    assert (limiter.in_flight, limiter.waiting) == (0, 0)


async def test_each_attempt_takes_a_permit_and_failures_release_it() -> None:
    clock = FakeClock(auto_advance=True)
    limiter = RateLimiter(LIMITS, clock=clock)
    backend, mock = _limited(limiter, retry_policy=RetryPolicy(max_attempts=3, clock=clock))
    mock.queue_failure(ServerError("blip", provider="mock"))
    mock.queue_response(MockResponse.text("ok"))

    await backend.complete(REQUEST)

    assert limiter.window_requests() == 2  # the failed attempt counted against the budget
    assert limiter.in_flight == 0


async def test_an_adaptive_limiter_learns_from_rate_limits_and_successes() -> None:
    clock = FakeClock(auto_advance=True)
    limiter = AdaptiveRateLimiter(LIMITS, clock=clock)
    backend, mock = _limited(limiter)
    mock.queue_failure(RateLimitError("slow down", retry_after=30, provider="mock"))

    with pytest.raises(RateLimitError):
        await backend.complete(REQUEST)
    slowed = limiter.stats()
    assert slowed.multiplier < 1.0
    assert slowed.paused_until == 30.0

    mock.queue_response(MockResponse.text("ok"))
    await backend.complete(REQUEST)  # waits out the pause on the fake clock
    assert clock.now() >= 30.0
    assert limiter.stats().multiplier > slowed.multiplier


async def test_with_a_limiter_alone_the_stream_is_handed_over_and_settled_on_close() -> None:
    limiter = RateLimiter(LIMITS, clock=FakeClock())
    backend, mock = _limited(limiter)
    upstream = await mock.complete_stream(REQUEST)
    await upstream.aclose()
    mock.queue_response(MockResponse.text("one two").with_usage(Usage(4, 5)))
    mock.queue_response(MockResponse.text("left early").with_usage(Usage(4, 5)))

    stream = await backend.complete_stream(REQUEST)
    assert type(stream) is type(upstream), "no stream wrapped around it: nothing per chunk"
    assert limiter.in_flight == 1
    await stream.collect()
    assert (limiter.in_flight, limiter.window_tokens()) == (0, 9)

    async with await backend.complete_stream(REQUEST) as early:
        await early.__anext__()
    assert limiter.in_flight == 0
    assert limiter.window_requests() == 2
