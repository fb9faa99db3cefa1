"""The Chat Completions stream decoder, over hand-written transcripts of OpenAI and of the
OpenAI-compatible servers whose quirks it forgives (each test names and cites its server).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tachikoma_backend_openai._scripting import (
    FINISH_REASON_FOR,
    error_event,
    sse_bytes,
    stream_chunks,
    usage_body,
)
from tachikoma_backend_openai._wire.stream import OpenAIStreamDecoder
from tachikoma_backends_core import (
    BackendError,
    CompletionChunk,
    CompletionResponse,
    ContextLengthExceededError,
    FinishReason,
    InvalidRequestError,
    OverloadedError,
    RateLimitError,
    ServerError,
    StreamProtocolError,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from tachikoma_backends_core.conformance.invariants import stream_lifecycle_problems
from tachikoma_backends_core.streaming import StreamAccumulator

TRANSCRIPTS = Path(__file__).parent / "transcripts"
DONE = b"data: [DONE]\n\n"
NO_USAGE = "no usage arrived with or after the finish"


def transcript(name: str) -> bytes:
    return (TRANSCRIPTS / name).read_bytes()


def decode(*pieces: bytes) -> list[CompletionChunk]:
    """Every chunk the decoder makes of ``pieces`` fed in turn, then closed."""
    decoder = OpenAIStreamDecoder()
    chunks = [chunk for piece in pieces for chunk in decoder.feed(piece)]
    return chunks + decoder.close()


def collect(chunks: list[CompletionChunk], model: str = "gpt-test") -> CompletionResponse:
    accumulator = StreamAccumulator(model, "openai")
    for chunk in chunks:
        accumulator.add(chunk)
    return accumulator.response()


def deltas(chunks: list[CompletionChunk]) -> list[ToolCallDelta]:
    return [delta for chunk in chunks for delta in chunk.tool_call_deltas]


def sse(*events: object) -> bytes:
    """``data:`` events: dicts as JSON, bytes as they are."""
    return b"".join(
        b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n\n"
        for e in events
    )


def chunk(
    delta: dict[str, Any] | None = None, finish: str | None = None, **top: Any
) -> dict[str, Any]:
    """A ``chat.completion.chunk`` with one choice (extra top-level fields in ``top``)."""
    choice = {"index": 0, "delta": {} if delta is None else delta, "finish_reason": finish}
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1_764_000_000,
        "model": "gpt-test",
        "choices": [choice],
        **top,
    }


def usage_chunk(prompt: int, completion: int) -> dict[str, Any]:
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    return {"id": "chatcmpl-test", "object": "chat.completion.chunk", "choices": [], "usage": usage}


def call(
    index: int | None, call_id: str | None = None, name: str | None = None, arguments: Any = ""
) -> dict[str, Any]:
    """One ``delta.tool_calls[]`` fragment; ``index=None`` leaves the index out."""
    fragment: dict[str, Any] = {}
    if index is not None:
        fragment["index"] = index
    if call_id is not None:
        fragment["id"] = call_id
        fragment["type"] = "function"
    function: dict[str, Any] = {"arguments": arguments}
    if name is not None:
        function["name"] = name
    fragment["function"] = function
    return fragment


def tools(*fragments: dict[str, Any]) -> dict[str, Any]:
    return {"tool_calls": list(fragments)}


def identities(response: CompletionResponse) -> list[tuple[str, str, str]]:
    return [(c.id, c.name, c.arguments) for c in response.tool_calls]


# --- Transcripts of OpenAI ----------------------------------------------------------


def test_text_stream() -> None:
    decoder = OpenAIStreamDecoder()
    chunks = decoder.feed(transcript("text_stream.sse")) + decoder.close()
    assert [c.delta for c in chunks[:-1]] == [
        "Bonjour",
        "!",
        " Un café",
        " ☕",
        " et des sushis",
        " 寿司",
        ", s'il vous plaît.",
    ], "the role chunk (content '') makes no chunk"
    assert chunks[-1] == CompletionChunk(usage=Usage(25, 15), finish_reason=FinishReason.STOP)
    assert decoder.model == "gpt-5.4-mini-2026-03-17"
    assert stream_lifecycle_problems(chunks) == []
    assert collect(chunks).text == "Bonjour! Un café ☕ et des sushis 寿司, s'il vous plaît."


def test_the_finish_waits_for_the_usage_chunk() -> None:
    body = transcript("text_stream.sse")
    usage_at = body.index(b'"choices":[]')
    decoder = OpenAIStreamDecoder()
    before = decoder.feed(body[: body.rindex(b"data: ", 0, usage_at)])
    assert all(c.finish_reason is None for c in before), "the finish is held for the usage"
    final = decoder.feed(body[body.rindex(b"data: ", 0, usage_at) :])
    assert final == [CompletionChunk(usage=Usage(25, 15), finish_reason=FinishReason.STOP)]
    assert decoder.close() == []


def test_one_tool_call() -> None:
    chunks = decode(transcript("tool_call_stream.sse"))
    calls = deltas(chunks)
    assert calls[0] == ToolCallDelta(0, "call_Zb3vQ1mJx8TnR4kLp6WcY2hE", "get_weather")
    assert all(d == ToolCallDelta(0, arguments_delta=d.arguments_delta) for d in calls[1:])
    response = collect(chunks)
    assert identities(response) == [
        (
            "call_Zb3vQ1mJx8TnR4kLp6WcY2hE",
            "get_weather",
            '{"location":"San Francisco, CA","unit":"fahrenheit"}',
        )
    ]
    assert response.content is None
    assert (response.finish_reason, response.usage) == (FinishReason.TOOL_CALLS, Usage(82, 18))
    assert stream_lifecycle_problems(chunks) == []


PARALLEL_CALLS = [
    ("call_0aB1cD2eF3gH4iJ5kL6mN7oP", "get_weather", '{"location":"Zürich, CH","unit":"celsius"}'),
    ("call_Qr8St9Uv0Wx1Yz2Ab3Cd4Ef5", "get_weather", '{"location":"東京","unit":"celsius"}'),
    ("call_Gh6Ij7Kl8Mn9Op0Qr1St2Uv3", "get_time", '{"timezone":"Europe/Zurich"}'),
]
PARALLEL_USAGE = Usage(140, 71, cache_read_input_tokens=1024)


def test_three_parallel_tool_calls_with_interleaved_fragments() -> None:
    chunks = decode(transcript("parallel_tool_calls_stream.sse"))
    calls = deltas(chunks)
    # The three openers first, each announcing its id and name once...
    assert calls[:3] == [ToolCallDelta(i, c[0], c[1]) for i, c in enumerate(PARALLEL_CALLS)]
    # ...then argument fragments round-robin, each on its own call's index.
    assert [d.index for d in calls[3:]] == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1]
    assert all(d.id is None and d.name is None for d in calls[3:])
    response = collect(chunks)
    assert identities(response) == PARALLEL_CALLS
    assert [c.parsed_arguments() for c in response.tool_calls][1] == {
        "location": "東京",
        "unit": "celsius",
    }
    assert (response.finish_reason, response.usage) == (FinishReason.TOOL_CALLS, PARALLEL_USAGE)
    assert stream_lifecycle_problems(chunks) == []


def test_refusal_streamed_in_delta_refusal() -> None:
    chunks = decode(transcript("refusal_stream.sse"))
    assert all(c.delta == "" for c in chunks), "the role chunk's content null is no text"
    response = collect(chunks)
    assert response.refusal == "I\u2019m sorry, but I can\u2019t help with that."
    assert (response.text, response.finish_reason) == ("", FinishReason.STOP)
    assert response.usage == Usage(104, 12)
    assert stream_lifecycle_problems(chunks) == []


def test_finish_reason_length_with_cached_and_reasoning_tokens() -> None:
    chunks = decode(transcript("length_stream.sse"))
    assert chunks[-1] == CompletionChunk(
        usage=Usage(276, 64, cache_read_input_tokens=1024, reasoning_tokens=58),
        finish_reason=FinishReason.LENGTH,
    )
    assert collect(chunks).text == "The three laws of thermodynamics are"
    assert stream_lifecycle_problems(chunks) == []


def test_error_mid_stream_comes_after_the_text() -> None:
    # https://github.com/sashabaranov/go-openai/pull/396 quotes this OpenAI stream.
    decoder = OpenAIStreamDecoder()
    chunks = decoder.feed(transcript("error_midstream.sse"))
    assert [c.delta for c in chunks] == ["Once", " upon", " a"], "the text comes first"
    with pytest.raises(ServerError, match="The server had an error") as raised:
        decoder.close()
    assert raised.value.provider == "openai"
    assert raised.value.provider_error_type == "server_error"


def test_error_mid_stream_in_a_later_read_is_raised_by_the_next_call() -> None:
    body = transcript("error_midstream.sse")
    cut = body.index(b'data: {"error"')
    decoder = OpenAIStreamDecoder()
    assert [c.delta for c in decoder.feed(body[:cut])] == ["Once", " upon", " a"]
    assert decoder.feed(body[cut:]) == [], "held: the stream had started"
    with pytest.raises(ServerError):
        decoder.close()


def test_error_as_the_first_event_raises_from_the_first_feed() -> None:
    # OpenRouter: comments, then the error with an integer code (its HTTP-like status).
    # https://openrouter.ai/docs/api-reference/errors
    decoder = OpenAIStreamDecoder()
    with pytest.raises(RateLimitError, match="Provider returned error") as raised:
        decoder.feed(transcript("openrouter_error_first.sse"))
    assert raised.value.status_code == 429
    assert decoder.started is False


def test_comments_and_data_keepalives_are_skipped() -> None:
    # ": OPENROUTER PROCESSING" (https://openrouter.ai/docs/api-reference/streaming), and
    # the data-only keep-alives "data: :ping" and an empty "data:" some relays send
    # (deepseek-harness discussion #6593). OpenRouter's usage chunk has a choice with an
    # empty delta rather than `choices: []` (speakeasy-api/gram#921).
    decoder = OpenAIStreamDecoder()
    chunks = decoder.feed(transcript("openrouter_keepalives_stream.sse")) + decoder.close()
    assert [c.delta for c in chunks] == ["Hello", " there", "!", ""]
    assert chunks[-1] == CompletionChunk(usage=Usage(9, 3), finish_reason=FinishReason.STOP)
    assert decoder.model == "openai/gpt-5.4-mini"
    assert stream_lifecycle_problems(chunks) == []


@pytest.mark.parametrize("keepalive", [b": keepalive\n\n", b"data: :ping\n\n", b"data:\n\n"])
def test_a_keepalive_before_anything_else_raises_nothing(keepalive: bytes) -> None:
    decoder = OpenAIStreamDecoder()
    assert decoder.feed(keepalive) == []
    chunks = decoder.feed(sse(chunk({"content": "ok"}), chunk(finish="stop")) + DONE)
    assert [c.delta for c in chunks] == ["ok", ""]


def test_crlf_framing() -> None:
    # llama-cpp-python's server streams through sse-starlette, whose ServerSentEvent
    # ends lines with "\r\n" (DEFAULT_SEPARATOR) and pings with ": ping - <time>".
    body = transcript("llama_cpp_python_crlf_stream.sse")
    assert b"\r\n\r\n" in body
    chunks = decode(body)
    assert collect(chunks).text == "Grüß Gott! Wie kann ich helfen?"
    assert chunks[-1] == CompletionChunk(finish_reason=FinishReason.STOP)
    assert chunks == decode(body.replace(b"\r\n", b"\n"))
    assert chunks == decode(body.replace(b"\r\n", b"\r")), "bare CR ends lines as well"


# --- What OpenAI-compatible servers send --------------------------------------------


def test_no_usage_at_all_gives_a_final_chunk_without_usage() -> None:
    # OpenAI without stream_options.include_usage; llama-cpp-python
    # (https://github.com/abetlen/llama-cpp-python/issues/1082).
    chunks = decode(sse(chunk({"role": "assistant", "content": "Hi"}), chunk(finish="stop")) + DONE)
    assert chunks[-1] == CompletionChunk(usage=None, finish_reason=FinishReason.STOP)
    assert collect(chunks).usage == Usage()
    assert stream_lifecycle_problems(chunks) == [NO_USAGE]


def test_tgi_no_done_close_after_the_finish_ends_the_stream() -> None:
    # TGI before PR #2221 sent no [DONE] (and "eos_token" as its finish reason, TGI PR
    # #2344); also ik_llama.cpp #467, oobabooga #4778, llama.cpp before PR #9459.
    decoder = OpenAIStreamDecoder()
    chunks = decoder.feed(transcript("tgi_no_done_stream.sse"))
    assert [c.delta for c in chunks] == ["Paris", " is", " the", " capital."]
    assert decoder.finished is False, "the finish waits for a usage chunk that never comes"
    assert decoder.close() == [CompletionChunk(finish_reason=FinishReason.STOP)]


@pytest.mark.parametrize(
    ("body", "expected_usage"),
    [
        # Together AI: the finish and the usage in one chunk, then the end of the body.
        (
            sse(chunk({"content": "Hi"}), chunk(finish="eos", usage=usage_chunk(3, 1)["usage"])),
            Usage(3, 1),
        ),
        # The usage-only chunk, but no [DONE] after it (llama.cpp before PR #9459).
        (sse(chunk({"content": "Hi"}), chunk(finish="stop"), usage_chunk(3, 1)), Usage(3, 1)),
        # The body ends inside the usage event: the finish came, so the stream is whole.
        (sse(chunk({"content": "Hi"}), chunk(finish="stop")) + b'data: {"choices": [], "us', None),
    ],
    ids=["together-finish-with-usage", "usage-chunk-no-done", "cut-inside-usage"],
)
def test_no_done_after_the_finish(body: bytes, expected_usage: Usage | None) -> None:
    chunks = decode(body)
    assert [c.delta for c in chunks] == ["Hi", ""]
    assert chunks[-1] == CompletionChunk(usage=expected_usage, finish_reason=FinishReason.STOP)


def test_vllm_continuous_usage_stats_last_usage_wins() -> None:
    # vLLM's stream_options.continuous_usage_stats puts usage on every chunk; its finish
    # shares a chunk with the last text; `reasoning` is vLLM's reasoning field (PR #27752),
    # surfaced as thinking.
    chunks = decode(transcript("vllm_continuous_usage_stream.sse"))
    assert [c.delta for c in chunks] == ["", "Hi", " there", "!", ""]
    assert chunks[0].thinking == "The user greets me."
    assert [c.usage for c in chunks[:-1]] == [None] * 4, "usage only on the final chunk"
    assert chunks[-1] == CompletionChunk(usage=Usage(14, 8), finish_reason=FinishReason.STOP)
    assert stream_lifecycle_problems(chunks) == []


def test_vllm_continuous_usage_without_a_usage_chunk_keeps_the_last_one() -> None:
    body = sse(
        chunk({"content": "a"}, usage=usage_chunk(5, 1)["usage"]),
        chunk({"content": "b"}, usage=usage_chunk(5, 2)["usage"]),
        chunk(finish="stop", usage=usage_chunk(5, 3)["usage"]),
    )
    assert decode(body + DONE)[-1].usage == Usage(5, 3)


def test_xai_usage_before_the_empty_choices_chunk_last_usage_wins() -> None:
    # xAI Grok: usage on the second-to-last chunk, then a chunk with empty choices and no
    # usage (https://github.com/BerriAI/litellm/issues/17136, openai-agents-python#2126).
    body = sse(
        chunk({"role": "assistant", "content": "Hello"}, model="grok-4-1-fast-non-reasoning"),
        chunk({"content": "!"}, usage=usage_chunk(20, 1)["usage"]),
        chunk(finish="stop", usage=usage_chunk(20, 2)["usage"]),
        {"id": "x", "object": "chat.completion.chunk", "choices": []},
    )
    chunks = decode(body + DONE)
    assert chunks[-1] == CompletionChunk(usage=Usage(20, 2), finish_reason=FinishReason.STOP)
    assert stream_lifecycle_problems(chunks) == []


def test_usage_only_chunk_before_the_finish_is_kept_for_it() -> None:
    # The usage-only chunk ahead of the finish (a server's own order): kept, not final.
    body = sse(chunk({"content": "Hi"}), usage_chunk(7, 1), chunk(finish="stop"))
    decoder = OpenAIStreamDecoder()
    assert [c.finish_reason for c in decoder.feed(body)] == [None]
    assert decoder.feed(DONE) == [
        CompletionChunk(usage=Usage(7, 1), finish_reason=FinishReason.STOP)
    ]


def test_llama_cpp_usage_on_the_finish_chunk() -> None:
    # Older llama.cpp server: usage (and `timings`) on the finish chunk itself, no
    # separate usage chunk (https://github.com/ggml-org/llama.cpp/issues/15443).
    finish = chunk(
        finish="stop",
        usage=usage_chunk(9, 12)["usage"],
        timings={"prompt_n": 9, "predicted_n": 12, "predicted_per_second": 48.1},
        system_fingerprint="b6001-5c0eb5ef",
    )
    chunks = decode(sse(chunk({"role": "assistant", "content": "Hey"}), finish) + DONE)
    assert chunks[-1] == CompletionChunk(usage=Usage(9, 12), finish_reason=FinishReason.STOP)
    assert stream_lifecycle_problems(chunks) == []


def test_ollama_empty_finish_reason_is_not_a_finish() -> None:
    # Ollama sent `finish_reason: ""` on every chunk (https://github.com/ollama/ollama/issues/4357).
    head = sse(
        chunk({"role": "assistant", "content": "Hi"}, finish="", system_fingerprint="fp_ollama"),
        chunk({"content": " you"}, finish=""),
    )
    decoder = OpenAIStreamDecoder()
    assert [(c.delta, c.finish_reason) for c in decoder.feed(head + DONE)] == [
        ("Hi", None),
        (" you", None),
    ]
    with pytest.raises(StreamProtocolError, match="cut short"):
        decoder.close()  # [DONE] after "" finishes nothing
    chunks = decode(head + sse(chunk(finish="stop")) + DONE)
    assert [c.finish_reason for c in chunks] == [None, None, FinishReason.STOP]


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ("eos", FinishReason.STOP),  # Together AI (openai-dotnet PR #267)
        ("eos_token", FinishReason.STOP),  # TGI, sglang (dstack PR #2229)
        ("content_filter", FinishReason.CONTENT_FILTER),
        ("UNKNOWN", FinishReason.STOP),  # FastFlowLM PR #500: unknown means natural
    ],
)
def test_non_standard_finish_reasons(sent: str, expected: FinishReason) -> None:
    chunks = decode(sse(chunk({"content": "Hi"}), chunk(finish=sent), usage_chunk(2, 1)) + DONE)
    assert chunks[-1].finish_reason is expected


def test_together_eos_is_stop() -> None:
    # Together AI's final chunk: finish "eos", the usage on it, `text`/`token_id`/`seed`.
    final = {
        "id": "8f3c2b1a9e7d6c5b-SJC",
        "object": "chat.completion.chunk",
        "created": 1_764_029_400,
        "model": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        "choices": [
            {
                "index": 0,
                "text": "",
                "logprobs": None,
                "finish_reason": "eos",
                "seed": 12_345,
                "delta": {
                    "token_id": 128_009,
                    "role": "assistant",
                    "content": "",
                    "tool_calls": None,
                },
            }
        ],
        "usage": {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49},
    }
    chunks = decode(sse(chunk({"content": "Bonjour"}), final) + DONE)
    assert chunks[-1] == CompletionChunk(usage=Usage(40, 9), finish_reason=FinishReason.STOP)


def test_gemini_tool_calls_without_index() -> None:
    # Gemini's OpenAI endpoint leaves out tool_calls[].index, splits arguments across
    # indexless deltas, sends a metadata-only delta (extra_content.google.thought_signature)
    # and ends with "stop" (https://github.com/openai/openai-python/issues/2806,
    # https://github.com/open-webui/computer/issues/224).
    chunks = decode(transcript("gemini_tool_calls_stream.sse"))
    calls = deltas(chunks)
    assert calls[0] == ToolCallDelta(
        0, "function-call-5813375436104339873", "get_weather", '{"location":"Sydney'
    )
    assert calls[1] == ToolCallDelta(0, arguments_delta=', AU"}'), "continues the call before"
    assert calls[2] == ToolCallDelta(
        1, "function-call-5813375436104339874", "get_weather", '{"location":"Tokyo, JP"}'
    ), "a new id opens a new call"
    assert calls[3] == ToolCallDelta(1), "a metadata-only fragment adds nothing"
    response = collect(chunks, "gemini-3-flash-preview")
    assert response.text == "Let me check both cities."
    assert [c.parsed_arguments() for c in response.tool_calls] == [
        {"location": "Sydney, AU"},
        {"location": "Tokyo, JP"},
    ]
    assert response.finish_reason is FinishReason.TOOL_CALLS
    assert response.usage == Usage(87, 41)
    assert stream_lifecycle_problems(chunks) == []


def test_tool_calls_with_index_null_continue_the_call_before() -> None:
    # Gemini has also sent "index": null (meilisearch PR #5712); older Ollama had no index
    # at all (https://github.com/ollama/ollama/issues/7881).
    body = sse(
        chunk(tools(call(None, "call_a", "f", '{"x":'))),
        chunk(tools({"index": None, "function": {"arguments": "1}"}})),
        chunk(tools({"index": None, "id": "call_a", "function": {"arguments": ""}})),
        chunk(tools(call(None, "call_b", "g", "{}"))),
        chunk(finish="tool_calls"),
    )
    response = collect(decode(body + DONE))
    assert identities(response) == [("call_a", "f", '{"x":1}'), ("call_b", "g", "{}")]


def test_gemini_stop_after_tool_calls_is_tool_calls() -> None:
    # Gemini ends a tool-call turn with "stop" (open-webui/computer#224, microclaw PR #230).
    body = sse(chunk(tools(call(0, "call_1", "lookup", '{"q":"x"}'))), chunk(finish="stop"))
    chunks = decode(body + DONE)
    assert chunks[-1].finish_reason is FinishReason.TOOL_CALLS


def test_bedrock_mantle_index_starting_at_1_is_renumbered() -> None:
    # Bedrock Mantle (OpenAI models on AWS) counts tool calls from 1
    # (https://github.com/BerriAI/litellm/issues/32759).
    body = sse(
        chunk(tools(call(1, "call_a", "f", ""))),
        chunk(tools(call(1, arguments='{"a":1}'))),
        chunk(tools(call(2, "call_b", "g", ""))),
        chunk(tools(call(2, arguments='{"b":2}'))),
        chunk(finish="tool_calls"),
    )
    chunks = decode(body + DONE)
    assert [d.index for d in deltas(chunks)] == [0, 0, 1, 1]
    assert identities(collect(chunks)) == [("call_a", "f", '{"a":1}'), ("call_b", "g", '{"b":2}')]


def test_bedrock_access_gateway_index_minus_1_is_renumbered() -> None:
    # aws-samples/bedrock-access-gateway subtracted 1 from Bedrock's contentBlockIndex:
    # the first call came as index -1, the next as 0 (its PR #247, issue #203).
    body = sse(
        chunk(tools(call(-1, "tooluse_Aa1", "get_weather", ""))),
        chunk(tools(call(-1, arguments='{"city":"Boston"}'))),
        chunk(tools(call(0, "tooluse_Bb2", "get_time", ""))),
        chunk(tools(call(0, arguments='{"tz":"EST"}'))),
        chunk(finish="tool_calls"),
    )
    chunks = decode(body + DONE)
    assert [d.index for d in deltas(chunks)] == [0, 0, 1, 1]
    assert identities(collect(chunks)) == [
        ("tooluse_Aa1", "get_weather", '{"city":"Boston"}'),
        ("tooluse_Bb2", "get_time", '{"tz":"EST"}'),
    ]


@pytest.mark.parametrize(
    "later_name",
    [
        "get_weather",  # vLLM's GLM parsers repeat id, type and name (vllm#44098)
        "",  # LM Studio repeats the id with `name: ""` (lmstudio-bug-tracker#649)
    ],
    ids=["vllm", "lm-studio"],
)
def test_id_and_name_repeated_on_every_fragment_are_announced_once(later_name: str) -> None:
    body = sse(
        chunk(tools(call(0, "call_7", "get_weather", ""))),
        chunk(tools(call(0, "call_7", later_name, '{"city":'))),
        # vLLM sends the last arguments together with the finish.
        chunk(tools(call(0, "call_7", later_name, '"Paris"}')), finish="tool_calls"),
    )
    chunks = decode(body + DONE)
    assert deltas(chunks) == [
        ToolCallDelta(0, "call_7", "get_weather"),
        ToolCallDelta(0, arguments_delta='{"city":'),
        ToolCallDelta(0, arguments_delta='"Paris"}'),
    ]
    assert identities(collect(chunks)) == [("call_7", "get_weather", '{"city":"Paris"}')]
    assert stream_lifecycle_problems(chunks) == [NO_USAGE]


def test_id_on_one_fragment_and_name_on_the_next_still_make_one_call() -> None:
    body = sse(
        chunk(tools(call(0, "call_9"))),
        chunk(tools(call(0, name="search", arguments='{"q":"x"}'))),
        chunk(finish="tool_calls"),
    )
    assert identities(collect(decode(body + DONE))) == [("call_9", "search", '{"q":"x"}')]


def test_lm_studio_whole_arguments_in_one_chunk() -> None:
    # LM Studio sends some models' arguments whole, with the id and name
    # (https://github.com/lmstudio-ai/lmstudio-bug-tracker/issues/1868).
    arguments = '{"path":"src/main.py","limit":200}'
    body = sse(
        chunk({"role": "assistant", "content": None}, model="qwen3.6-35b-a3b"),
        chunk(tools(call(0, "372048511", "read_file", arguments))),
        chunk(finish="tool_calls"),
        usage_chunk(310, 29),
    )
    chunks = decode(body + DONE)
    assert deltas(chunks) == [ToolCallDelta(0, "372048511", "read_file", arguments)]
    assert identities(collect(chunks)) == [("372048511", "read_file", arguments)]
    assert stream_lifecycle_problems(chunks) == []


def test_glm_arguments_as_a_json_object() -> None:
    # GLM-4.5's API sends `arguments` as an object, with index -1 (zai-org/GLM-4.5#17).
    body = sse(
        chunk(tools(call(-1, "call_-8960154543", "get_weather", {"city": "北京", "days": 3}))),
        chunk(finish="tool_calls"),
    )
    response = collect(decode(body + DONE))
    assert identities(response) == [("call_-8960154543", "get_weather", '{"city":"北京","days":3}')]


def test_ollama_reused_index_with_a_new_id_and_name_opens_a_new_call() -> None:
    # Ollama >= 0.20 streams every call whole with `index: 0`
    # (https://github.com/ollama/ollama/issues/15457, still open for models without a
    # registered parser: #15497; vercel/ai PR #14277 treats a different id as a new call).
    chunks = decode(transcript("ollama_reused_index_stream.sse"))
    response = collect(chunks, "qwen2.5-coder:7b")
    assert identities(response) == [
        ("call_9ayv3kqa", "file_write", '{"content":"print(\'hello\')","filePath":"hello.py"}'),
        ("call_o1bh5c2x", "file_write", '{"content":"print(\'world\')","filePath":"world.py"}'),
    ]
    assert stream_lifecycle_problems(chunks) == []


def test_glm4_demo_server_new_id_on_every_fragment_of_one_call() -> None:
    # GLM-4's openai_api_server demo sends a fresh id on each argument fragment, with no
    # name (https://github.com/zai-org/GLM-4/issues/194): still one call.
    body = sse(
        chunk(tools(call(0, "call_Df1", "get_current_weather", ""))),
        chunk(tools(call(0, "call_LEN", arguments='{"'))),
        chunk(tools(call(0, "call_6bA", arguments='location": "Paris"}'))),
        chunk(finish="tool_calls"),
    )
    response = collect(decode(body + DONE))
    assert identities(response) == [("call_Df1", "get_current_weather", '{"location": "Paris"}')]


def test_groq_empty_tool_calls_array_on_text_chunks() -> None:
    # Groq sends `tool_calls: []` on content chunks (Portkey-AI/gateway#1338).
    body = sse(
        chunk({"role": "assistant", "content": "", "tool_calls": []}),
        chunk({"role": "assistant", "content": "Hello", "tool_calls": []}),
        chunk({}, finish="stop"),
    )
    chunks = decode(body + DONE)
    assert chunks == [CompletionChunk("Hello"), CompletionChunk(finish_reason=FinishReason.STOP)]


def test_azure_content_filter_chunks_are_ignored() -> None:
    # Azure OpenAI: a first chunk with `object: ""`, empty model and `choices: []` (prompt
    # filter results), and asynchronous-filter chunks whose choices have no delta
    # (openai-python#1677, autogen#6465).
    decoder = OpenAIStreamDecoder()
    chunks = decoder.feed(transcript("azure_content_filter_stream.sse")) + decoder.close()
    assert [c.delta for c in chunks] == ["Hello", " from", " Azure.", ""]
    assert chunks[-1] == CompletionChunk(usage=Usage(13, 4), finish_reason=FinishReason.STOP)
    assert decoder.model == "gpt-4o-2024-11-20"
    assert stream_lifecycle_problems(chunks) == []


def test_extra_fields_are_ignored_and_reasoning_is_thinking() -> None:
    # reasoning_content (DeepSeek) and reasoning (vLLM, OpenRouter) become thinking;
    # obfuscation (OpenAI), system_fingerprint, service_tier, provider and
    # native_finish_reason (OpenRouter), x_groq (Groq), timings (llama.cpp) are ignored.
    body = sse(
        chunk(
            {"role": "assistant", "content": None, "reasoning_content": "Let me think"},
            system_fingerprint="fp_8802369eaa",
            obfuscation="aB3",
        ),
        chunk({"reasoning": "Still thinking", "reasoning_details": []}, provider="DeepInfra"),
        chunk({"content": "42", "annotations": []}, service_tier="default", x_groq={"id": "r"}),
        chunk({"content": None, "function_call": None, "audio": None}, timings={"prompt_n": 3}),
        chunk(finish="stop", native_finish_reason="end_turn", logprobs=None),
        usage_chunk(6, 2),
    )
    chunks = decode(body + DONE)
    assert chunks == [
        CompletionChunk(thinking="Let me think"),
        CompletionChunk(thinking="Still thinking"),
        CompletionChunk("42"),
        CompletionChunk(usage=Usage(6, 2), finish_reason=FinishReason.STOP),
    ]
    assert collect(chunks).thinking == "Let me thinkStill thinking"


def test_choices_after_the_first_are_ignored() -> None:
    two = chunk({"content": "first"})
    two["choices"].append({"index": 1, "delta": {"content": "second"}, "finish_reason": None})
    chunks = decode(sse(two, chunk(finish="stop")) + DONE)
    assert collect(chunks).text == "first"


@pytest.mark.parametrize(
    ("payload", "expected", "message"),
    [
        # vLLM's streaming error: its ErrorInfo with an integer code (serving.py
        # create_streaming_error_response).
        (
            {
                "error": {
                    "message": "bad logit_bias",
                    "type": "BadRequestError",
                    "param": None,
                    "code": 400,
                }
            },
            InvalidRequestError,
            "bad logit_bias",
        ),
        (
            {
                "error": {
                    "message": "This model's maximum context length is 32768 tokens. However, "
                    "you requested 33000 tokens.",
                    "type": "BadRequestError",
                    "param": None,
                    "code": 400,
                }
            },
            ContextLengthExceededError,
            "maximum context length",
        ),
        # TGI: `error` as a string (https://github.com/huggingface/text-generation-inference/issues/1896).
        (
            {
                "error": "Request failed during generation: Server error: CUDA out of memory",
                "error_type": "generation",
            },
            BackendError,
            "CUDA out of memory",
        ),
    ],
    ids=["vllm-400", "vllm-context", "tgi-string"],
)
def test_compatible_servers_errors_mid_stream(
    payload: dict[str, Any], expected: type[BackendError], message: str
) -> None:
    decoder = OpenAIStreamDecoder()
    assert [c.delta for c in decoder.feed(sse(chunk({"content": "Hi"}), payload))] == ["Hi"]
    with pytest.raises(expected, match=message):
        decoder.close()


# --- Broken streams -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        sse(chunk({"content": "Hi"})),
        sse(chunk({"content": "Hi"})) + DONE,
        sse(chunk({"content": "Hi"}), usage_chunk(2, 1)) + DONE,
        sse(chunk({"content": "Hi"})) + b'data: {"choices": [{"index": 0, "delta": {}, "fin',
    ],
    ids=["empty", "no-finish", "done-without-finish", "usage-without-finish", "cut-in-finish"],
)
def test_a_body_that_ends_with_no_finish_is_cut(body: bytes) -> None:
    decoder = OpenAIStreamDecoder()
    decoder.feed(body)
    with pytest.raises(StreamProtocolError, match="cut short"):
        decoder.close()


@pytest.mark.parametrize(
    "data",
    [
        b"<html><body>502 Bad Gateway</body></html>",
        b'{"choices": [',
        b'{"a": 1} {"b": 2}',
        b"[DONE",
    ],
)
def test_non_json_data_is_a_protocol_error(data: bytes) -> None:
    with pytest.raises(StreamProtocolError, match="does not carry JSON"):
        OpenAIStreamDecoder().feed(b"data: " + data + b"\n\n")
    decoder = OpenAIStreamDecoder()
    assert [c.delta for c in decoder.feed(sse(chunk({"content": "Hi"}), data))] == ["Hi"]
    with pytest.raises(StreamProtocolError, match="does not carry JSON"):
        decoder.close()


@pytest.mark.parametrize("data", [b"[1, 2]", b'"text"', b"null", b'{"choices": "oops"}'])
def test_json_of_the_wrong_shape_is_a_protocol_error(data: bytes) -> None:
    with pytest.raises(StreamProtocolError, match="malformed"):
        OpenAIStreamDecoder().feed(b"data: " + data + b"\n\n")


def test_json_with_surrounding_whitespace_is_still_json() -> None:
    body = b'data:   {"choices": [{"index": 0, "delta": {"content": "ok"}}]}  \t\n\n'
    chunks = decode(body + sse(chunk(finish="stop")) + DONE)
    assert [c.delta for c in chunks] == ["ok", ""]


def test_invalid_utf8_is_a_protocol_error() -> None:
    with pytest.raises(StreamProtocolError, match="UTF-8"):
        OpenAIStreamDecoder().feed(b'data: {"choices": "\xff"}\n\n')


def test_model_is_the_first_non_empty_model() -> None:
    decoder = OpenAIStreamDecoder()
    assert decoder.model is None
    decoder.feed(sse({"object": "", "model": "", "choices": []}, {"choices": [], "model": None}))
    assert decoder.model is None, "an empty or missing model names nothing"
    decoder.feed(sse(chunk({"content": "a"}, model="gpt-5.4-mini-2026-03-17")))
    decoder.feed(sse(chunk({"content": "b"}, model="gpt-other")))
    assert decoder.model == "gpt-5.4-mini-2026-03-17"


def test_nothing_after_the_final_chunk_is_emitted() -> None:
    late = sse(chunk({"content": "late"}), chunk(finish="length"), usage_chunk(99, 99))
    body = sse(chunk({"content": "Hi"}), chunk(finish="stop"), usage_chunk(2, 1)) + late + DONE
    decoder = OpenAIStreamDecoder()
    chunks = decoder.feed(body)
    assert chunks == [
        CompletionChunk("Hi"),
        CompletionChunk(usage=Usage(2, 1), finish_reason=FinishReason.STOP),
    ]
    assert decoder.feed(late + b'data: {"error": {"message": "late"}}\n\n' + DONE) == []
    assert decoder.close() == []


def test_nothing_after_done_is_emitted() -> None:
    body = sse(chunk({"content": "Hi"}), chunk(finish="stop")) + DONE + sse(usage_chunk(5, 5))
    chunks = decode(body)
    assert chunks[-1] == CompletionChunk(finish_reason=FinishReason.STOP)
    assert len(chunks) == 2


# --- Chunk boundaries -----------------------------------------------------------------


def test_three_parallel_calls_split_at_every_byte_offset() -> None:
    body = transcript("parallel_tool_calls_stream.sse")
    whole = decode(body)
    expected = collect(whole)
    assert identities(expected) == PARALLEL_CALLS
    for offset in range(len(body) + 1):
        split = decode(body[:offset], body[offset:])
        response = collect(split)
        assert (response.text, identities(response)) == ("", PARALLEL_CALLS), offset
        assert (response.finish_reason, response.usage) == (
            FinishReason.TOOL_CALLS,
            PARALLEL_USAGE,
        ), offset
        assert split == whole, offset


TRANSCRIPT_NAMES = sorted(
    path.name
    for path in TRANSCRIPTS.glob("*.sse")
    if path.name not in ("error_midstream.sse", "openrouter_error_first.sse")
)


@settings(max_examples=100, deadline=None)
@given(
    name=st.sampled_from(TRANSCRIPT_NAMES),
    crlf=st.booleans(),
    cuts=st.lists(st.integers(min_value=0), max_size=40),
)
def test_any_split_of_a_transcript_gives_the_same_chunks(
    name: str, crlf: bool, cuts: list[int]
) -> None:
    body = transcript(name).replace(b"\r\n", b"\n")
    if crlf:
        body = body.replace(b"\n", b"\r\n")
    points = sorted({cut % (len(body) + 1) for cut in cuts})
    pieces = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    whole = decode(body)
    assert decode(*pieces) == whole


@dataclass(frozen=True)
class Reply:
    """What a generated stream says, and how it is streamed."""

    text: str
    calls: list[ToolCall]
    finish: FinishReason
    usage: Usage
    interleave: bool
    include_usage: bool
    done: bool


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
            id=f"call_{index}{draw(st.text('abcdefXYZ0123456789', max_size=10))}",
            name=draw(_NAMES),
            arguments=json.dumps(draw(_ARGUMENTS), ensure_ascii=draw(st.booleans())),
        )
        for index in range(count)
    ]
    finish = (
        FinishReason.TOOL_CALLS
        if calls
        else draw(
            st.sampled_from([FinishReason.STOP, FinishReason.LENGTH, FinishReason.CONTENT_FILTER])
        )
    )
    usage = Usage(
        draw(_COUNTS),
        draw(_COUNTS),
        cache_read_input_tokens=draw(_COUNTS),
        reasoning_tokens=draw(_COUNTS),
    )
    return Reply(
        text=draw(st.text(max_size=60)),
        calls=calls,
        finish=finish,
        usage=usage,
        interleave=draw(st.booleans()),
        include_usage=draw(st.booleans()),
        done=draw(st.booleans()),
    )


@settings(max_examples=200, deadline=None)
@given(reply=replies(), cuts=st.lists(st.integers(min_value=0), max_size=30))
def test_generated_replies_survive_any_split(reply: Reply, cuts: list[int]) -> None:
    chunks = stream_chunks(
        model="gpt-gen",
        text=reply.text,
        tool_calls=reply.calls,
        finish_reason=FINISH_REASON_FOR[reply.finish],
        usage=reply.usage,
        interleave=reply.interleave,
        include_usage=reply.include_usage,
    )
    body = sse_bytes(chunks, done=reply.done)
    points = sorted({cut % (len(body) + 1) for cut in cuts})
    pieces = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    whole = decode(body)
    split = decode(*pieces)
    assert split == whole
    expected = CompletionResponse(
        content=reply.text,
        tool_calls=reply.calls,
        finish_reason=reply.finish,
        usage=reply.usage if reply.include_usage else Usage(),
        model="gpt-gen",
    )
    assert collect(split, "gpt-gen") == expected
    assert stream_lifecycle_problems(split) == ([] if reply.include_usage else [NO_USAGE])


def test_usage_body_round_trips_through_the_decoder() -> None:
    usage = Usage(10, 20, cache_read_input_tokens=30, reasoning_tokens=5)
    body = sse(
        chunk({"content": "x"}), chunk(finish="stop"), {"choices": [], "usage": usage_body(usage)}
    )
    assert decode(body + DONE)[-1].usage == usage


@pytest.mark.parametrize(
    ("error_type", "code", "raised"),
    [
        ("server_error", "server_is_overloaded", OverloadedError),
        ("server_error", None, ServerError),
        ("requests", "rate_limit_exceeded", RateLimitError),
    ],
)
def test_the_harness_error_event_fails_a_started_stream(
    error_type: str, code: str | None, raised: type[BackendError]
) -> None:
    # What the conformance harness sends for an error after the first chunk.
    opening = sse_bytes(stream_chunks(model="gpt-x", text="partial")[:2], done=False)
    decoder = OpenAIStreamDecoder()
    chunks = decoder.feed(opening + error_event("scripted failure", error_type, code))
    assert [c.delta for c in chunks] == ["partial"]
    with pytest.raises(raised) as error:
        decoder.close()
    assert type(error.value) is raised
    assert "scripted failure" in str(error.value)
