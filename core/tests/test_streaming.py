"""CompletionStream guarantees and StreamAccumulator, independent of any plugin."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tachikoma_backends_core import (
    CompletionChunk,
    CompletionStream,
    FinishReason,
    MissingUsageWarning,
    NetworkError,
    StreamAccumulator,
    StreamProtocolError,
    ToolCall,
    ToolCallDelta,
    Usage,
)

pytestmark = pytest.mark.anyio
FINAL = CompletionChunk.final_chunk(Usage.new(3, 2), FinishReason.STOP)


class Upstream:
    """A scripted upstream that records whether it was closed (like an HTTP response)."""

    def __init__(self, chunks: list[CompletionChunk], fail_with: Exception | None = None):
        self.chunks = chunks
        self.fail_with = fail_with
        self.closed = 0
        self.on_close_calls = 0

    async def produce(self) -> AsyncIterator[CompletionChunk]:
        try:
            for chunk in self.chunks:
                await anyio.lowlevel.checkpoint()
                yield chunk
            if self.fail_with is not None:
                raise self.fail_with
        finally:
            self.closed += 1

    async def on_close(self) -> None:
        self.on_close_calls += 1

    def stream(self) -> CompletionStream:
        return CompletionStream(self.produce(), model="m", provider="p", on_close=self.on_close)


async def test_iterates_collects_and_closes_once() -> None:
    upstream = Upstream([CompletionChunk.text("Hel"), CompletionChunk.text("lo"), FINAL])
    stream = upstream.stream()
    first = await stream.__anext__()
    assert first.delta == "Hel"
    response = await stream.collect()
    assert response.content == "Hello"  # collect() includes chunks already read
    assert (response.finish_reason, response.usage, response.model) == (
        FinishReason.STOP,
        Usage.new(3, 2),
        "m",
    )
    await stream.aclose()
    assert stream.closed
    assert (upstream.closed, upstream.on_close_calls) == (1, 1)


async def test_breaking_out_of_async_with_closes_upstream() -> None:
    upstream = Upstream([CompletionChunk.text("a"), CompletionChunk.text("b"), FINAL])
    async with upstream.stream() as stream:
        async for _chunk in stream:
            break
    assert (upstream.closed, upstream.on_close_calls) == (1, 1)
    assert [chunk async for chunk in stream] == []  # a closed stream yields nothing


async def test_cancellation_closes_upstream() -> None:
    async def slow() -> AsyncIterator[CompletionChunk]:
        yield CompletionChunk.text("a")
        await anyio.sleep(3600)
        yield FINAL

    closed = []

    async def on_close() -> None:
        closed.append(True)

    stream = CompletionStream(slow(), model="m", on_close=on_close)
    with anyio.move_on_after(0.05):
        async with stream:
            async for _chunk in stream:
                pass
    assert stream.closed
    assert closed == [True]


async def test_stream_ending_without_finish_is_a_protocol_error() -> None:
    upstream = Upstream([CompletionChunk.text("cut off")])
    with pytest.raises(StreamProtocolError, match="no finish reason"):
        await upstream.stream().collect()
    assert upstream.closed == 1


async def test_backend_errors_pass_through_and_close() -> None:
    upstream = Upstream([CompletionChunk.text("a")], fail_with=NetworkError("reset"))
    with pytest.raises(NetworkError, match="reset"):
        await upstream.stream().collect()
    assert upstream.on_close_calls == 1


async def test_unexpected_exceptions_become_protocol_errors() -> None:
    upstream = Upstream([CompletionChunk.text("a")], fail_with=KeyError("choices"))
    with pytest.raises(StreamProtocolError, match="unexpected KeyError") as raised:
        await upstream.stream().collect()
    assert isinstance(raised.value.__cause__, KeyError)
    assert raised.value.provider == "p"


async def test_from_chunks_streams_a_fixed_list() -> None:
    stream = CompletionStream.from_chunks([CompletionChunk.text("x"), FINAL], model="m")
    assert (await stream.collect()).content == "x"


def test_accumulator_joins_tool_call_fragments_by_index() -> None:
    accumulator = StreamAccumulator("m")
    for delta in [
        ToolCallDelta(index=1, id="c2", name="second"),
        ToolCallDelta(index=0, id="c1", name="first"),
        ToolCallDelta(index=0, arguments_delta='{"a":'),
        ToolCallDelta(index=1, arguments_delta="{}"),
        ToolCallDelta(index=0, arguments_delta="1}"),
    ]:
        accumulator.add(CompletionChunk(tool_call_deltas=[delta]))
    accumulator.add(CompletionChunk.final_chunk(Usage.new(1, 1), FinishReason.TOOL_CALLS))
    response = accumulator.response()
    assert response.content is None
    assert response.tool_calls == [
        ToolCall(id="c1", name="first", arguments='{"a":1}'),
        ToolCall(id="c2", name="second", arguments="{}"),
    ]


def test_accumulator_joins_a_refusal_apart_from_the_text() -> None:
    accumulator = StreamAccumulator("m")
    for chunk in [CompletionChunk(refusal="I can't "), CompletionChunk(refusal="do that.")]:
        accumulator.add(chunk)
    accumulator.add(CompletionChunk.final_chunk(Usage.new(1, 1), FinishReason.STOP))
    response = accumulator.response()
    assert (response.content, response.refusal) == ("", "I can't do that.")


def test_accumulator_refuses_a_tool_call_without_a_name() -> None:
    accumulator = StreamAccumulator("m", provider="p")
    accumulator.add(CompletionChunk(tool_call_deltas=[ToolCallDelta(index=0, id="c1")]))
    accumulator.add(FINAL)
    with pytest.raises(StreamProtocolError, match="never received its name"):
        accumulator.response()


@given(
    text=st.text(max_size=200),
    arguments=st.dictionaries(st.text(max_size=5), st.integers(), max_size=5),
    data=st.data(),
)
def test_any_chunking_adds_up_to_the_same_response(
    text: str, arguments: dict[str, int], data: st.DataObject
) -> None:
    def split(value: str) -> list[str]:
        cuts = sorted(data.draw(st.lists(st.integers(0, len(value)), max_size=8)))
        bounds = [0, *cuts, len(value)]
        return [value[a:b] for a, b in itertools.pairwise(bounds) if value[a:b]]

    payload = json.dumps(arguments)
    accumulator = StreamAccumulator("m")
    for piece in split(text):
        accumulator.add(CompletionChunk.text(piece))
    accumulator.add(CompletionChunk(tool_call_deltas=[ToolCallDelta(0, "c", "t")]))
    for piece in split(payload):
        accumulator.add(CompletionChunk(tool_call_deltas=[ToolCallDelta(0, arguments_delta=piece)]))
    accumulator.add(FINAL)
    response = accumulator.response()
    assert response.text == text
    assert response.tool_calls[0].parsed_arguments() == arguments


@pytest.mark.parametrize("count", [63, 64, 65, 128, 1000])
def test_a_long_text_adds_up_whatever_its_length(count: int) -> None:
    """Deltas are kept joined in blocks (a long answer would otherwise hold one string
    object per token): the text, read at any point, is still every delta in order."""
    deltas = [f"{index}é " for index in range(count)]
    accumulator = StreamAccumulator("m")
    for index, delta in enumerate(deltas, start=1):
        accumulator.add(CompletionChunk.text(delta))
        if index % 50 == 0 or index == count:
            assert accumulator.text == "".join(deltas[:index])
    accumulator.add(FINAL)
    assert accumulator.response().text == "".join(deltas)


# The lifecycle held at run time (issue 13): before, each of these passed through to the
# caller, and only the conformance suite's chunk checks noticed.
LIFECYCLE_BREAKS = {
    "a second finish": [CompletionChunk.text("Hi"), FINAL, FINAL],
    "text after the finish": [CompletionChunk.text("Hi"), FINAL, CompletionChunk.text("!")],
    "a tool call renamed": [
        CompletionChunk(tool_call_deltas=[ToolCallDelta(index=0, id="c1", name="get")]),
        CompletionChunk(tool_call_deltas=[ToolCallDelta(index=0, name="put")]),
        FINAL,
    ],
    "a tool call given a new id": [
        CompletionChunk(tool_call_deltas=[ToolCallDelta(index=0, id="c1", name="get")]),
        CompletionChunk(tool_call_deltas=[ToolCallDelta(index=0, id="c2")]),
        FINAL,
    ],
}


@pytest.mark.parametrize("chunks", LIFECYCLE_BREAKS.values(), ids=LIFECYCLE_BREAKS.keys())
async def test_a_stream_breaking_its_lifecycle_is_a_typed_error_and_closes(
    chunks: list[CompletionChunk],
) -> None:
    upstream = Upstream(chunks)
    stream = upstream.stream()
    seen: list[CompletionChunk] = []

    async def read_all() -> None:
        async for chunk in stream:
            seen.append(chunk)

    with pytest.raises(StreamProtocolError, match=r"final chunk|mid-stream") as raised:
        await read_all()
    assert raised.value.provider == "p"
    assert sum(chunk.finish_reason is not None for chunk in seen) <= 1
    assert (upstream.closed, upstream.on_close_calls) == (1, 1)
    with pytest.raises(StreamProtocolError):
        await upstream.stream().collect()


async def test_a_tool_call_repeating_its_id_and_name_on_every_fragment_is_fine() -> None:
    fragment = ToolCallDelta(index=0, id="c1", name="get", arguments_delta='{"a"')
    rest = ToolCallDelta(index=0, id="c1", name="get", arguments_delta=": 1}")
    chunks = [
        CompletionChunk(tool_call_deltas=[fragment]),
        CompletionChunk(tool_call_deltas=[rest]),
    ]
    final = CompletionChunk.final_chunk(Usage.new(1, 1), FinishReason.TOOL_CALLS)
    response = await Upstream([*chunks, final]).stream().collect()
    assert response.tool_calls == [ToolCall(id="c1", name="get", arguments='{"a": 1}')]


async def test_a_stream_that_finishes_without_usage_warns_once() -> None:
    finish = CompletionChunk(finish_reason=FinishReason.STOP)
    stream = CompletionStream.from_chunks(
        [CompletionChunk.text("Hi"), finish], model="m", provider="acme"
    )
    with pytest.warns(MissingUsageWarning, match="the acme stream finished without reporting"):
        response = await stream.collect()
    assert response.usage == Usage()
    again = await stream.collect()  # no second warning: warnings are errors in this suite
    assert again.usage == Usage()


async def test_a_stream_with_usage_does_not_warn() -> None:
    final = CompletionChunk.final_chunk(Usage(3, 4), FinishReason.STOP)
    stream = CompletionStream.from_chunks([CompletionChunk.text("Hi"), final], model="m")
    assert (await stream.collect()).usage == Usage(3, 4)


async def test_a_close_callback_runs_after_the_upstream_closes_and_says_how_it_ended() -> None:
    upstream = Upstream([CompletionChunk.text("Hi"), FINAL])
    stream = upstream.stream()
    seen: list[tuple[int, bool, Usage | None]] = []

    async def settle() -> None:
        seen.append((upstream.on_close_calls, stream.exhausted, stream.reported_usage))

    stream.add_on_close(settle)
    assert (await stream.collect()).content == "Hi"
    assert seen == [(1, True, FINAL.usage)]
    with pytest.raises(RuntimeError, match="already closed"):
        stream.add_on_close(settle)


async def test_a_stream_left_early_or_unfinished_is_not_exhausted() -> None:
    early = Upstream([CompletionChunk.text("Hi"), FINAL]).stream()
    async with early:
        await early.__anext__()
    assert (early.exhausted, early.reported_usage) == (False, None)

    cut = Upstream([CompletionChunk.text("Hi")]).stream()
    with pytest.raises(StreamProtocolError):
        await cut.collect()
    assert cut.exhausted is False
