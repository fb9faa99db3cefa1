"""The trait tests every provider plugin must pass (collected under ``--plugin``).

Each trait gets the plugin's harness (``tachikoma_harness``) and a backend wired to it
(``tachikoma_backend``), scripts the provider, and checks the behaviour through the public
API only. ``tachikoma_area`` groups traits in the summary table; ``tachikoma_requires``
skips a trait whose capability the plugin does not declare; ``tachikoma_since`` names the
Backend contract version that introduced a trait (none: contract 1), so a plugin is held
only to the traits of the contract it declares.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from tachikoma_backends_core.backend import Backend
from tachikoma_backends_core.completion import (
    CompletionChunk,
    CompletionRequest,
    CompletionResponse,
    FinishReason,
    Usage,
)
from tachikoma_backends_core.content import ImagePart, TextPart
from tachikoma_backends_core.errors import BackendError, InvalidRequestError, RateLimitError
from tachikoma_backends_core.manifest import CAPABILITY_NAMES
from tachikoma_backends_core.messages import Message, Role
from tachikoma_backends_core.registry import PluginInfo
from tachikoma_backends_core.tool_calls import ToolCall, ToolResult
from tachikoma_backends_core.tools import ToolDefinition

from ._capabilities import declared_capabilities
from .harness import (
    EXPECTED_ERRORS,
    ConformanceHarness,
    ErrorKind,
    ScriptedFailure,
    ScriptedReply,
)

pytestmark = pytest.mark.anyio
area = pytest.mark.tachikoma_area
requires = pytest.mark.tachikoma_requires
live = pytest.mark.tachikoma_live
since = pytest.mark.tachikoma_since

READ_FILE = (
    ToolDefinition.builder("read_file")
    .description("Read a file")
    .required_string("path", "File path")
    .build()
)
CALL = ToolCall.from_arguments("call_1", "read_file", {"path": "/tmp/a.txt"})
PARALLEL = [
    ToolCall.from_arguments(f"call_{i}", "read_file", {"path": f"/tmp/{name}.txt"})
    for i, name in enumerate(["alpha", "beta", "gamma"])
]
TEXT = "Hello there, this reply arrives in several pieces."


def ask(text: str = "Hi", **fields: Any) -> CompletionRequest:
    return CompletionRequest(messages=[Message.user(text)], **fields)


def calls_summary(calls: list[ToolCall]) -> list[tuple[str, str, dict[str, object]]]:
    return [(c.id, c.name, c.parsed_arguments()) for c in calls]


#: The two ways to make a call, for traits parametrised over both.
CALLS = ["complete", "stream"]


def skip_unless_it_streams(backend: Backend, call: str) -> None:
    """Skip the ``stream`` case of a trait for a backend that does not declare streaming."""
    if call == "stream" and not backend.info.capabilities.streaming:
        pytest.skip(f"{backend.info.name} does not declare streaming")


async def send(backend: Backend, request: CompletionRequest, call: str) -> CompletionResponse:
    """The response to ``request``, by ``complete`` or by collecting a stream."""
    if call == "complete":
        return await backend.complete(request)
    async with await backend.complete_stream(request) as stream:
        return await stream.collect()


def assert_no_hidden_retry(harness: ConformanceHarness, before: int, calls: int = 1) -> None:
    """The first check of a trait that scripts a retryable failure: a plugin that retries
    on its own fails with that cause named, not with what the extra attempt did next
    (found no scripted answer, say, and timed out)."""
    made = harness.attempts() - before
    assert made <= calls, (
        f"{calls} call(s) with retries disabled (max_retries=0) made {made} attempts: the "
        "plugin retries on its own underneath the core's retry loop; leave retrying to "
        "the core"
    )


async def read_stream(backend: Backend, request: CompletionRequest) -> list[CompletionChunk]:
    async with await backend.complete_stream(request) as stream:
        return [chunk async for chunk in stream]


# -- completion ---------------------------------------------------------------------


@area("completion")
async def test_basic_completion(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    tachikoma_harness.script_reply(ScriptedReply(text="Hello, world!", usage=Usage(11, 7)))
    async with tachikoma_backend as backend:
        response = await backend.complete(ask())
    assert response.content == "Hello, world!", f"the reply text came back as {response.content!r}"
    assert response.finish_reason is FinishReason.STOP, (
        f"a plain reply must finish with STOP, got {response.finish_reason}"
    )
    assert response.usage.input_tokens == 11, f"input tokens reported as {response.usage}"
    assert response.usage.output_tokens == 7, f"output tokens reported as {response.usage}"
    assert response.tool_calls == [], "a text reply must carry no tool calls"


@area("completion")
async def test_system_prompt_is_sent(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    tachikoma_harness.script_reply(ScriptedReply(text="ok"))
    request = CompletionRequest(messages=[Message.system("Be brief."), Message.user("Hi")])
    async with tachikoma_backend as backend:
        await backend.complete(request)
    sent = tachikoma_harness.sent_requests()[-1]
    assert [(m.role, m.text) for m in sent.messages] == [
        (Role.SYSTEM, "Be brief."),
        (Role.USER, "Hi"),
    ], "the system prompt and user turn must reach the provider unchanged"


@area("recording")
async def test_request_recording(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    tachikoma_harness.script_reply(ScriptedReply(text="one"))
    tachikoma_harness.script_reply(ScriptedReply(text="two"))
    async with tachikoma_backend as backend:
        model = backend.info.default_model
        await backend.complete(ask("first", max_tokens=64, model=model))
        await (await backend.complete_stream(ask("second"))).collect()
    first, second = tachikoma_harness.sent_requests()[-2:]
    assert (first.max_tokens, first.model, first.stream) == (64, model, False), (
        f"sent max_tokens={first.max_tokens}, model={first.model!r}, stream={first.stream}; "
        f"asked for 64, {model!r}, a plain call"
    )
    assert first.messages[-1].text == "first", "the user turn must be sent as given"
    assert second.stream is True, "a streamed request must be sent as a stream"
    assert second.messages[-1].text == "second", "the streamed user turn must be sent"


# -- tools --------------------------------------------------------------------------


@area("tools")
@requires("tool_calling")
async def test_tool_calling(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    tachikoma_harness.script_reply(ScriptedReply(tool_calls=[CALL]))
    async with tachikoma_backend as backend:
        response = await backend.complete(ask("Read /tmp/a.txt").with_tools([READ_FILE]))
    assert calls_summary(response.tool_calls) == calls_summary([CALL]), (
        f"the tool call came back as {calls_summary(response.tool_calls)}"
    )
    assert response.finish_reason is FinishReason.TOOL_CALLS, (
        f"a reply of tool calls must finish with TOOL_CALLS, got {response.finish_reason}"
    )
    sent_tools = list(tachikoma_harness.sent_requests()[-1].tools)
    assert sent_tools == ["read_file"], f"the tools offered were sent as {sent_tools}"


@area("tools")
@requires("tool_calling")
async def test_parallel_tool_calls(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    tachikoma_harness.script_reply(ScriptedReply(tool_calls=PARALLEL))
    async with tachikoma_backend as backend:
        response = await backend.complete(ask("Read three files").with_tools([READ_FILE]))
    assert calls_summary(response.tool_calls) == calls_summary(PARALLEL), (
        f"3 parallel tool calls came back as {calls_summary(response.tool_calls)}"
    )


@area("tools")
@requires("tool_calling")
async def test_multi_turn_with_tool_results(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    tachikoma_harness.script_reply(ScriptedReply(text="The file says hello."))
    conversation = [
        Message.user("Read /tmp/a.txt"),
        Message.assistant("", tool_calls=[CALL]),
        Message.tool_result(ToolResult.success(CALL.id, CALL.name, "hello")),
    ]
    request = CompletionRequest(messages=conversation, tools=[READ_FILE])
    async with tachikoma_backend as backend:
        response = await backend.complete(request)
    assert response.content == "The file says hello.", "the answer after a tool result"
    sent = [m for m in tachikoma_harness.sent_requests()[-1].messages if m.role != Role.SYSTEM]
    assert [m.role for m in sent] == [Role.USER, Role.ASSISTANT, Role.TOOL], (
        f"the conversation was sent as the turns {[m.role.value for m in sent]}"
    )
    assert calls_summary(sent[1].tool_calls) == calls_summary([CALL]), (
        "the assistant's tool call must be sent back as it was made"
    )
    assert (sent[2].tool_call_id, sent[2].text) == (CALL.id, "hello"), (
        f"the tool result was sent as ({sent[2].tool_call_id!r}, {sent[2].text!r})"
    )


# -- streaming ----------------------------------------------------------------------


@area("streaming")
@requires("streaming")
async def test_streaming_text(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    tachikoma_harness.script_reply(ScriptedReply(text=TEXT, usage=Usage(5, 9)))
    async with tachikoma_backend as backend:
        chunks = await read_stream(backend, ask())
    assert "".join(c.delta for c in chunks) == TEXT, "the text deltas must add up to the reply"
    finals = [c for c in chunks if c.finish_reason is not None]
    assert finals == [chunks[-1]], "exactly one chunk, the last, carries the finish reason"
    assert chunks[-1].finish_reason is FinishReason.STOP, (
        f"a streamed text reply must finish with STOP, got {chunks[-1].finish_reason}"
    )
    assert chunks[-1].usage == Usage(5, 9), "the last chunk must carry the usage"


@area("streaming")
@requires("streaming", "tool_calling")
async def test_streamed_tool_call_arguments_reassemble(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    tachikoma_harness.script_reply(ScriptedReply(text="Reading.", tool_calls=PARALLEL))
    async with tachikoma_backend as backend:
        stream = await backend.complete_stream(ask().with_tools([READ_FILE]))
        async with stream:
            deltas = [d async for chunk in stream for d in chunk.tool_call_deltas]
        response = await stream.collect()
    assert deltas, "tool calls must stream as tool_call_deltas"
    assert calls_summary(response.tool_calls) == calls_summary(PARALLEL), (
        f"streamed tool calls reassembled as {calls_summary(response.tool_calls)}"
    )
    assert response.finish_reason is FinishReason.TOOL_CALLS, (
        f"streamed tool calls must finish with TOOL_CALLS, got {response.finish_reason}"
    )


@area("streaming")
@requires("streaming")
async def test_stream_collect_includes_chunks_already_read(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    tachikoma_harness.script_reply(ScriptedReply(text=TEXT, usage=Usage(3, 4)))
    tachikoma_harness.script_reply(ScriptedReply(text=TEXT, usage=Usage(3, 4)))
    async with tachikoma_backend as backend:
        completed = await backend.complete(ask())
        stream = await backend.complete_stream(ask())
        async with stream:
            await stream.__anext__()
            collected = await stream.collect()
    assert collected.content == completed.content == TEXT, (
        "collect() after reading a chunk must include it: the text must match the plain reply"
    )
    assert collected.finish_reason == completed.finish_reason, (
        f"collected finish {collected.finish_reason}, plain {completed.finish_reason}"
    )
    assert collected.usage == Usage(3, 4), (
        f"the collected usage is {collected.usage}, the provider said Usage(3, 4)"
        + (" (the stream carried no usage)" if collected.usage == Usage() else "")
    )


@area("streaming")
@requires("streaming")
async def test_early_exit_releases_the_stream(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    tachikoma_harness.script_reply(ScriptedReply(text=TEXT))
    tachikoma_harness.script_reply(ScriptedReply(text="after"))
    async with tachikoma_backend as backend:
        async with await backend.complete_stream(ask()) as stream:
            async for _chunk in stream:
                break
        assert stream.closed, "leaving `async with` must close the stream"
        with anyio.fail_after(10):
            response = await backend.complete(ask())
    assert response.content == "after", "the backend must work normally after an early exit"


# -- errors -------------------------------------------------------------------------

REQUEST_KINDS = [kind for kind in ErrorKind if not kind.mid_stream]
STREAM_KINDS = [kind for kind in ErrorKind if kind.mid_stream]


def _check_error(error: BackendError, kind: ErrorKind, failure: ScriptedFailure) -> None:
    expected = EXPECTED_ERRORS[kind]
    assert isinstance(error, expected.error_type), (
        f"{kind.value} must raise {expected.error_type.__name__}, got {type(error).__name__}"
    )
    assert error.retryable is expected.retryable, (
        f"{kind.value}: retryable must be {expected.retryable}"
    )
    if isinstance(error, RateLimitError) and failure.retry_after is not None:
        assert error.retry_after == failure.retry_after, "retry_after must come from the provider"


@area("errors")
@pytest.mark.parametrize("kind", REQUEST_KINDS, ids=[k.value for k in REQUEST_KINDS])
@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_request_error_maps_to_its_type(
    tachikoma_harness: ConformanceHarness,
    tachikoma_backend: Backend,
    kind: ErrorKind,
    streamed: bool,
) -> None:
    skip_unless_it_streams(tachikoma_backend, "stream" if streamed else "complete")
    failure = ScriptedFailure(kind, retry_after=2.0 if kind is ErrorKind.RATE_LIMIT else None)
    tachikoma_harness.script_failure(failure)
    before = tachikoma_harness.attempts()
    outcome: BackendError | None = None
    async with tachikoma_backend as backend:
        # Request-level errors of a stream come from the await, before any chunk.
        call = backend.complete_stream if streamed else backend.complete
        try:
            await call(ask())
        except BackendError as error:
            outcome = error
    assert_no_hidden_retry(tachikoma_harness, before)
    assert outcome is not None, f"the scripted {kind.value} failure must reach the caller"
    _check_error(outcome, kind, failure)


@area("errors")
@requires("streaming")
@pytest.mark.parametrize("kind", STREAM_KINDS, ids=[k.value for k in STREAM_KINDS])
async def test_mid_stream_error_maps_to_its_type(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend, kind: ErrorKind
) -> None:
    failure = ScriptedFailure(kind)
    tachikoma_harness.script_failure(failure)
    async with tachikoma_backend as backend:
        stream = await backend.complete_stream(ask())
        with pytest.raises(BackendError) as raised:
            await stream.collect()
    _check_error(raised.value, kind, failure)
    assert stream.closed, "a failed stream must be closed"


# -- health, concurrency, capabilities ----------------------------------------------


@area("health")
async def test_health_check(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    async with tachikoma_backend as backend:
        assert await backend.health_check() is True, "a healthy provider must check healthy"
        tachikoma_harness.script_unhealthy()
        assert await backend.health_check() is False, "unhealthy must be False, not a raise"


@area("concurrency")
async def test_concurrent_requests(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    replies = [f"reply {i}" for i in range(50)]
    for text in replies:
        tachikoma_harness.script_reply(ScriptedReply(text=text))
    received: list[str] = []

    async def one(index: int) -> None:
        response = await backend.complete(ask(f"question {index}"))
        received.append(response.text)

    async with tachikoma_backend as backend:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                for index in range(50):
                    group.start_soon(one, index)
    assert sorted(received) == sorted(replies), "each request gets exactly one reply"


CAPABILITY_REQUESTS = {
    "streaming": None,
    "tool_calling": None,
    "json_mode": ask("Answer in JSON", json_mode=True),
    "vision": CompletionRequest(
        messages=[
            Message.user([TextPart(text="What is this?"), ImagePart.from_url("https://x/y.png")])
        ]
    ),
}


async def _exercise(harness: ConformanceHarness, backend: Backend, capability: str) -> None:
    """Use ``capability`` once; raise (a BackendError or AssertionError) if it does not work."""
    if capability == "streaming":
        harness.script_reply(ScriptedReply(text="streamed"))
        streamed = (await (await backend.complete_stream(ask())).collect()).text
        assert streamed == "streamed", f"the streamed reply came back as {streamed!r}"
    elif capability == "tool_calling":
        harness.script_reply(ScriptedReply(tool_calls=[CALL]))
        response = await backend.complete(ask().with_tools([READ_FILE]))
        assert calls_summary(response.tool_calls) == calls_summary([CALL]), (
            f"the tool call came back as {calls_summary(response.tool_calls)}"
        )
    else:
        harness.script_reply(ScriptedReply(text='{"ok": true}'))
        response = await backend.complete(CAPABILITY_REQUESTS[capability])  # type: ignore[arg-type]
        assert response.text == '{"ok": true}', f"the reply came back as {response.text!r}"
        # An answer is not enough: the capability must have reached the provider.
        sent = harness.sent_requests()[-1]
        if capability == "vision":
            images = [
                part
                for message in sent.messages
                if not isinstance(message.content, str)
                for part in message.content
                if isinstance(part, ImagePart)
            ]
            assert images, "the image part was not sent to the provider (silently dropped)"
        else:
            assert sent.json_mode is not False, "the request was sent without JSON mode"


@area("capabilities")
@pytest.mark.parametrize("capability", list(CAPABILITY_REQUESTS))
async def test_declared_capability_works(
    tachikoma_harness: ConformanceHarness,
    tachikoma_backend: Backend,
    tachikoma_plugin_info: PluginInfo,
    tachikoma_warn: Callable[[str], None],
    capability: str,
) -> None:
    """A declared capability must work; an undeclared one that works earns a warning."""
    declared = capability in declared_capabilities(tachikoma_plugin_info, tachikoma_backend)
    async with tachikoma_backend as backend:
        if declared:
            try:
                await _exercise(tachikoma_harness, backend, capability)
            except (BackendError, AssertionError) as problem:
                pytest.fail(
                    f"{backend.info.name} declares the capability {capability!r}, but it does "
                    f"not work: {type(problem).__name__}: {problem}",
                    pytrace=False,
                )
            return
        try:  # undeclared: probe it; only a warning can come of it, never a failure
            await _exercise(tachikoma_harness, backend, capability)
        except Exception:
            pytest.skip(f"{backend.info.name} does not declare {capability}")
    tachikoma_warn(
        f"capability {capability!r} answered without error but is not declared; if the "
        "provider really honours it, declare it in the manifest and in BackendInfo.capabilities"
    )
    pytest.skip(f"{tachikoma_backend.info.name} does not declare {capability} (it answered)")


@since(2)
@area("capabilities")
async def test_manifest_matches_info(
    tachikoma_backend: Backend, tachikoma_plugin_info: PluginInfo
) -> None:
    """The manifest (read without importing) and ``info`` (at run time) must agree."""
    manifest = tachikoma_plugin_info.manifest.capabilities
    async with tachikoma_backend as backend:
        flags = backend.info.capabilities
    assert manifest is not None, (
        "a contract 2 plugin declares its capabilities in its manifest "
        "(capabilities=... in the tachikoma.manifests entry point)"
    )
    at_run_time = {name for name in CAPABILITY_NAMES if getattr(flags, name)}
    assert set(manifest) == at_run_time, (
        f"the manifest declares {sorted(manifest)} but info.capabilities says {sorted(at_run_time)}"
    )


@area("capabilities")
async def test_max_output_tokens_above_the_declared_limit(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    limit = tachikoma_backend.info.capabilities.max_output_tokens
    tachikoma_harness.script_reply(ScriptedReply(text="ok"))
    async with tachikoma_backend as backend:
        if tachikoma_harness.over_max_output_tokens == "reject":
            with pytest.raises(InvalidRequestError) as raised:
                await backend.complete(ask(max_tokens=limit + 1))
            assert raised.value.field == "max_tokens", (
                f"the refusal must name max_tokens, named {raised.value.field!r}"
            )
            assert tachikoma_harness.sent_requests() == [], "a rejected request is not sent"
        elif tachikoma_harness.over_max_output_tokens == "clamp":
            await backend.complete(ask(max_tokens=limit + 1))
            sent_max = tachikoma_harness.sent_requests()[-1].max_tokens
            assert sent_max == limit, f"clamping must send {limit}, sent {sent_max}"
        else:  # "as_asked": the limit is a guess; refused naming it, or sent unchanged
            refusal: InvalidRequestError | None = None
            try:
                await backend.complete(ask(max_tokens=limit + 1))
            except InvalidRequestError as error:
                refusal = error
            if refusal is not None:
                assert refusal.field == "max_tokens", f"a refusal must name max_tokens: {refusal}"
                return
            sent_max = tachikoma_harness.sent_requests()[-1].max_tokens
            assert sent_max == limit + 1, (
                f"max_tokens={limit + 1} was sent as {sent_max}: a limit the backend only "
                "guesses must not change the request silently"
            )


# -- live-capable traits ------------------------------------------------------------


@live
@area("live")
async def test_live_round_trip(tachikoma_backend: Backend, tachikoma_live: bool) -> None:
    if not tachikoma_live:
        pytest.skip("runs only with --live (the scripted traits cover it offline)")
    async with tachikoma_backend as backend:
        assert await backend.health_check() is True, "the live service must check healthy"
        request = ask("Say hi in one word.", max_tokens=16)
        response = await backend.complete(request)
        assert response.text or response.tool_calls, "the live reply was empty"
        if backend.info.capabilities.streaming:
            streamed = await (await backend.complete_stream(request)).collect()
            assert streamed.finish_reason is not None, "the live stream never finished"
