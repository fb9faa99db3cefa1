"""Trait tests introduced by Backend contract 2: stream lifecycle and retry discipline.

Collected with `traits` under ``--plugin``; every trait here carries
``tachikoma_since(2)``, so plugins declaring contract 1 skip them. They check what
shared tests of other frameworks miss: the chunks themselves (one finish, usage last,
stable tool-call ids), that a cancelled stream releases its connection and accounts for
what it cost, and that a plugin leaves retrying to the core's single loop.
"""

from __future__ import annotations

import contextlib

import anyio
import anyio.lowlevel
import pytest

from tachikoma_backends_core import registry
from tachikoma_backends_core.backend import Backend
from tachikoma_backends_core.clock import FakeClock
from tachikoma_backends_core.completion import Usage
from tachikoma_backends_core.errors import BackendError, RateLimitError
from tachikoma_backends_core.hooks import Hooks
from tachikoma_backends_core.managed import ManagedBackend
from tachikoma_backends_core.retry import RetryPolicy

from .harness import ConformanceHarness, ErrorKind, ScriptedFailure, ScriptedReply
from .invariants import stream_lifecycle_problems
from .traits import PARALLEL, READ_FILE, TEXT, area, ask, calls_summary, requires, since

pytestmark = pytest.mark.anyio

LIFECYCLE_REPLIES = {
    "text": ScriptedReply(text=TEXT, usage=Usage(21, 13)),
    "tool_calls": ScriptedReply(text="Reading.", tool_calls=PARALLEL, usage=Usage(21, 13)),
}


@since(2)
@area("streaming")
@requires("streaming")
@pytest.mark.parametrize("shape", list(LIFECYCLE_REPLIES))
async def test_stream_lifecycle_invariants(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend, shape: str
) -> None:
    reply = LIFECYCLE_REPLIES[shape]
    if reply.tool_calls and not tachikoma_backend.info.capabilities.tool_calling:
        pytest.skip(f"{tachikoma_backend.info.name} does not declare tool_calling")
    tachikoma_harness.script_reply(reply)
    request = ask().with_tools([READ_FILE]) if reply.tool_calls else ask()
    async with tachikoma_backend as backend:
        stream = await backend.complete_stream(request)
        async with stream:
            chunks = [chunk async for chunk in stream]
        collected = await stream.collect()
    problems = stream_lifecycle_problems(chunks)
    assert not problems, "stream lifecycle invariant broken: " + "; ".join(problems)
    assert "".join(chunk.delta for chunk in chunks) == collected.content == reply.text, (
        "the text deltas must add up to the final response"
    )
    assert calls_summary(collected.tool_calls) == calls_summary(list(reply.tool_calls)), (
        "the tool-call deltas must add up to the final response's tool calls"
    )
    assert collected.usage == reply.usage, "the final usage must be the provider's"


@since(2)
@area("streaming")
@requires("streaming")
async def test_cancelling_mid_stream_closes_the_upstream(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    reply = ScriptedReply(text=TEXT, usage=Usage(21, 13))
    tachikoma_harness.script_reply(reply)
    tachikoma_harness.script_reply(ScriptedReply(text="after"))
    async with tachikoma_backend as backend:
        stream = await backend.complete_stream(ask())
        async with stream:
            with anyio.CancelScope() as scope:
                async for _chunk in stream:
                    scope.cancel()  # cancel the task while it reads the stream
                    await anyio.lowlevel.checkpoint()
        assert scope.cancelled_caught, "the cancellation must reach the reader"
        assert stream.closed, "a cancelled stream must be closed"
        still_open = tachikoma_harness.open_responses()
        assert still_open is not None, (
            f"{type(tachikoma_harness).__name__}.open_responses() must count open responses "
            "(contract 2)"
        )
        assert still_open == 0, f"{still_open} upstream response(s) left open after cancelling"
        expected = tachikoma_harness.partial_usage(reply)
        assert stream.usage == expected, (
            f"a cancelled stream must report the partial usage the provider gave "
            f"({expected}), got {stream.usage}"
        )
        with anyio.fail_after(10):
            response = await backend.complete(ask())
    assert response.content == "after", "the backend must work normally after a cancellation"


RETRYABLE_KINDS = [ErrorKind.RATE_LIMIT, ErrorKind.OVERLOADED, ErrorKind.SERVER_ERROR]


@since(2)
@area("retries")
@pytest.mark.parametrize("kind", RETRYABLE_KINDS, ids=[k.value for k in RETRYABLE_KINDS])
@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_no_hidden_retries(
    tachikoma_harness: ConformanceHarness,
    tachikoma_backend: Backend,
    kind: ErrorKind,
    streamed: bool,
) -> None:
    """With retries disabled, one call is one HTTP attempt: retrying is the core's job."""
    if streamed and not tachikoma_backend.info.capabilities.streaming:
        pytest.skip(f"{tachikoma_backend.info.name} does not declare streaming")
    tachikoma_harness.script_failure(ScriptedFailure(kind, retry_after=1.0))
    tachikoma_harness.script_reply(ScriptedReply(text="only for a hidden retry"))
    before = tachikoma_harness.attempts()
    outcome: BaseException | None = None
    async with tachikoma_backend as backend:
        call = backend.complete_stream if streamed else backend.complete
        try:
            await call(ask())
        except BackendError as error:
            outcome = error
    made = tachikoma_harness.attempts() - before
    # Attempts first: a hidden retry that succeeds would otherwise look like a wrong answer.
    assert made == 1, (
        f"one call with retries disabled (max_retries=0) made {made} attempts: the plugin "
        "retries on its own underneath the core's retry loop; leave retrying to the core"
    )
    assert outcome is not None, f"the scripted {kind.value} failure must reach the caller"


@since(2)
@area("retries")
async def test_core_retry_loop_recovers(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    """The core's loop retries what the plugin marks retryable, honouring retry_after."""
    clock = FakeClock(auto_advance=True)
    tachikoma_harness.script_failure(ScriptedFailure(ErrorKind.RATE_LIMIT, retry_after=3.0))
    tachikoma_harness.script_reply(ScriptedReply(text="recovered"))
    before = tachikoma_harness.attempts()
    assert isinstance(tachikoma_backend, ManagedBackend)  # the suite always manages it
    managed = tachikoma_backend.with_options(retry_policy=RetryPolicy(max_attempts=2, clock=clock))
    async with managed as backend:
        response = await backend.complete(ask())
    assert response.content == "recovered"
    assert tachikoma_harness.attempts() - before == 2, "one failed attempt, one retry"
    assert clock.slept == [3.0], "the retry must wait the provider's retry_after"


@since(2)
@area("retries")
async def test_max_retries_sizes_the_only_retry_loop(
    tachikoma_harness: ConformanceHarness, tachikoma_plugin: str
) -> None:
    """``max_retries=1`` means two attempts in all, not two per layer.

    A plugin that hands its ``max_retries`` to a retry loop of its own (an SDK's, say)
    passes with retries off but multiplies attempts once they are on.
    """
    if "max_retries" not in registry.get(tachikoma_plugin).config_model.model_fields:
        pytest.skip(f"{tachikoma_plugin} has no max_retries setting (the core never retries it)")
    created = tachikoma_harness.create_backend(max_retries=1)
    assert isinstance(created, ManagedBackend), (
        "create_backend must build through plugin.create, which puts the core's loop in front"
    )
    assert created.retry_policy.max_attempts == 2, "max_retries=1 must mean 2 attempts"
    clock = FakeClock(auto_advance=True)
    backend = created.with_options(
        retry_policy=RetryPolicy(max_attempts=2, clock=clock), hooks=Hooks()
    )
    for _ in range(2):
        tachikoma_harness.script_failure(ScriptedFailure(ErrorKind.RATE_LIMIT, retry_after=1.0))
    tachikoma_harness.script_reply(ScriptedReply(text="only for a third attempt"))
    before = tachikoma_harness.attempts()
    async with backend:
        with contextlib.suppress(RateLimitError):  # a clean plugin fails twice, then gives up
            await backend.complete(ask())
    made = tachikoma_harness.attempts() - before
    assert made == 2, (
        f"max_retries=1 made {made} attempts instead of 2: the plugin retries on its own "
        "as well as the core"
    )
