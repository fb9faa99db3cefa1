"""The core retry loop, through `ManagedBackend` over the mock, on a fake clock."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tachikoma_backend_mock import MockBackend, MockResponse
from tachikoma_backends_core import (
    AuthenticationError,
    BackendError,
    BackendTimeoutError,
    CompletionRequest,
    CompletionResponse,
    ConfigurationError,
    Message,
    OverloadedError,
    RateLimitError,
    ServerError,
    StreamProtocolError,
    registry,
)
from tachikoma_backends_core.backend import Backend, BackendCapabilities, BackendInfo
from tachikoma_backends_core.clock import FakeClock
from tachikoma_backends_core.hooks import Hooks
from tachikoma_backends_core.managed import ManagedBackend
from tachikoma_backends_core.retry import RetryPolicy
from tachikoma_backends_core.streaming import CompletionStream

pytestmark = pytest.mark.anyio

REQUEST = CompletionRequest(messages=[Message.user("Hi")])


def _managed(clock: FakeClock, **policy: object) -> tuple[ManagedBackend[MockBackend], MockBackend]:
    mock = MockBackend()
    settings: dict[str, object] = {"max_attempts": 3, "clock": clock, **policy}
    managed = ManagedBackend(mock, retry_policy=RetryPolicy(**settings), hooks=Hooks())  # type: ignore[arg-type]
    return managed, mock


async def test_rate_limit_with_retry_after_waits_exactly_that_long_then_succeeds() -> None:
    clock = FakeClock(auto_advance=True)
    backend, mock = _managed(clock)
    mock.queue_failure(RateLimitError("slow down", retry_after=2, provider="mock"))
    mock.queue_response(MockResponse.text("made it"))

    response = await backend.complete(REQUEST)

    assert response.content == "made it"
    assert clock.slept == [2.0]
    assert clock.now() == 2.0


async def test_authentication_error_is_not_retried() -> None:
    clock = FakeClock(auto_advance=True)
    backend, mock = _managed(clock)
    mock.queue_failure(AuthenticationError("bad key", provider="mock"))
    mock.queue_response(MockResponse.text("never used"))

    with pytest.raises(AuthenticationError):
        await backend.complete(REQUEST)

    assert clock.slept == []
    assert mock.get_requests() == []  # the queued reply is still there
    assert (await backend.complete(REQUEST)).content == "never used"


async def test_retries_stop_after_max_attempts_with_the_last_error() -> None:
    clock = FakeClock(auto_advance=True)
    backend, mock = _managed(clock, base_delay=1.0, max_delay=10.0, jitter=0.0)
    mock.set_failure(ServerError("boom", provider="mock", status_code=500))

    with pytest.raises(ServerError, match="boom"):
        await backend.complete(REQUEST)

    assert clock.slept == [1.0, 2.0]  # 3 attempts, exponential back-off between them


async def test_a_wait_past_the_total_timeout_is_not_started() -> None:
    clock = FakeClock(auto_advance=True)
    backend, mock = _managed(clock, total_timeout=5.0)
    mock.queue_failure(RateLimitError("slow down", retry_after=10, provider="mock"))
    mock.queue_response(MockResponse.text("too late"))

    with pytest.raises(RateLimitError):
        await backend.complete(REQUEST)

    assert clock.slept == []
    assert clock.now() == 0.0


async def test_back_off_stops_when_the_total_timeout_would_pass() -> None:
    clock = FakeClock(auto_advance=True)
    backend, mock = _managed(
        clock, max_attempts=10, base_delay=1.0, max_delay=10.0, jitter=0.0, total_timeout=2.5
    )
    mock.set_failure(OverloadedError("busy", provider="mock", status_code=529))

    with pytest.raises(OverloadedError):
        await backend.complete(REQUEST)

    assert clock.slept == [1.0]  # the next wait (2 s) would end at 3 s > 2.5 s
    assert clock.now() <= 2.5


class _Hanging(Backend):
    """Answers nothing, ever: only the total timeout can end a call."""

    @property
    def info(self) -> BackendInfo:
        return BackendInfo(
            name="hanging",
            version="0",
            default_model="m",
            capabilities=BackendCapabilities(max_context_tokens=10, max_output_tokens=10),
        )

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def complete_stream(self, request: CompletionRequest) -> CompletionStream:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def health_check(self) -> bool:
        return True


@pytest.mark.parametrize("method", ["complete", "complete_stream"])
async def test_an_attempt_running_at_the_deadline_ends_in_a_typed_timeout(method: str) -> None:
    backend = ManagedBackend(
        _Hanging(), retry_policy=RetryPolicy(total_timeout=0.05), hooks=Hooks()
    )
    with anyio.fail_after(5), pytest.raises(BackendTimeoutError, match="total_timeout"):
        await getattr(backend, method)(REQUEST)


async def test_a_stream_failing_mid_way_is_not_retried() -> None:
    clock = FakeClock(auto_advance=True)
    backend, mock = _managed(clock)
    broken = MockResponse.text("one two three four").with_stream_failure(
        ServerError("dropped", provider="mock", status_code=500), after_chunks=1
    )
    mock.queue_response(broken)
    mock.queue_response(MockResponse.text("second reply, must stay queued"))

    async with await backend.complete_stream(REQUEST) as stream:
        with pytest.raises(ServerError, match="dropped"):
            await stream.collect()

    assert clock.slept == []
    assert len(mock.get_calls()) == 1
    assert (await backend.complete(REQUEST)).content == "second reply, must stay queued"


async def test_a_stream_failing_before_it_starts_is_retried() -> None:
    clock = FakeClock(auto_advance=True)
    backend, mock = _managed(clock, base_delay=0.5, jitter=0.0)
    mock.queue_failure(OverloadedError("busy", provider="mock", status_code=529))
    mock.queue_response(MockResponse.text("streamed after a retry"))

    async with await backend.complete_stream(REQUEST) as stream:
        response = await stream.collect()

    assert response.content == "streamed after a retry"
    assert clock.slept == [0.5]


class _Buggy(_Hanging):
    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        raise KeyError("choices")


async def test_a_plugin_bug_reaches_the_user_as_a_typed_error() -> None:
    backend = ManagedBackend(_Buggy(), retry_policy=RetryPolicy(), hooks=Hooks())
    with pytest.raises(BackendError, match="unexpected KeyError") as raised:
        await backend.complete(REQUEST)
    assert type(raised.value) is BackendError
    assert raised.value.retryable is False
    assert isinstance(raised.value.__cause__, KeyError)


async def test_max_retries_in_the_plugin_config_sizes_the_core_loop() -> None:
    assert registry.create("mock").retry_policy.max_attempts == 1  # type: ignore[attr-defined]
    backend = registry.create("mock", max_retries=2)
    assert isinstance(backend, ManagedBackend)
    assert backend.retry_policy.max_attempts == 3
    with pytest.raises(ConfigurationError) as raised:
        registry.create("mock", max_retries=-1)
    assert raised.value.field == "max_retries"


async def test_truncated_stream_is_a_protocol_error_and_not_retried() -> None:
    clock = FakeClock(auto_advance=True)
    backend, mock = _managed(clock)
    mock.queue_response(MockResponse.text("cut short").with_stream_failure(None, after_chunks=1))
    async with await backend.complete_stream(REQUEST) as stream:
        with pytest.raises(StreamProtocolError):
            await stream.collect()
    assert clock.slept == []


def test_wrapping_a_managed_backend_does_not_nest() -> None:
    inner = MockBackend()
    once = ManagedBackend(inner, hooks=Hooks())
    twice = ManagedBackend(once, retry_policy=RetryPolicy(max_attempts=4), hooks=Hooks())
    assert twice.inner is inner
    assert twice.with_options(retry_policy=None).retry_policy.max_attempts == 1
    assert twice.with_options().retry_policy.max_attempts == 4


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"base_delay": -1.0}, "base_delay"),
        ({"base_delay": 5.0, "max_delay": 1.0}, "max_delay"),
        ({"jitter": 1.5}, "jitter"),
        ({"total_timeout": 0.0}, "total_timeout"),
    ],
)
def test_invalid_policies_are_configuration_errors(settings: dict[str, float], field: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        RetryPolicy(**settings)  # type: ignore[arg-type]
    assert raised.value.field == field


@given(
    base=st.floats(0.0, 5.0),
    cap=st.floats(5.0, 60.0),
    jitter=st.floats(0.0, 1.0),
    retry=st.integers(1, 30),
)
def test_back_off_grows_then_caps_within_the_jitter_band(
    base: float, cap: float, jitter: float, retry: int
) -> None:
    policy = RetryPolicy(base_delay=base, max_delay=cap, jitter=jitter)
    ceiling = min(cap, base * 2.0 ** (retry - 1))
    assert ceiling * (1 - jitter) - 1e-9 <= policy.backoff(retry) <= ceiling + 1e-9


def test_retry_after_wins_over_back_off_and_non_retryable_errors_give_up() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=1.0, jitter=0.0)
    assert policy.delay_before_retry(RateLimitError("x", retry_after=7.5), 1) == 7.5
    assert policy.delay_before_retry(RateLimitError("x"), 2) == 2.0
    assert policy.delay_before_retry(RateLimitError("x"), 3) is None  # attempts used up
    assert policy.delay_before_retry(AuthenticationError("x"), 1) is None
