"""The ``mock`` backend behaves like a well-behaved provider (SPEC section 10 and seed 075).

Everything goes through public names; async tests run under asyncio and trio. ``via``
parametrises a check over ``complete`` and ``complete_stream`` + ``collect``, which must agree.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest

from tachikoma_backend_mock import MockBackend, MockConfig, MockResponse
from tachikoma_backends_core import (
    Backend,
    BackendError,
    CompletionRequest,
    CompletionResponse,
    FinishReason,
    ImagePart,
    InvalidRequestError,
    Message,
    ModelNotFoundError,
    NetworkError,
    PluginLoadError,
    RateLimitError,
    TextPart,
    ToolArgumentError,
    ToolCall,
    Usage,
    registry,
    sync,
)
from tachikoma_backends_core.managed import ManagedBackend

VIA = pytest.mark.parametrize("via", ["complete", "stream"])
READ = ToolCall(id="call_1", name="read_file", arguments='{"path": "/tmp/test"}')
LONG = ToolCall(id="call_2", name="write_file", arguments=json.dumps({"path": "/a", "c": "x" * 40}))
EMPTY_ARGS = ToolCall(id="call_3", name="list_files", arguments="")
TEXT = "The quick brown fox jumps over the lazy dog"


def _request(text: str = "Hi", **fields: object) -> CompletionRequest:
    return CompletionRequest(messages=[Message.user(text)], **fields)  # type: ignore[arg-type]


async def _run(backend: MockBackend, request: CompletionRequest, via: str) -> CompletionResponse:
    if via == "complete":
        return await backend.complete(request)
    async with await backend.complete_stream(request) as stream:
        return await stream.collect()


def _calls(calls: list[ToolCall]) -> list[tuple[str, str, str]]:
    return [(c.id, c.name, c.arguments) for c in calls]


def _summary(response: CompletionResponse) -> tuple[object, ...]:
    calls = _calls(response.tool_calls)
    return response.content, calls, response.finish_reason, response.usage, response.model


# --- info -----------------------------------------------------------------------------------
def test_info_and_repr_declare_the_specified_capabilities() -> None:
    backend = MockBackend()
    assert repr(backend) == "<MockBackend name='mock' model='mock-model'>"
    info = backend.info
    assert info.name == "mock"
    assert info.default_model == "mock-model"
    assert info.available_models == ["mock-model"]
    assert info.capabilities.model_dump() == {
        "streaming": True,
        "tool_calling": True,
        "vision": False,
        "json_mode": True,
        "max_context_tokens": 100_000,
        "max_output_tokens": 4_096,
    }


# --- scripted replies -----------------------------------------------------------------------
@pytest.mark.anyio
@VIA
async def test_queued_responses_come_back_in_order_then_the_default(via: str) -> None:
    backend = MockBackend()
    for text in ("first", "second", "third"):
        backend.queue_response(MockResponse.text(text))
    replies = [(await _run(backend, _request(), via)).content for _ in range(4)]
    assert replies == ["first", "second", "third", "Mock response"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "make",
    [
        lambda: MockBackend(default_reply="Configured"),
        lambda: registry.create("mock", default_reply="Configured"),
        lambda: registry.get("mock").create(MockConfig(default_reply="Configured")),
    ],
    ids=["constructor", "registry", "config"],
)
async def test_default_reply_is_configurable(make: Callable[[], Backend]) -> None:
    backend = make()
    mock = backend.inner if isinstance(backend, ManagedBackend) else backend
    assert isinstance(mock, MockBackend)
    response = await backend.complete(_request())
    assert (response.content, response.finish_reason) == ("Configured", FinishReason.STOP)


@pytest.mark.anyio
@VIA
async def test_json_mode_default_reply_is_valid_json(via: str) -> None:
    response = await _run(MockBackend(), _request(json_mode=True), via)
    assert isinstance(json.loads(response.content or ""), dict)


# --- streaming ------------------------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize("text", [TEXT, "  padded  words\n", "line one\nline\ttwo"])
async def test_text_streams_in_several_chunks_then_one_final_chunk(text: str) -> None:
    backend = MockBackend()
    backend.queue_response(MockResponse.text(text).with_usage(Usage(7, 3)))
    async with await backend.complete_stream(_request()) as stream:
        chunks = [chunk async for chunk in stream]
    *body, last = chunks
    assert len([c for c in body if c.delta]) > 1
    assert "".join(c.delta for c in chunks) == text
    assert [c for c in chunks if c.is_final] == [last]
    assert (last.usage, last.finish_reason) == (Usage(7, 3), FinishReason.STOP)
    assert all(c.usage is None for c in body)


STOP, LENGTH, TOOL_CALLS = FinishReason.STOP, FinishReason.LENGTH, FinishReason.TOOL_CALLS
COLLECT_CASES = [
    pytest.param(MockResponse.text(TEXT), STOP, id="text"),
    pytest.param(
        MockResponse.text("Let me look.").with_tool_call(READ), TOOL_CALLS, id="text+call"
    ),
    pytest.param(MockResponse(tool_calls=(READ, LONG, EMPTY_ARGS)), TOOL_CALLS, id="parallel"),
    pytest.param(MockResponse.text(TEXT).with_finish_reason(LENGTH), LENGTH, id="length"),
    pytest.param(MockResponse(tool_calls=(READ,), finish_reason=STOP), STOP, id="calls+stop"),
    pytest.param(MockResponse.text("x").with_usage(Usage(1, 2)), STOP, id="usage"),
    pytest.param(MockResponse.text("").with_tool_call(READ), TOOL_CALLS, id="''+call"),
    pytest.param(MockResponse(), STOP, id="content=None"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("scripted", "reason"), COLLECT_CASES)
async def test_collected_stream_equals_complete(
    scripted: MockResponse, reason: FinishReason
) -> None:
    backend = MockBackend()
    backend.queue_response(scripted)
    backend.queue_response(scripted)
    completed = await backend.complete(_request())
    assert completed.finish_reason is reason
    streamed = await _run(backend, _request(), "stream")
    assert _summary(streamed) == _summary(completed)


@pytest.mark.anyio
@pytest.mark.parametrize("calls", [[READ], [READ, LONG], [LONG, READ, EMPTY_ARGS]])
async def test_tool_calls_stream_as_fragments_in_order(calls: list[ToolCall]) -> None:
    backend = MockBackend()
    backend.queue_response(MockResponse(tool_calls=tuple(calls)))
    async with await backend.complete_stream(_request()) as stream:
        deltas = [d async for chunk in stream for d in chunk.tool_call_deltas]
        collected = await stream.collect()
    first_seen = list(dict.fromkeys(d.index for d in deltas))
    assert first_seen == list(range(len(calls)))
    for index, call in enumerate(calls):
        head, *rest = [d for d in deltas if d.index == index]
        assert (head.id, head.name) == (call.id, call.name)
        assert all(d.id is None and d.name is None and d.arguments_delta for d in rest)
        assert head.arguments_delta + "".join(d.arguments_delta for d in rest) == call.arguments
        if len(call.arguments) > 16:
            assert len(rest) > 1
    assert _calls(collected.tool_calls) == _calls(calls)
    assert collected.finish_reason is FinishReason.TOOL_CALLS


# --- failures -------------------------------------------------------------------------------

FAILURES = [
    RateLimitError("Rate limited", retry_after=60, provider="mock", status_code=429),
    NetworkError("Connection failed", request_id="req_1"),
    InvalidRequestError("bad request", field="temperature", status_code=400),
    ToolArgumentError("bad arguments", key="path", tool_name="read_file"),
    PluginLoadError("cannot load", plugin="p", distribution="d"),
]


@pytest.mark.anyio
@VIA
@pytest.mark.parametrize("error", FAILURES, ids=lambda e: type(e).__name__)
async def test_set_failure_raises_an_equal_copy_until_cleared(
    via: str, error: BackendError
) -> None:
    backend = MockBackend()
    backend.queue_response(MockResponse.text("after recovery"))
    backend.set_failure(error)
    call = backend.complete if via == "complete" else backend.complete_stream
    with pytest.raises(type(error)) as caught:
        await call(_request())  # a stream fails at the await itself, before any chunk
    raised = caught.value
    assert type(raised) is type(error)
    assert raised is not error
    assert vars(raised) == vars(error)
    assert (raised.args, str(raised), repr(raised)) == (error.args, str(error), repr(error))
    assert not await backend.health_check()
    assert backend.get_requests() == []
    backend.clear_failure()
    assert await backend.health_check()
    assert (await _run(backend, _request(), via)).content == "after recovery"
    assert len(backend.get_requests()) == 1


@pytest.mark.parametrize("error", [ValueError("x"), RuntimeError("x"), "Rate limited", None])
def test_set_failure_refuses_what_is_not_a_backend_error(error: object) -> None:
    backend = MockBackend()
    with pytest.raises(TypeError, match="BackendError"):
        backend.set_failure(error)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_repeated_failures_are_fresh_copies_with_short_tracebacks() -> None:
    backend = MockBackend()
    error = RateLimitError("Rate limited", retry_after=60)
    backend.set_failure(error)
    raised: list[BaseException] = []
    for _ in range(5):
        with pytest.raises(RateLimitError) as caught:
            await backend.complete(_request())
        raised.append(caught.value)

    def depth(exc: BaseException) -> int:
        tb, count = exc.__traceback__, 0
        while tb is not None:
            tb, count = tb.tb_next, count + 1
        return count

    assert len({id(exc) for exc in raised}) == 5
    assert len({depth(exc) for exc in raised}) == 1
    assert all(exc.__cause__ is None and exc.__context__ is None for exc in raised)
    assert error.__traceback__ is None


# --- capability refusals --------------------------------------------------------------------

IMAGE = ImagePart.from_url("https://example.com/cat.png")
WITH_IMAGE = CompletionRequest(messages=[Message.user([TextPart(text="What is it?"), IMAGE])])
IMAGE_SECOND = CompletionRequest(messages=[Message.system("Be brief"), Message.user([IMAGE])])


@pytest.mark.anyio
@VIA
@pytest.mark.parametrize(
    ("request_", "error_type", "field"),
    [
        (_request(max_tokens=4_097), InvalidRequestError, "max_tokens"),
        (WITH_IMAGE, InvalidRequestError, "messages[0].content"),
        (IMAGE_SECOND, InvalidRequestError, "messages[1].content"),
        (_request(model="gpt-4o"), ModelNotFoundError, None),
    ],
    ids=["max_tokens", "image", "image-second-message", "unknown-model"],
)
async def test_unsupported_requests_are_refused_with_typed_errors(
    via: str, request_: CompletionRequest, error_type: type[BackendError], field: str | None
) -> None:
    backend = MockBackend()
    with pytest.raises(error_type) as caught:
        await _run(backend, request_, via)
    assert type(caught.value) is error_type
    assert getattr(caught.value, "field", None) == field
    assert caught.value.provider == "mock"
    assert backend.get_requests() == []


@pytest.mark.anyio
@VIA
async def test_requests_at_the_limits_are_accepted(via: str) -> None:
    request = _request(max_tokens=4_096, model="mock-model")
    assert (await _run(MockBackend(), request, via)).model == "mock-model"


# --- recording ------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_requests_are_recorded_in_order_and_can_be_cleared() -> None:
    backend = MockBackend()
    assert (backend.get_requests(), backend.last_request()) == ([], None)
    sent = [_request("one"), _request("two").with_max_tokens(10), _request("three")]
    await backend.complete(sent[0])
    await _run(backend, sent[1], "stream")
    await backend.complete(sent[2])
    recorded = backend.get_requests()
    assert recorded == sent
    assert backend.last_request() == sent[2]
    recorded.clear()
    assert backend.get_requests() == sent
    backend.clear_requests()
    assert (backend.get_requests(), backend.last_request()) == ([], None)


# --- early exit and cancellation ------------------------------------------------------------
@pytest.mark.anyio
async def test_breaking_out_of_a_stream_closes_it() -> None:
    backend = MockBackend()
    backend.queue_response(MockResponse.text(TEXT))
    backend.queue_response(MockResponse.text("next"))
    async with await backend.complete_stream(_request()) as stream:
        async for chunk in stream:
            assert chunk.delta
            break
    assert stream.closed
    assert [c async for c in stream] == []
    assert (await backend.complete(_request())).content == "next"


@pytest.mark.anyio
async def test_cancellation_mid_stream_closes_it_without_hanging() -> None:
    backend = MockBackend(chunk_delay=0.05)
    backend.queue_response(MockResponse.text(TEXT))
    received = []
    with anyio.fail_after(5):
        stream = await backend.complete_stream(_request())
        with anyio.move_on_after(5) as scope:
            async with stream:
                async for chunk in stream:
                    received.append(chunk)
                    # Once a chunk is in, time out during the 50 ms wait for the next one.
                    scope.deadline = anyio.current_time() + 0.01
        assert scope.cancelled_caught
        assert stream.closed
        assert [c.delta for c in received] == ["The "]
        assert (await backend.complete(_request())).content == "Mock response"


# --- concurrency ----------------------------------------------------------------------------
@pytest.mark.anyio
async def test_concurrent_tasks_each_get_exactly_one_response() -> None:
    backend = MockBackend()
    replies = [f"reply {i}" for i in range(50)]
    for reply in replies:
        backend.queue_response(MockResponse.text(reply))
    results: dict[str, str] = {}

    async def ask(prompt: str) -> None:
        results[prompt] = (await backend.complete(_request(prompt))).text

    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(ask, f"prompt {i}")
    assert sorted(results.values()) == sorted(replies)
    arrival = [r.messages[0].text for r in backend.get_requests()]
    assert sorted(arrival) == sorted(results)
    assert all(results[prompt] == replies[n] for n, prompt in enumerate(arrival))
    assert (await backend.complete(_request())).content == "Mock response"


@pytest.mark.parametrize("facade_per_thread", [False, True], ids=["shared-facade", "per-thread"])
def test_threads_through_the_sync_facade_get_every_response_once(facade_per_thread: bool) -> None:
    backend = MockBackend()
    replies = [f"reply {i}" for i in range(80)]
    for reply in replies:
        backend.queue_response(MockResponse.text(reply))
    shared = sync.SyncBackend(backend)
    start = threading.Barrier(8)

    def work(worker: int) -> list[tuple[str, str]]:
        loop = "trio" if worker % 2 else "asyncio"
        facade = sync.SyncBackend(backend, async_backend=loop) if facade_per_thread else shared
        try:
            start.wait(timeout=30)
            prompts = [f"thread {worker} prompt {i}" for i in range(10)]
            return [(p, facade.complete(_request(p)).text) for p in prompts]
        finally:
            if facade_per_thread:
                facade.close()

    with shared, ThreadPoolExecutor(max_workers=8) as pool:
        results = dict(pair for pairs in pool.map(work, range(8)) for pair in pairs)
    assert len(results) == 80
    assert sorted(results.values()) == sorted(replies)
    arrival = [r.messages[0].text for r in backend.get_requests()]
    assert [results[prompt] for prompt in arrival] == replies


# --- the blocking facade --------------------------------------------------------------------

ASYNC_BACKENDS = pytest.mark.parametrize("async_backend", ["asyncio", "trio"])


@ASYNC_BACKENDS
def test_sync_facade_completes_streams_and_checks_health(async_backend: str) -> None:
    with sync.create("mock", async_backend=async_backend) as facade:
        managed = facade.backend
        assert isinstance(managed, ManagedBackend)
        mock = managed.inner
        assert isinstance(mock, MockBackend)
        for scripted in ("Hello, world!", TEXT, TEXT):
            mock.queue_response(MockResponse.text(scripted).with_tool_call(READ))
        assert _calls(facade.complete(_request()).tool_calls) == _calls([READ])
        with facade.complete_stream(_request()) as stream:
            chunks = list(stream)
        assert "".join(c.delta for c in chunks) == TEXT
        assert [c.is_final for c in chunks].index(True) == len(chunks) - 1
        with facade.complete_stream(_request()) as stream:
            first = next(stream)
            collected = stream.collect()  # includes the chunk already read
        assert (first.delta, collected.content) == ("The ", TEXT)
        assert _calls(collected.tool_calls) == _calls([READ])
        assert facade.health_check() is True
        assert len(mock.get_requests()) == 3


@ASYNC_BACKENDS
def test_sync_facade_raises_the_same_typed_errors(async_backend: str) -> None:
    with sync.create("mock", async_backend=async_backend) as facade:
        with pytest.raises(InvalidRequestError, match="max_tokens"):
            facade.complete(_request(max_tokens=5_000))
        managed = facade.backend
        assert isinstance(managed, ManagedBackend)
        mock = managed.inner
        assert isinstance(mock, MockBackend)
        mock.set_failure(RateLimitError("Rate limited", retry_after=60))
        for call in (facade.complete, facade.complete_stream):
            with pytest.raises(RateLimitError) as caught:
                call(_request())
            assert caught.value.retry_after == 60.0
        assert facade.health_check() is False
        mock.clear_failure()
        assert facade.health_check() is True


def test_loading_the_plugin_does_not_import_the_backend_module() -> None:
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from tachikoma_backends_core import registry\n"
        "plugin = registry.get('mock')\n"
        "assert 'tachikoma_backend_mock._backend' not in sys.modules, 'loaded too early'\n"
        "backend = plugin.create()\n"
        "assert 'tachikoma_backend_mock._backend' in sys.modules\n"
        "print(backend)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "MockBackend" in result.stdout
