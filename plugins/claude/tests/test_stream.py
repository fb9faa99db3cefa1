"""The stream decoder over hand-written Messages API transcripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tachikoma_backend_claude._wire.stream import ClaudeStreamDecoder
from tachikoma_backends_core import (
    CompletionChunk,
    CompletionResponse,
    FinishReason,
    InvalidRequestError,
    OverloadedError,
    RateLimitError,
    ServerError,
    StreamProtocolError,
    ToolCallDelta,
    Usage,
)
from tachikoma_backends_core.streaming import StreamAccumulator

TRANSCRIPTS = Path(__file__).parent / "transcripts"


def transcript(name: str) -> bytes:
    return (TRANSCRIPTS / name).read_bytes()


def decode(*pieces: bytes) -> list[CompletionChunk]:
    decoder = ClaudeStreamDecoder()
    chunks = [chunk for piece in pieces for chunk in decoder.feed(piece)]
    return chunks + decoder.close()


def collect(chunks: list[CompletionChunk]) -> CompletionResponse:
    accumulator = StreamAccumulator("claude-test", "claude")
    for chunk in chunks:
        accumulator.add(chunk)
    return accumulator.response()


def event(name: str, data: object) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


START = event(
    "message_start",
    {"type": "message_start", "message": {"model": "claude-x", "usage": {"input_tokens": 3}}},
)
STOP = event("message_stop", {"type": "message_stop"})


def text_delta(text: str, index: int = 0) -> bytes:
    delta = {"type": "text_delta", "text": text}
    return event(
        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    )


def test_text_stream() -> None:
    chunks = decode(transcript("text_stream.sse"))
    assert [c.delta for c in chunks[:-1]] == [
        "Bonjour! Un café ☕ ",
        "et des sushis 寿司, ",
        "s'il vous plaît.",
    ]
    assert chunks[-1] == CompletionChunk(usage=Usage(25, 15), finish_reason=FinishReason.STOP)
    assert [c for c in chunks if c.finish_reason is not None] == [chunks[-1]]


def test_tool_use_stream_numbers_calls_densely_and_reassembles_arguments() -> None:
    chunks = decode(transcript("tool_use_stream.sse"))
    deltas = [d for c in chunks for d in c.tool_call_deltas]
    assert deltas[0] == ToolCallDelta(0, "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather")
    assert {d.index for d in deltas} == {0, 1}, "content block 1 and 2 are tool calls 0 and 1"
    # A tool call that streamed no input still gets its (empty) arguments.
    assert deltas[-1] == ToolCallDelta(1, arguments_delta="{}")
    response = collect(chunks)
    assert response.text == "Okay, let's check the weather for San Francisco, CA:"
    assert [(c.id, c.name, c.parsed_arguments()) for c in response.tool_calls] == [
        (
            "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "get_weather",
            {"location": "San Francisco, CA", "unit": "fahrenheit"},
        ),
        ("toolu_01ABCnoargs0000000000000", "get_time", {}),
    ]
    assert response.finish_reason is FinishReason.TOOL_CALLS
    assert response.usage == Usage(
        472, 89, cache_creation_input_tokens=1024, cache_read_input_tokens=2048
    )


def test_thinking_is_surfaced_and_signature_deltas_are_ignored() -> None:
    response = collect(decode(transcript("thinking_stream.sse")))
    assert (response.text, response.finish_reason) == ("4", FinishReason.LENGTH)
    assert response.thinking, "the thinking deltas add up to the response's thinking"
    assert "signature" not in response.thinking


def test_message_start_gives_the_model_the_early_usage_and_marks_the_start() -> None:
    decoder = ClaudeStreamDecoder()
    assert (decoder.started, decoder.model, decoder.start_usage) == (False, None, None)
    assert decoder.feed(START) == []
    assert (decoder.started, decoder.model) == (True, "claude-x")
    assert decoder.start_usage == Usage(3, 0)
    delta = {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 40}}
    decoder.feed(event("message_delta", delta))
    assert decoder.start_usage == Usage(3, 0), "later counts do not change the early usage"


def test_error_event_after_chunks_is_raised_after_them() -> None:
    decoder = ClaudeStreamDecoder()
    chunks = decoder.feed(transcript("overloaded_midstream.sse"))
    assert [c.delta for c in chunks] == ["Once upon"], "chunks before the error come first"
    with pytest.raises(OverloadedError) as raised:
        decoder.close()
    assert raised.value.retryable is True
    assert raised.value.provider_error_type == "overloaded_error"
    assert raised.value.status_code is None


def test_error_event_before_message_start_raises_at_once() -> None:
    error = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    with pytest.raises(RateLimitError):
        ClaudeStreamDecoder().feed(event("error", error))


@pytest.mark.parametrize(
    ("error_type", "expected"),
    [
        ("overloaded_error", OverloadedError),
        ("api_error", ServerError),
        ("invalid_request_error", InvalidRequestError),
        ("some_future_error", ServerError),
    ],
)
def test_error_event_types(error_type: str, expected: type[Exception]) -> None:
    error = {"type": "error", "error": {"type": error_type, "message": "boom"}}
    decoder = ClaudeStreamDecoder()
    decoder.feed(START + event("error", error))
    with pytest.raises(expected):
        decoder.close()


def test_a_stream_without_message_stop_is_truncated() -> None:
    body = transcript("text_stream.sse")
    cut = body.index(b"event: message_delta")
    with pytest.raises(StreamProtocolError, match="message_stop"):
        decode(body[:cut])


def test_an_empty_body_is_truncated() -> None:
    with pytest.raises(StreamProtocolError):
        decode(b"")


def test_invalid_json_is_a_protocol_error() -> None:
    decoder = ClaudeStreamDecoder()
    decoder.feed(START + text_delta("Hi") + b"event: content_block_delta\ndata: {not json\n\n")
    with pytest.raises(StreamProtocolError, match="does not carry JSON"):
        decoder.close()


def test_json_with_surrounding_whitespace_is_still_json() -> None:
    body = START.replace(b"data: {", b"data:   {").replace(b"}}\n\n", b"}}  \t\n\n")
    assert body != START
    chunks = decode(body + text_delta("ok") + STOP)
    assert [c.delta for c in chunks] == ["ok", ""]


@pytest.mark.parametrize("data", [b"123abc", b'{"type": "x"} trailing', b"[1, 2", b""])
def test_data_that_is_not_one_json_value_is_a_protocol_error(data: bytes) -> None:
    decoder = ClaudeStreamDecoder()
    with pytest.raises(StreamProtocolError, match="does not carry JSON"):
        decoder.feed(b"event: content_block_delta\ndata: " + data + b"\n\n")


def test_malformed_event_shape_is_a_protocol_error() -> None:
    with pytest.raises(StreamProtocolError, match="malformed"):
        decode(START + event("content_block_delta", {"type": "content_block_delta"}) + STOP)


def test_invalid_utf8_is_a_protocol_error() -> None:
    with pytest.raises(StreamProtocolError, match="UTF-8"):
        ClaudeStreamDecoder().feed(b"data: \xff\n\n")


def test_ping_and_unknown_events_are_ignored() -> None:
    body = START + event("ping", {"type": "ping"}) + event("future_event", {"x": 1})
    chunks = decode(body + text_delta("ok") + STOP)
    assert [c.delta for c in chunks] == ["ok", ""]


def test_events_after_message_stop_are_ignored() -> None:
    chunks = decode(START + text_delta("ok") + STOP + text_delta("late") + STOP)
    assert [c.delta for c in chunks] == ["ok", ""]
    assert chunks[-1].finish_reason is FinishReason.STOP


def test_events_without_event_lines_use_the_data_type() -> None:
    body = b'data: {"type": "message_start", "message": {"model": "m"}}\n\n'
    body += b'data: {"type": "message_stop"}\n\n'
    assert decode(body)[-1].finish_reason is FinishReason.STOP


def test_message_delta_usage_replaces_earlier_counts() -> None:
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "stop_sequence"},
        "usage": {"output_tokens": 9, "input_tokens": 5, "cache_read_input_tokens": None},
    }
    chunks = decode(START + event("message_delta", delta) + STOP)
    assert chunks[-1] == CompletionChunk(
        usage=Usage(5, 9), finish_reason=FinishReason.STOP_SEQUENCE
    )


def test_server_tool_input_is_not_a_client_tool_call() -> None:
    block = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
    start = {"type": "content_block_start", "index": 0, "content_block": block}
    delta = {"type": "input_json_delta", "partial_json": '{"query": "x"}'}
    body = START + event("content_block_start", start)
    body += event(
        "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
    )
    chunks = decode(body + STOP)
    assert all(not c.tool_call_deltas for c in chunks)


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(["text_stream.sse", "tool_use_stream.sse", "thinking_stream.sse"]),
    crlf=st.booleans(),
    cuts=st.lists(st.integers(min_value=0), max_size=40),
)
def test_any_split_of_a_transcript_gives_the_same_chunks(
    name: str, crlf: bool, cuts: list[int]
) -> None:
    body = transcript(name)
    if crlf:
        body = body.replace(b"\n", b"\r\n")
    points = sorted({cut % (len(body) + 1) for cut in cuts})
    pieces = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    whole = decode(body)
    split = decode(*pieces)
    assert split == whole
    assert collect(split) == collect(whole)


@settings(max_examples=100, deadline=None)
@given(size=st.integers(min_value=1, max_value=7))
def test_byte_by_byte_and_small_chunks(size: int) -> None:
    body = transcript("text_stream.sse")
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    assert (
        collect(decode(*pieces)).text == "Bonjour! Un café ☕ et des sushis 寿司, s'il vous plaît."
    )
