"""The ``/api/chat`` NDJSON stream decoder, over hand-written transcripts of what Ollama
sends (text, thinking, tool calls on either kind of line, a mid-stream error) and over
generated replies cut anywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tachikoma_backend_ollama._scripting import chat_lines, error_line, ndjson_bytes
from tachikoma_backend_ollama._wire.stream import OllamaStreamDecoder
from tachikoma_backends_core import (
    CompletionChunk,
    CompletionResponse,
    FinishReason,
    InvalidRequestError,
    ModelNotFoundError,
    OverloadedError,
    ServerError,
    StreamProtocolError,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from tachikoma_backends_core.conformance.invariants import stream_lifecycle_problems
from tachikoma_backends_core.streaming import StreamAccumulator

TRANSCRIPTS = Path(__file__).parent / "transcripts"
CREATED = "2026-11-29T12:00:00.000000000Z"


def transcript(name: str) -> bytes:
    return (TRANSCRIPTS / name).read_bytes()


def decode(*pieces: bytes) -> list[CompletionChunk]:
    """Every chunk the decoder makes of ``pieces`` fed in turn, then closed."""
    decoder = OllamaStreamDecoder()
    chunks = [chunk for piece in pieces for chunk in decoder.feed(piece)]
    return chunks + decoder.close()


def collect(chunks: list[CompletionChunk], model: str = "llama3.2") -> CompletionResponse:
    accumulator = StreamAccumulator(model, "ollama")
    for chunk in chunks:
        accumulator.add(chunk)
    return accumulator.response()


def deltas(chunks: list[CompletionChunk]) -> list[ToolCallDelta]:
    return [delta for chunk in chunks for delta in chunk.tool_call_deltas]


def line(model: str = "llama3.2", **message: Any) -> dict[str, Any]:
    """A ``done: false`` line whose message has ``message``'s fields."""
    return {
        "model": model,
        "created_at": CREATED,
        "message": {"role": "assistant", "content": "", **message},
        "done": False,
    }


def done(
    done_reason: str = "stop", prompt: int = 5, output: int = 3, **message: Any
) -> dict[str, Any]:
    """The final line."""
    return {
        "model": "llama3.2",
        "created_at": CREATED,
        "message": {"role": "assistant", "content": "", **message},
        "done_reason": done_reason,
        "done": True,
        "total_duration": 1_000_000,
        "prompt_eval_count": prompt,
        "eval_count": output,
    }


def ndjson(*values: object) -> bytes:
    """Lines: dicts as Ollama's compact JSON, bytes as they are."""
    return b"".join(
        (v if isinstance(v, bytes) else json.dumps(v, separators=(",", ":")).encode()) + b"\n"
        for v in values
    )


def identities(response: CompletionResponse) -> list[tuple[str, str, str]]:
    return [(c.id, c.name, c.arguments) for c in response.tool_calls]


# --- transcripts ------------------------------------------------------------------------

TEXT = "Bonjour ! Un café ☕ et des sushis 寿司, s'il vous plaît <3"


def test_text_stream() -> None:
    decoder = OllamaStreamDecoder()
    chunks = decoder.feed(transcript("text_stream.ndjson")) + decoder.close()
    assert [c.delta for c in chunks] == [
        "Bonjour",
        " !",
        " Un café",
        " ☕",
        " et des sushis",
        " 寿司",
        ", s'il vous plaît",
        " <3",
        "",
    ]
    assert chunks[:-1] == [CompletionChunk(c.delta) for c in chunks[:-1]], "text only"
    assert chunks[-1] == CompletionChunk(usage=Usage(31, 9), finish_reason=FinishReason.STOP)
    assert decoder.model == "llama3.2"
    assert stream_lifecycle_problems(chunks) == []
    response = collect(chunks)
    assert (response.text, response.thinking, response.tool_calls) == (TEXT, None, [])


def test_thinking_then_text() -> None:
    chunks = decode(transcript("thinking_stream.ndjson"))
    assert [c.thinking for c in chunks[:5]] == [
        "Okay",
        ", the user",
        " asks for 6 \u00d7 7",
        ".\n",
        "That's 42.",
    ]
    assert all(c.delta == "" for c in chunks[:5])
    assert [c.delta for c in chunks[5:8]] == ["6 \u00d7 7", " = ", "**42**"]
    assert all(c.thinking == "" for c in chunks[5:])
    response = collect(chunks, "qwen3:0.6b")
    assert response.thinking == "Okay, the user asks for 6 \u00d7 7.\nThat's 42."
    assert response.content == "6 \u00d7 7 = **42**"
    assert (response.finish_reason, response.usage) == (FinishReason.STOP, Usage(14, 23))
    assert stream_lifecycle_problems(chunks) == []


def test_a_tool_call_on_a_line_before_the_final_one() -> None:
    # Models Ollama renders (qwen3, gpt-oss): the call as soon as it is parsed, then done.
    decoder = OllamaStreamDecoder()
    chunks = decoder.feed(transcript("tool_call_stream.ndjson")) + decoder.close()
    assert chunks[0] == CompletionChunk(thinking="The user wants the weather in Zürich.")
    assert chunks[1] == CompletionChunk(
        tool_call_deltas=(
            ToolCallDelta(0, "call_k3x9q2ab", "get_weather", '{"city":"Zürich","unit":"celsius"}'),
        )
    )
    assert chunks[2] == CompletionChunk(
        usage=Usage(187, 41), finish_reason=FinishReason.TOOL_CALLS
    ), "done_reason 'stop' after a tool call"
    assert decoder.model == "qwen3:0.6b"
    assert stream_lifecycle_problems(chunks) == []
    response = collect(chunks)
    assert response.content is None
    assert response.tool_calls[0].get_string("city") == "Zürich"


PARALLEL = [
    ("call_0mq7z1xc", "get_weather", '{"city":"Zürich","unit":"celsius"}'),
    ("call_9d2kw8te", "get_weather", '{"city":"東京","unit":"celsius"}'),
    (
        "call_p4v6n3ry",
        "get_time",
        '{"timezone":"Europe/Zurich","format":{"hour12":false,"fields":["hour","minute"]}}',
    ),
]


def test_several_tool_calls_in_one_message() -> None:
    chunks = decode(transcript("parallel_tool_calls_stream.ndjson"))
    assert len(chunks) == 2
    assert deltas(chunks) == [ToolCallDelta(i, *call) for i, call in enumerate(PARALLEL)]
    response = collect(chunks, "qwen3:0.6b")
    assert identities(response) == PARALLEL
    assert (response.finish_reason, response.usage) == (FinishReason.TOOL_CALLS, Usage(263, 97))
    assert stream_lifecycle_problems(chunks) == []


def test_tool_calls_on_the_done_line() -> None:
    # HEAD's llama-server path: every call arrives together on the final line.
    chunks = decode(transcript("tool_calls_done_line_stream.ndjson"))
    assert chunks[0] == CompletionChunk("Let me check.")
    assert chunks[1] == CompletionChunk(
        tool_call_deltas=(
            ToolCallDelta(
                0, "Vb3NqY8xK2mZ7pLr4TcW9sHd1FjQ6uEa", "get_weather", '{"location":"東京"}'
            ),
            ToolCallDelta(
                1, "hG5tR1wQ9zXc3vBn7mKj2LpD8sFa4YeU", "get_time", '{"timezone":"Asia/Tokyo"}'
            ),
        ),
        usage=Usage(224, 52),
        finish_reason=FinishReason.TOOL_CALLS,
    )
    assert stream_lifecycle_problems(chunks) == []
    response = collect(chunks)
    assert response.content == "Let me check."
    assert [c.name for c in response.tool_calls] == ["get_weather", "get_time"]


def test_tool_calls_across_several_lines_are_numbered_in_the_stream() -> None:
    # Without ids (Ollama before 0.12.10), each call is call_<its place in the answer>.
    body = ndjson(
        line(tool_calls=[{"function": {"index": 0, "name": "f", "arguments": {"a": 1}}}]),
        line(content="and"),
        line(
            tool_calls=[
                {"function": {"index": 0, "name": "g", "arguments": {}}},
                {"id": "call_zz", "function": {"index": 1, "name": "h", "arguments": {}}},
            ]
        ),
        done(tool_calls=[{"function": {"index": 0, "name": "k", "arguments": {"b": [1]}}}]),
    )
    chunks = decode(body)
    assert deltas(chunks) == [
        ToolCallDelta(0, "call_0", "f", '{"a":1}'),
        ToolCallDelta(1, "call_1", "g", "{}"),
        ToolCallDelta(2, "call_zz", "h", "{}"),
        ToolCallDelta(3, "call_3", "k", '{"b":[1]}'),
    ]
    assert stream_lifecycle_problems(chunks) == []
    assert collect(chunks).finish_reason is FinishReason.TOOL_CALLS


def test_arguments_sent_as_json_text_are_kept() -> None:
    call = {"id": "c", "function": {"name": "f", "arguments": '{"city": "Zürich"}'}}
    chunks = decode(ndjson(line(tool_calls=[call]), done()))
    assert deltas(chunks) == [ToolCallDelta(0, "c", "f", '{"city": "Zürich"}')]


@pytest.mark.parametrize(
    ("done_reason", "expected"),
    [
        ("stop", FinishReason.STOP),
        ("length", FinishReason.LENGTH),
        ("load", FinishReason.STOP),
        ("unload", FinishReason.STOP),
        ("", FinishReason.STOP),
        ("new_reason", FinishReason.STOP),
    ],
)
def test_done_reason(done_reason: str, expected: FinishReason) -> None:
    chunks = decode(ndjson(line(content="Hi"), done(done_reason)))
    assert chunks[-1].finish_reason is expected


def test_length_stream() -> None:
    chunks = decode(transcript("length_stream.ndjson"))
    assert chunks[-1] == CompletionChunk(usage=Usage(28, 5), finish_reason=FinishReason.LENGTH)
    assert collect(chunks).text == "The three laws of thermodynamics are"
    assert stream_lifecycle_problems(chunks) == []


def test_a_done_line_without_reason_or_counts() -> None:
    final = {"model": "llama3.2", "created_at": CREATED, "message": {}, "done": True}
    chunks = decode(ndjson(line(content="Hi"), final))
    assert chunks[-1] == CompletionChunk(usage=Usage(), finish_reason=FinishReason.STOP)


def test_text_and_thinking_on_the_done_line_are_kept() -> None:
    chunks = decode(ndjson(line(content="Hel"), done(content="lo", thinking="hm")))
    assert chunks[-1] == CompletionChunk(
        "lo", thinking="hm", usage=Usage(5, 3), finish_reason=FinishReason.STOP
    )
    assert collect(chunks).text == "Hello"


def test_the_final_chunk_has_usage_and_finish_and_is_the_only_one() -> None:
    chunks = decode(transcript("text_stream.ndjson"))
    assert [c.finish_reason is not None for c in chunks] == [False] * 8 + [True]
    assert [c.usage is not None for c in chunks] == [False] * 8 + [True]


def test_lines_with_nothing_to_say_make_no_chunk() -> None:
    body = ndjson(
        line(),
        line(content=None),
        line(content="", thinking=""),
        line(content="Hi", images=None),
        {"model": "llama3.2", "created_at": CREATED, "done": False},
        done(),
    )
    assert decode(body) == [
        CompletionChunk("Hi"),
        CompletionChunk(usage=Usage(5, 3), finish_reason=FinishReason.STOP),
    ]


# --- the model ----------------------------------------------------------------------------


def test_model_is_the_first_lines() -> None:
    assert OllamaStreamDecoder().model is None
    decoder = OllamaStreamDecoder()
    decoder.feed(ndjson(line("qwen3:0.6b", content="a")))
    assert decoder.model == "qwen3:0.6b"
    decoder.feed(ndjson(line("other", content="b"), done()))
    assert decoder.model == "qwen3:0.6b"


def test_an_empty_model_names_nothing() -> None:
    decoder = OllamaStreamDecoder()
    decoder.feed(ndjson(line("", content="a")))
    assert decoder.model is None
    decoder.feed(ndjson(line("llama3.2", content="b")))
    assert decoder.model == "llama3.2"


# --- errors ---------------------------------------------------------------------------------


def test_an_error_line_comes_after_the_chunks_before_it() -> None:
    decoder = OllamaStreamDecoder()
    chunks = decoder.feed(transcript("error_midstream.ndjson"))
    assert [c.delta for c in chunks] == ["Once", " upon", " a"], "the text comes first"
    with pytest.raises(ServerError, match="an error was encountered while running the model") as e:
        decoder.close()
    assert (e.value.provider, e.value.status_code) == ("ollama", None)


def test_an_error_line_in_a_later_read_is_raised_by_the_next_call() -> None:
    body = transcript("error_midstream.ndjson")
    cut = body.index(b'{"error"')
    decoder = OllamaStreamDecoder()
    assert [c.delta for c in decoder.feed(body[:cut])] == ["Once", " upon", " a"]
    assert decoder.feed(body[cut:]) == [], "held: the stream had started"
    with pytest.raises(ServerError):
        decoder.feed(b"")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("an error was encountered while running the model", ServerError),
        ("model 'llama9' not found", ModelNotFoundError),
        ("server busy, please try again.  maximum pending requests exceeded", OverloadedError),
        ('"llama3.2" does not support thinking', InvalidRequestError),
    ],
)
def test_an_error_as_the_first_line_raises_at_once(message: str, expected: type[Exception]) -> None:
    decoder = OllamaStreamDecoder()
    with pytest.raises(expected, match=r"\w"):
        decoder.feed(ndjson({"error": message}, line(content="never")))
    assert decoder.started is False


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("an error was encountered while running the model: unexpected EOF", ServerError),
        ("server busy, please try again.  maximum pending requests exceeded", OverloadedError),
    ],
)
def test_the_error_line_after_the_first_chunk(message: str, expected: type[Exception]) -> None:
    decoder = OllamaStreamDecoder()
    chunks = decoder.feed(ndjson(line(content="partial")) + error_line(message))
    assert [c.delta for c in chunks] == ["partial"]
    with pytest.raises(expected, match=r"maximum pending|unexpected EOF"):
        decoder.close()


def test_an_error_as_the_first_line_split_across_reads() -> None:
    raw = ndjson({"error": "an error was encountered while running the model"})
    decoder = OllamaStreamDecoder()
    assert decoder.feed(raw[:10]) == []
    with pytest.raises(ServerError):
        decoder.feed(raw[10:])


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\n\n",
        ndjson(line(content="Hi")),
        ndjson(line(content="Hi"), line(content=" there")),
        ndjson(line(content="Hi")) + b'{"model":"llama3.2","message":{"role":"assi',
        ndjson(line(content="Hi")) + b'{"model":"llama3.2","done":tr',
    ],
    ids=["empty", "blank", "no-done", "two-lines-no-done", "cut-in-a-line", "cut-in-done"],
)
def test_a_body_that_ends_before_done_is_cut(body: bytes) -> None:
    with pytest.raises(StreamProtocolError):
        decode(body)


@pytest.mark.parametrize(
    "bad",
    [
        b"<html><body>502 Bad Gateway</body></html>",
        b'{"model": ',
        b'{"a": 1} {"b": 2}',
        b"data: {}",
        b'{"message": {"content": "\xff"}}',
    ],
)
def test_a_line_that_is_not_json_is_a_protocol_error(bad: bytes) -> None:
    with pytest.raises(StreamProtocolError, match=r"JSON|UTF-8"):
        OllamaStreamDecoder().feed(bad + b"\n")
    decoder = OllamaStreamDecoder()
    assert [c.delta for c in decoder.feed(ndjson(line(content="Hi"), bad, done()))] == ["Hi"]
    with pytest.raises(StreamProtocolError, match=r"JSON|UTF-8"):
        decoder.close()


@pytest.mark.parametrize(
    "bad",
    [
        b"[1, 2]",
        b'"text"',
        b"null",
        b"42",
        b'{"model": "llama3.2", "message": "Hi", "done": false}',
        b'{"model": "m", "message": {"content": "", "tool_calls": [{"id": "c"}]}, "done": false}',
        b'{"model": "m", "message": {"content": "", "tool_calls": ["f"]}, "done": false}',
        b'{"model": "m", "message": {"content": "", "tool_calls": [{"function": {"name": ""}}]}}',
    ],
)
def test_json_of_the_wrong_shape_is_a_protocol_error(bad: bytes) -> None:
    with pytest.raises(StreamProtocolError, match="malformed"):
        OllamaStreamDecoder().feed(bad + b"\n")


@pytest.mark.parametrize(
    "bad",
    [
        b'{"model": "m", "message": {"role": "assistant", "content": 5}, "done": false}',
        b'{"model": "m", "message": {"role": "assistant", "content": ["a"]}, "done": false}',
        b'{"model": "m", "message": {"content": "", "thinking": {"a": 1}}, "done": false}',
    ],
    ids=["content-number", "content-list", "thinking-object"],
)
def test_text_that_is_not_a_string_is_a_protocol_error(bad: bytes) -> None:
    # As the first line and after one: a number is no text delta (the accumulator's
    # "".join would fail on it, far from the line that sent it).
    with pytest.raises(StreamProtocolError):
        OllamaStreamDecoder().feed(bad + b"\n")
    with pytest.raises(StreamProtocolError):
        decode(ndjson(line(content="Hi")) + bad + b"\n" + ndjson(done()))


# --- framing ------------------------------------------------------------------------------

# Named, not globbed: other tests keep their own transcripts in the same folder.
TRANSCRIPT_NAMES = [
    "length_stream.ndjson",
    "parallel_tool_calls_stream.ndjson",
    "text_stream.ndjson",
    "thinking_stream.ndjson",
    "tool_call_stream.ndjson",
    "tool_calls_done_line_stream.ndjson",
]


@pytest.mark.parametrize("name", TRANSCRIPT_NAMES)
def test_a_transcript_split_at_every_byte_gives_the_same_chunks(name: str) -> None:
    body = transcript(name)
    whole = decode(body)
    assert stream_lifecycle_problems(whole) == []
    for offset in range(len(body) + 1):
        assert decode(body[:offset], body[offset:]) == whole, offset


def test_a_transcript_fed_a_byte_at_a_time() -> None:
    body = transcript("text_stream.ndjson")
    assert decode(*[body[i : i + 1] for i in range(len(body))]) == decode(body)


def test_the_last_line_without_its_newline_is_decoded_by_close() -> None:
    body = transcript("text_stream.ndjson")
    assert body.endswith(b"}\n")
    decoder = OllamaStreamDecoder()
    chunks = decoder.feed(body[:-1])
    assert chunks[-1].finish_reason is None, "the done line waits for its end"
    assert chunks + decoder.close() == decode(body)


@pytest.mark.parametrize("name", TRANSCRIPT_NAMES)
def test_crlf_line_endings(name: str) -> None:
    body = transcript(name)
    assert decode(body.replace(b"\n", b"\r\n")) == decode(body)


def test_blank_lines_are_skipped() -> None:
    body = transcript("tool_call_stream.ndjson")
    spaced = b"\n" + body.replace(b"\n", b"\n\n  \n\t\r\n") + b"\n\n"
    assert decode(spaced) == decode(body)


def test_nothing_after_done_is_decoded() -> None:
    late = ndjson(line(content="late"), done("length", 99, 99), {"error": "late"})
    body = ndjson(line(content="Hi"), done())
    decoder = OllamaStreamDecoder()
    chunks = decoder.feed(body + late)
    assert chunks == [
        CompletionChunk("Hi"),
        CompletionChunk(usage=Usage(5, 3), finish_reason=FinishReason.STOP),
    ]
    assert decoder.feed(late) == []
    assert decoder.close() == []


# --- generated replies, cut anywhere ------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """What a generated stream says, and how it is sent."""

    text: str
    thinking: str
    calls: list[ToolCall]
    done_reason: str
    usage: Usage
    calls_on_done_line: bool
    ascii_only: bool
    crlf: bool


_NAMES = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_-]{0,20}", fullmatch=True)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_ARGUMENTS = st.dictionaries(st.text(max_size=8), _VALUES, max_size=4)
_COUNTS = st.integers(min_value=0, max_value=10**6)


@st.composite
def replies(draw: st.DrawFn) -> Reply:
    count = draw(st.integers(min_value=0, max_value=3))
    calls = [
        ToolCall(
            id=f"call_{index}{draw(st.text('abcdefxyz0123456789', min_size=1, max_size=8))}",
            name=draw(_NAMES),
            arguments=json.dumps(draw(_ARGUMENTS), ensure_ascii=draw(st.booleans())),
        )
        for index in range(count)
    ]
    return Reply(
        text=draw(st.text(max_size=60)),
        thinking=draw(st.text(max_size=30)),
        calls=calls,
        done_reason=draw(st.sampled_from(["stop", "length"])),
        usage=Usage(draw(_COUNTS), draw(_COUNTS)),
        calls_on_done_line=draw(st.booleans()),
        ascii_only=draw(st.booleans()),
        crlf=draw(st.booleans()),
    )


def body_of(lines: list[dict[str, Any]], *, ascii_only: bool, crlf: bool) -> bytes:
    if ascii_only:
        body = ndjson_bytes(lines)
    else:  # raw UTF-8, as Go writes it: cuts may fall inside a character
        body = "".join(json.dumps(v, ensure_ascii=False) + "\n" for v in lines).encode()
    return body.replace(b"\n", b"\r\n") if crlf else body


@settings(max_examples=200, deadline=None)
@given(reply=replies(), cuts=st.lists(st.integers(min_value=0), max_size=30))
def test_generated_replies_survive_any_split(reply: Reply, cuts: list[int]) -> None:
    lines = chat_lines(
        model="gen-model",
        text=reply.text,
        tool_calls=reply.calls,
        done_reason=reply.done_reason,
        usage=reply.usage,
        thinking=reply.thinking,
        calls_on_done_line=reply.calls_on_done_line,
    )
    body = body_of(lines, ascii_only=reply.ascii_only, crlf=reply.crlf)
    points = sorted({cut % (len(body) + 1) for cut in cuts})
    pieces = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]

    decoder = OllamaStreamDecoder()
    split = [chunk for piece in pieces for chunk in decoder.feed(piece)] + decoder.close()
    assert split == decode(body)
    assert decoder.model == "gen-model"
    assert stream_lifecycle_problems(split) == []

    finish = (
        FinishReason.LENGTH
        if reply.done_reason == "length"
        else FinishReason.natural(bool(reply.calls))
    )
    expected = CompletionResponse(
        content=reply.text,
        tool_calls=[
            ToolCall(
                id=call.id,
                name=call.name,
                arguments=json.dumps(
                    call.parsed_arguments(), ensure_ascii=False, separators=(",", ":")
                ),
            )
            for call in reply.calls
        ],
        finish_reason=finish,
        usage=reply.usage,
        model="gen-model",
        thinking=reply.thinking or None,
    )
    assert collect(split, "gen-model") == expected
    for got, sent in zip(collect(split).tool_calls, reply.calls, strict=True):
        assert got.parsed_arguments() == sent.parsed_arguments()
