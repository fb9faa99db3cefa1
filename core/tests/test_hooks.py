"""pluggy hooks: an installed extension sees every call; a broken one loses nothing."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import pytest

from tachikoma_backend_mock import MockBackend, MockResponse
from tachikoma_backends_core import (
    CompletionChunk,
    CompletionRequest,
    CompletionResponse,
    ConfigurationError,
    Message,
    RateLimitError,
    ServerError,
    registry,
)
from tachikoma_backends_core.clock import FakeClock
from tachikoma_backends_core.hooks import (
    HOOKS_ENTRY_POINT_GROUP,
    Hooks,
    default_hooks,
    hookimpl,
)
from tachikoma_backends_core.managed import ManagedBackend
from tachikoma_backends_core.retry import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import FakeSite

REQUEST = CompletionRequest(messages=[Message.user("Hi")])

RECORDER = """\
from tachikoma_backends_core.hooks import hookimpl

EVENTS = []


class Recorder:
    @hookimpl
    def tachikoma_request(self, request, backend):
        EVENTS.append(("request", backend.name, request.messages[-1].text))

    @hookimpl
    def tachikoma_response(self, response):
        EVENTS.append(("response", response.content))

    @hookimpl
    def tachikoma_chunk(self, chunk):
        EVENTS.append(("chunk", chunk.delta))

    @hookimpl
    def tachikoma_error(self, error, attempt, will_retry):
        EVENTS.append(("error", type(error).__name__, attempt, will_retry))


recorder = Recorder()
"""


@pytest.fixture
def installed_recorder(site: FakeSite, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """A ``tachikoma.hooks`` extension installed as a distribution; yields its event log."""
    monkeypatch.delenv("TACHIKOMA_HOOKS", raising=False)
    module = site.module("tkt_recorder")
    site.make_dist(
        "tkt-recorder",
        "1.0",
        {"recorder": f"{module}:recorder"},
        {module: RECORDER},
        group=HOOKS_ENTRY_POINT_GROUP,
    )
    hooks = default_hooks(reload=True)
    assert "recorder" in hooks.names
    yield __import__(module).EVENTS
    monkeypatch.undo()
    default_hooks(reload=True)


@pytest.mark.anyio
async def test_an_installed_extension_sees_request_response_chunks_and_errors(
    installed_recorder: list[Any],
) -> None:
    backend = registry.create("mock", max_retries=1)
    assert isinstance(backend, ManagedBackend)
    backend = backend.with_options(
        retry_policy=RetryPolicy(max_attempts=2, clock=FakeClock(auto_advance=True))
    )
    mock = backend.inner
    mock.queue_response(MockResponse.text("plain answer"))
    mock.queue_response(MockResponse.text("streamed answer"))
    mock.queue_failure(RateLimitError("slow down", retry_after=1, provider="mock"))
    mock.queue_response(MockResponse.text("after a retry"))

    await backend.complete(REQUEST)
    async with await backend.complete_stream(REQUEST) as stream:
        await stream.collect()
    await backend.complete(REQUEST)
    mock.set_failure(ServerError("down", provider="mock", status_code=500))
    with pytest.raises(ServerError):
        await backend.complete(REQUEST)

    kinds = [event[0] for event in installed_recorder]
    assert installed_recorder[:2] == [("request", "mock", "Hi"), ("response", "plain answer")]
    streamed = [event[1] for event in installed_recorder if event[0] == "chunk"]
    assert len(streamed) > 1
    assert "".join(streamed) == "streamed answer"
    assert ("response", "streamed answer") in installed_recorder
    assert ("error", "RateLimitError", 1, True) in installed_recorder  # retried
    assert ("response", "after a retry") in installed_recorder
    assert installed_recorder[-2:] == [
        ("error", "ServerError", 1, True),
        ("error", "ServerError", 0, False),
    ]
    assert kinds.count("request") == 4


class Broken:
    @hookimpl
    def tachikoma_request(self, request: CompletionRequest) -> CompletionRequest:
        raise RuntimeError("metrics server down")

    @hookimpl
    def tachikoma_response(self, response: CompletionResponse) -> CompletionResponse:
        raise ValueError("cannot parse")

    @hookimpl
    def tachikoma_chunk(self, chunk: CompletionChunk) -> str:
        return "not a chunk"

    @hookimpl
    def tachikoma_error(self, error: Exception) -> None:
        raise KeyError("oops")


@pytest.mark.anyio
async def test_a_raising_hook_is_logged_and_the_call_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hooks = Hooks()
    hooks.register(Broken())
    mock = MockBackend()
    backend = ManagedBackend(mock, hooks=hooks)
    mock.queue_response(MockResponse.text("still here"))
    mock.queue_response(MockResponse.text("streamed, too"))

    with caplog.at_level(logging.ERROR, logger="tachikoma_backends_core.hooks"):
        assert (await backend.complete(REQUEST)).content == "still here"
        async with await backend.complete_stream(REQUEST) as stream:
            assert (await stream.collect()).content == "streamed, too"
        mock.set_failure(ServerError("down", provider="mock"))
        with pytest.raises(ServerError):
            await backend.complete(REQUEST)

    messages = "\n".join(record.getMessage() for record in caplog.records)
    assert "RuntimeError: metrics server down" in messages
    assert "ValueError: cannot parse" in messages
    assert "returned str, not CompletionChunk" in messages
    assert "KeyError" in messages


class Amender:
    @hookimpl
    def tachikoma_request(self, request: CompletionRequest) -> CompletionRequest:
        return request.with_system("Be brief.")

    @hookimpl
    def tachikoma_chunk(self, chunk: CompletionChunk) -> CompletionChunk:
        return CompletionChunk(
            delta=chunk.delta.upper(),
            tool_call_deltas=chunk.tool_call_deltas,
            finish_reason=chunk.finish_reason,
            usage=chunk.usage,
        )

    @hookimpl
    def tachikoma_response(self, response: CompletionResponse) -> CompletionResponse:
        return response.model_copy(update={"content": "[redacted]"})


@pytest.mark.anyio
async def test_hooks_can_amend_requests_chunks_and_responses() -> None:
    hooks = Hooks()
    hooks.register(Amender())
    mock = MockBackend()
    backend = ManagedBackend(mock, hooks=hooks)
    mock.queue_response(MockResponse.text("secret stuff"))
    mock.queue_response(MockResponse.text("quiet words"))

    assert (await backend.complete(REQUEST)).content == "[redacted]"
    assert mock.get_requests()[0].system_prompt == "Be brief."
    async with await backend.complete_stream(REQUEST) as stream:
        assert (await stream.collect()).content == "QUIET WORDS"


def test_wrappers_and_unknown_hooks_are_refused() -> None:
    class Wrapper:
        @hookimpl(wrapper=True)
        def tachikoma_request(self, request: CompletionRequest) -> Iterator[None]:
            yield

    class Typo:
        @hookimpl
        def tachikoma_requset(self, request: CompletionRequest) -> None: ...

    hooks = Hooks()
    with pytest.raises(ConfigurationError, match="wrapper"):
        hooks.register(Wrapper())
    with pytest.raises(ConfigurationError, match="tachikoma_requset"):
        hooks.register(Typo())
    assert hooks.names == []


def test_a_broken_extension_does_not_stop_the_others(
    site: FakeSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, bad = site.module("tkt_good_hooks"), site.module("tkt_bad_hooks")
    site.make_dist(
        "tkt-hooks",
        "1.0",
        {"good": f"{good}:recorder", "bad": f"{bad}:nothing"},
        {good: RECORDER, bad: "raise ImportError('missing dependency')\n"},
        group=HOOKS_ENTRY_POINT_GROUP,
    )
    monkeypatch.delenv("TACHIKOMA_HOOKS", raising=False)
    hooks = Hooks.from_entry_points()
    assert "good" in hooks.names
    assert [(e.name, e.message) for e in hooks.load_errors] == [
        ("bad", "ImportError: missing dependency")
    ]

    monkeypatch.setenv("TACHIKOMA_HOOKS", "")
    assert Hooks.from_entry_points().names == []
    assert os.environ["TACHIKOMA_HOOKS"] == ""


@pytest.mark.anyio
async def test_streams_without_chunk_hooks_or_limiter_are_handed_over_untouched() -> None:
    mock = MockBackend()
    plain = ManagedBackend(mock, hooks=Hooks())
    upstream = await mock.complete_stream(REQUEST)
    await upstream.aclose()
    stream = await plain.complete_stream(REQUEST)
    assert type(stream) is type(upstream)
    await stream.aclose()


class Counter:
    def __init__(self) -> None:
        self.seen = 0

    @hookimpl
    def tachikoma_chunk(self, chunk: CompletionChunk) -> None:
        self.seen += 1


def test_chunk_hooks_are_resolved_once_per_stream(caplog: pytest.LogCaptureFixture) -> None:
    hooks = Hooks()
    info = MockBackend().info
    assert hooks.chunk_caller(REQUEST, info) is None, "no chunk hook, nothing to call"
    counter = Counter()
    hooks.register(counter, name="counter")
    amend = hooks.chunk_caller(REQUEST, info)
    assert amend is not None
    hooks.register(Amender(), name="amender")  # after the stream started: not for it
    chunk = CompletionChunk.text("quiet")
    assert amend(chunk) is chunk
    assert counter.seen == 1
    amend_next = hooks.chunk_caller(REQUEST, info)
    assert amend_next is not None
    assert amend_next(chunk).delta == "QUIET"
    hooks.register(Broken(), name="broken")
    with caplog.at_level(logging.ERROR, logger="tachikoma_backends_core.hooks"):
        last = hooks.chunk_caller(REQUEST, info)
        assert last is not None
        assert last(chunk).delta == "QUIET"
    assert "returned str, not CompletionChunk" in caplog.text


class Shouter:
    @hookimpl
    def tachikoma_chunk(self, chunk: CompletionChunk) -> CompletionChunk:
        return CompletionChunk(
            delta=chunk.delta.upper(), finish_reason=chunk.finish_reason, usage=chunk.usage
        )


@pytest.mark.anyio
async def test_chunk_hooks_alone_amend_the_providers_own_stream() -> None:
    hooks = Hooks()
    hooks.register(Shouter())
    mock = MockBackend()
    upstream = await mock.complete_stream(REQUEST)
    await upstream.aclose()
    mock.queue_response(MockResponse.text("quiet words"))
    stream = await ManagedBackend(mock, hooks=hooks).complete_stream(REQUEST)
    assert type(stream) is type(upstream), "nothing wants the stream's end: no wrapper"
    deltas = [chunk.delta async for chunk in stream]
    assert "".join(deltas) == "QUIET WORDS"
    assert (await stream.collect()).content == "QUIET WORDS"
