"""Stream lifecycle traits, introduced by Backend contract 2 (collected under ``--plugin``).

Collected with the other trait modules; every trait here carries ``tachikoma_since(2)``,
so plugins declaring contract 1 skip them. They check what shared tests of other
frameworks miss: the chunks themselves (one finish, usage last, stable tool-call ids,
deltas that add up to the final response), and that a stream cancelled mid-way is
closed, releases its upstream connection and reports the partial usage it cost.
"""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from tachikoma_backends_core.backend import Backend
from tachikoma_backends_core.completion import Usage

from .harness import ConformanceHarness, ScriptedReply
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
