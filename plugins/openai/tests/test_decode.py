"""Decoding non-streamed ``chat.completion`` bodies: messages, finish reasons, usage, bad
bodies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tachikoma_backend_openai._wire.decode import (
    decode_completion,
    finish_reason_for,
    tool_arguments,
    usage_from,
)
from tachikoma_backends_core import (
    AuthenticationError,
    BackendError,
    ContextLengthExceededError,
    FinishReason,
    InvalidRequestError,
    RateLimitError,
    ServerError,
    ToolCall,
    Usage,
)

TRANSCRIPTS = Path(__file__).parent / "transcripts"


def transcript(name: str) -> bytes:
    return (TRANSCRIPTS / name).read_bytes()


def completion(message: dict[str, Any], finish_reason: object = "stop", **top: Any) -> bytes:
    """A minimal ``chat.completion`` body around ``message``."""
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_763_651_234,
        "model": "gpt-4o-mini",
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
        ],
        **top,
    }
    return json.dumps(body).encode()


# --- transcripts ------------------------------------------------------------------------


def test_text_completion() -> None:
    response = decode_completion(transcript("text_completion.json"), fallback_model="unused")
    assert response.content == "Bonjour ! Un café ☕ et des sushis 寿司, s'il vous plaît."
    assert response.tool_calls == []
    assert response.refusal is None
    assert response.finish_reason is FinishReason.STOP
    assert response.usage == Usage(19, 17)
    assert response.model == "gpt-4o-2024-08-06"


def test_tool_calls_completion_keeps_the_arguments_text_exactly() -> None:
    body = json.loads(transcript("tool_calls_completion.json"))
    response = decode_completion(body, fallback_model="unused")
    assert response.content is None
    assert response.tool_calls == [
        ToolCall(
            id="call_8Q2mZx4YbN1vKpL0sT7rWc3e",
            name="get_weather",
            arguments='{"city": "Zürich", "unit": "celsius"}',
        ),
        ToolCall(id="call_Fh5JkD0aPq9sXe2LmV6nBt1y", name="get_time", arguments="{}"),
    ]
    assert response.tool_calls[0].get_string("city") == "Zürich"
    assert response.finish_reason is FinishReason.TOOL_CALLS
    assert response.usage == Usage(166, 52, cache_read_input_tokens=1152)
    assert response.model == "gpt-4o-mini-2024-07-18"


def test_refusal_completion_surfaces_the_refusal() -> None:
    response = decode_completion(transcript("refusal_completion.json"), fallback_model="unused")
    assert response.refusal == "I'm sorry, I can't assist with that request."
    assert response.content == "", "no text and no tool calls: the core's empty answer"
    assert response.tool_calls == []
    assert response.finish_reason is FinishReason.STOP


def test_reasoning_usage_completion() -> None:
    raw = transcript("reasoning_usage_completion.json")
    response = decode_completion(raw, fallback_model="gpt-5.4-mini")
    assert response.content == "The answer is 42: 6 * 7 = 42."
    assert response.finish_reason is FinishReason.LENGTH
    assert response.usage == Usage(86, 300, cache_read_input_tokens=1920, reasoning_tokens=192)
    assert response.model == "gpt-5.4-mini-2026-03-17"


def test_bytes_and_the_decoded_dict_decode_alike() -> None:
    for name in ("text_completion.json", "tool_calls_completion.json"):
        raw = transcript(name)
        assert decode_completion(raw, fallback_model="m") == decode_completion(
            json.loads(raw), fallback_model="m"
        )


# --- messages ---------------------------------------------------------------------------


def test_text_beside_tool_calls_is_kept() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    raw = completion({"role": "assistant", "content": "Checking.", "tool_calls": [call]})
    response = decode_completion(raw, fallback_model="m")
    assert response.content == "Checking."
    assert response.tool_calls == [ToolCall(id="call_1", name="f", arguments="{}")]
    assert response.finish_reason is FinishReason.TOOL_CALLS, "'stop' with tool calls (Gemini)"


def test_object_arguments_are_serialised() -> None:
    # GLM's official API sends arguments as a JSON object, not as text.
    call = {
        "id": "call_-8",
        "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "北京", "days": 2}},
    }
    raw = completion({"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls")
    (decoded,) = decode_completion(raw, fallback_model="m").tool_calls
    assert decoded.arguments == '{"city":"北京","days":2}'
    assert decoded.parsed_arguments() == {"city": "北京", "days": 2}


@pytest.mark.parametrize(
    ("arguments", "text"),
    [
        ('{"a": 1}', '{"a": 1}'),
        ("", ""),
        (None, ""),
        ({}, "{}"),
        ({"q": "é ☕"}, '{"q":"é ☕"}'),
        ([1, 2], "[1,2]"),
    ],
)
def test_tool_arguments(arguments: object, text: str) -> None:
    assert tool_arguments(arguments) == text


def test_empty_content_and_no_tool_calls_is_an_empty_answer() -> None:
    for content in ("", None):
        raw = completion({"role": "assistant", "content": content, "tool_calls": None})
        response = decode_completion(raw, fallback_model="m")
        assert response.content == ""
        assert response.tool_calls == []
        assert response.refusal is None


def test_an_empty_refusal_is_no_refusal() -> None:
    raw = completion({"role": "assistant", "content": "Hi", "refusal": ""})
    assert decode_completion(raw, fallback_model="m").refusal is None


def test_extra_fields_of_compatible_servers_are_ignored() -> None:
    raw = completion(
        {
            "role": "assistant",
            "content": "42",
            "reasoning_content": "Let me think…",
            "reasoning": "Let me think…",
        },
        "eos",
        provider="Together",
        prompt_filter_results=[],
        x_groq={"id": "req_1"},
    )
    response = decode_completion(raw, fallback_model="m")
    assert (response.content, response.finish_reason) == ("42", FinishReason.STOP)


def test_only_the_first_choice_counts() -> None:
    body = json.loads(completion({"role": "assistant", "content": "first"}))
    body["choices"].append(
        {"index": 1, "message": {"role": "assistant", "content": "second"}, "finish_reason": "stop"}
    )
    assert decode_completion(body, fallback_model="m").content == "first"


@pytest.mark.parametrize("model", [None, "", 42], ids=["null", "empty", "not-a-string"])
def test_model_falls_back_when_the_body_does_not_name_one(model: object) -> None:
    body = json.loads(completion({"role": "assistant", "content": "Hi"}))
    body["model"] = model
    assert decode_completion(body, fallback_model="gpt-4o").model == "gpt-4o"
    del body["model"]
    assert decode_completion(body, fallback_model="gpt-4o").model == "gpt-4o"


# --- finish reasons ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "has_tool_calls", "expected"),
    [
        ("stop", False, FinishReason.STOP),
        ("length", False, FinishReason.LENGTH),
        ("length", True, FinishReason.LENGTH),
        ("tool_calls", True, FinishReason.TOOL_CALLS),
        ("function_call", True, FinishReason.TOOL_CALLS),
        ("content_filter", False, FinishReason.CONTENT_FILTER),
        ("content_filter", True, FinishReason.CONTENT_FILTER),
        ("stop", True, FinishReason.TOOL_CALLS),  # Gemini ends tool turns with "stop"
        ("eos", False, FinishReason.STOP),  # Together AI
        ("eos_token", False, FinishReason.STOP),  # older TGI, sglang
        ("eos", True, FinishReason.TOOL_CALLS),
        ("error", False, FinishReason.ERROR),  # OpenRouter
        ("", False, FinishReason.STOP),  # Ollama, some proxies
        ("", True, FinishReason.TOOL_CALLS),
        (None, False, FinishReason.STOP),
        (None, True, FinishReason.TOOL_CALLS),
        ("brand_new", False, FinishReason.STOP),
        ("brand_new", True, FinishReason.TOOL_CALLS),
        (42, False, FinishReason.STOP),
    ],
)
def test_every_finish_reason_maps(
    value: object, has_tool_calls: bool, expected: FinishReason
) -> None:
    assert finish_reason_for(value, has_tool_calls) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("stop", FinishReason.STOP),
        ("length", FinishReason.LENGTH),
        ("content_filter", FinishReason.CONTENT_FILTER),
        (None, FinishReason.STOP),
    ],
)
def test_a_bodys_finish_reason_is_decoded(value: object, expected: FinishReason) -> None:
    raw = completion({"role": "assistant", "content": "x"}, value)
    assert decode_completion(raw, fallback_model="m").finish_reason is expected


# --- usage ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (
            {
                "prompt_tokens": 2006,
                "completion_tokens": 300,
                "total_tokens": 2306,
                "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 192},
            },
            Usage(86, 300, cache_read_input_tokens=1920, reasoning_tokens=192),
        ),
        ({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}, Usage(10, 5)),
        (
            {
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "prompt_tokens_details": None,
                "completion_tokens_details": None,
            },
            Usage(10, 5),
        ),
        (
            {
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "prompt_tokens_details": {"cached_tokens": None},
                "completion_tokens_details": {"reasoning_tokens": None},
            },
            Usage(10, 5),
        ),
        (  # more cached than sent: never a negative count
            {"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 64}},
            Usage(0, 0, cache_read_input_tokens=10),
        ),
        ({"prompt_tokens": True, "completion_tokens": -3}, Usage()),
        ({"prompt_tokens": "12", "completion_tokens": 1.5}, Usage()),
        ({}, Usage()),
        (None, Usage()),
        ([1, 2], Usage()),
    ],
    ids=[
        "cached-and-reasoning",
        "plain",
        "null-details",
        "null-detail-counts",
        "cached-above-prompt",
        "bool-and-negative",
        "not-integers",
        "empty",
        "null",
        "not-an-object",
    ],
)
def test_usage_from(usage: object, expected: Usage) -> None:
    assert usage_from(usage) == expected


def test_a_body_without_usage_has_zero_usage() -> None:
    raw = completion({"role": "assistant", "content": "Hi"})
    assert decode_completion(raw, fallback_model="m").usage == Usage()
    with_null = completion({"role": "assistant", "content": "Hi"}, usage=None)
    assert decode_completion(with_null, fallback_model="m").usage == Usage()


# --- errors and bodies that are not completions -----------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            {"message": "The server had an error", "type": "server_error", "code": None},
            ServerError,
        ),
        (
            {"message": "Slow down", "type": "requests", "code": "rate_limit_exceeded"},
            RateLimitError,
        ),
        (
            {
                "message": "This model's maximum context length is 65536 tokens. However, you "
                "requested 70000 tokens.",
                "type": "invalid_request_error",
                "code": "invalid_request_error",
            },
            ContextLengthExceededError,
        ),
        ({"message": "No auth credentials found", "code": 401}, AuthenticationError),
        ({"message": "Invalid value", "type": "invalid_request_error"}, InvalidRequestError),
    ],
    ids=["server", "rate-limit", "context", "openrouter-401", "invalid"],
)
def test_an_error_object_in_a_200_body_raises_the_mapped_error(
    error: dict[str, Any], expected: type[BackendError]
) -> None:
    with pytest.raises(BackendError) as raised:
        decode_completion(json.dumps({"error": error}).encode(), fallback_model="m")
    assert type(raised.value) is expected
    assert raised.value.provider == "openai"
    assert error["message"] in raised.value.message


def test_a_plain_string_error_in_a_200_body_is_a_server_error() -> None:
    with pytest.raises(ServerError, match="model is loading"):
        decode_completion({"error": "model is loading"}, fallback_model="m")


def test_a_null_error_beside_a_completion_is_no_error() -> None:
    raw = completion({"role": "assistant", "content": "Hi"}, error=None)
    assert decode_completion(raw, fallback_model="m").content == "Hi"


GOOD_CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
NOT_COMPLETIONS: dict[str, bytes | dict[str, Any]] = {
    "html": b"<html><body>502 Bad Gateway</body></html>",
    "empty": b"",
    "not-utf8": b"\xff\xfe",
    "truncated": b'{"id": "chatcmpl-1", "choices": [{"index": 0, "mess',
    "list": b"[]",
    "string": b'"chat.completion"',
    "null": b"null",
    "no-choices": {"id": "chatcmpl-1", "object": "chat.completion", "model": "m"},
    "null-choices": {"choices": None},
    "empty-choices": {"choices": []},
    "choices-not-a-list": {"choices": {"0": {"message": {"content": "x"}}}},
    "choice-not-an-object": {"choices": [None]},
    "choice-without-message": {"choices": [{"index": 0, "finish_reason": "stop"}]},
    "message-not-an-object": {"choices": [{"index": 0, "message": "Hi"}]},
    "tool-call-without-id": {
        "choices": [
            {
                "message": {
                    "content": None,
                    "tool_calls": [{"type": "function", "function": {"name": "f"}}],
                }
            }
        ]
    },
    "tool-call-with-empty-id": {
        "choices": [
            {"message": {"tool_calls": [{"id": "", "function": {"name": "f", "arguments": ""}}]}}
        ]
    },
    "tool-call-without-name": {
        "choices": [
            {
                "message": {
                    "tool_calls": [GOOD_CALL, {"id": "call_2", "function": {"arguments": ""}}]
                }
            }
        ]
    },
    "tool-call-without-function": {
        "choices": [{"message": {"tool_calls": [{"id": "call_1", "type": "function"}]}}]
    },
    "tool-call-not-an-object": {"choices": [{"message": {"tool_calls": ["call_1"]}}]},
}


@pytest.mark.parametrize("raw", list(NOT_COMPLETIONS.values()), ids=list(NOT_COMPLETIONS))
def test_a_body_that_is_not_a_completion_is_a_server_error(raw: bytes | dict[str, Any]) -> None:
    with pytest.raises(ServerError) as raised:
        decode_completion(raw, fallback_model="m")
    error = raised.value
    assert type(error) is ServerError
    assert error.retryable is False, "the request may have run: not retried blindly"
    assert error.status_code == 200
    assert error.provider == "openai"
    assert "not a chat completion" in error.message
