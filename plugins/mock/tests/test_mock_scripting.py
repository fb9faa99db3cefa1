"""Scripting failures: one-shot failures, streams that break, stalls, and recorded stream flags."""

from __future__ import annotations

from typing import Literal

import anyio
import pytest

from tachikoma_backend_mock import MockBackend, MockCall, MockResponse
from tachikoma_backends_core import (
    BackendTimeoutError,
    CompletionRequest,
    Message,
    NetworkError,
    RateLimitError,
    StreamProtocolError,
)

pytestmark = pytest.mark.anyio
REQUEST = CompletionRequest(messages=[Message.user("Hi")])


async def test_queue_failure_fails_only_the_next_call_in_queue_order() -> None:
    backend = MockBackend()
    backend.queue_response(MockResponse.text("first"))
    backend.queue_failure(RateLimitError("slow down", retry_after=2.0))
    backend.queue_response(MockResponse.text("third"))
    assert (await backend.complete(REQUEST)).text == "first"
    with pytest.raises(RateLimitError) as raised:
        await backend.complete_stream(REQUEST)
    assert raised.value.retry_after == 2.0
    assert (await backend.complete(REQUEST)).text == "third"
    assert len(backend.get_requests()) == 2  # the failed call is not recorded
    assert await backend.health_check()  # a one-shot failure is not an outage


async def test_queue_failure_refuses_what_is_not_a_backend_error() -> None:
    with pytest.raises(TypeError, match="queue_failure takes a BackendError"):
        MockBackend().queue_failure(ValueError("x"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "expected"),
    [(NetworkError("connection reset"), NetworkError), (None, StreamProtocolError)],
    ids=["raises", "cut-off"],
)
async def test_a_broken_stream_delivers_chunks_then_fails(
    error: NetworkError | None, expected: type[Exception]
) -> None:
    backend = MockBackend()
    reply = MockResponse.text("one two three four").with_stream_failure(error, after_chunks=2)
    backend.queue_response(reply)
    backend.queue_response(reply)
    received: list[str] = []
    stream = await backend.complete_stream(REQUEST)

    async def read_all() -> None:
        async with stream:
            async for chunk in stream:
                received.append(chunk.delta)

    with pytest.raises(expected):
        await read_all()
    assert received == ["one ", "two "]
    assert stream.closed
    with pytest.raises(expected):
        await backend.complete(REQUEST)


async def test_calls_record_whether_they_streamed() -> None:
    backend = MockBackend()
    await backend.complete(REQUEST)
    await (await backend.complete_stream(REQUEST)).collect()
    assert backend.get_calls() == [MockCall(REQUEST, False), MockCall(REQUEST, True)]


@pytest.mark.parametrize("at", ["before_response", "mid_body"])
@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_a_stalled_reply_ends_in_the_timeout(
    at: Literal["before_response", "mid_body"], streamed: bool
) -> None:
    backend = MockBackend(timeout=0.05)
    backend.queue_response(MockResponse.text("never whole").with_stall(at))

    async def call() -> object:
        if not streamed:
            return await backend.complete(REQUEST)
        async with await backend.complete_stream(REQUEST) as stream:
            return await stream.collect()

    with anyio.fail_after(5), pytest.raises(BackendTimeoutError):
        await call()


async def test_without_a_timeout_a_stall_waits_until_cancelled() -> None:
    backend = MockBackend()
    backend.queue_response(MockResponse.text("never whole").with_stall("before_response"))
    with anyio.move_on_after(0.05) as waiting:
        await backend.complete(REQUEST)
    assert waiting.cancelled_caught


async def test_stalled_health_checks_are_unhealthy_after_the_timeout() -> None:
    backend = MockBackend(timeout=0.05)
    backend.stall_health_checks()
    with anyio.fail_after(5):
        assert await backend.health_check() is False
    assert not backend.closed
    await backend.aclose()
    assert backend.closed
