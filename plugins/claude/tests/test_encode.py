"""Encoding requests: every message, block and option, and what is refused before sending."""

from __future__ import annotations

from typing import Any

import pytest

from tachikoma_backend_claude._scripting import decode_sent_request
from tachikoma_backend_claude._wire.encode import encode_request, resolve_max_tokens
from tachikoma_backends_core import (
    CompletionRequest,
    ImagePart,
    InvalidRequestError,
    Message,
    Role,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolDefinition,
    ToolResult,
)

WEATHER = (
    ToolDefinition.builder("get_weather")
    .description("Current weather")
    .required_string("city", "City name")
    .build()
)
CALL = ToolCall.from_arguments("toolu_1", "get_weather", {"city": "Paris"})


def encode(messages: list[Message], **fields: Any) -> dict[str, Any]:
    request = CompletionRequest(messages=messages, **fields)
    return encode_request(request, model="claude-test", max_tokens=100, stream=False)


def test_minimal_request() -> None:
    assert encode([Message.user("Hi")]) == {
        "model": "claude-test",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    }


def test_system_messages_become_the_top_level_field_joined_by_blank_lines() -> None:
    body = encode([Message.system("Be brief."), Message.user("Hi"), Message.system("Be kind.")])
    assert body["system"] == "Be brief.\n\nBe kind."
    assert [turn["role"] for turn in body["messages"]] == ["user"]


def test_images_by_url_base64_and_data_url() -> None:
    parts: list[TextPart | ImagePart] = [
        TextPart(text="Compare"),
        ImagePart.from_url("https://example.com/a.png"),
        ImagePart.from_base64("aGVsbG8=", "image/png"),
        ImagePart.from_url("data:image/jpeg;base64,/9j/4AAQ"),
    ]
    content = encode([Message.user(parts)])["messages"][0]["content"]
    assert content == [
        {"type": "text", "text": "Compare"},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "aGVsbG8="},
        },
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"},
        },
    ]


def test_a_data_url_that_is_not_base64_is_refused() -> None:
    with pytest.raises(InvalidRequestError) as raised:
        encode([Message.user([ImagePart.from_url("data:image/png,rawbytes")])])
    assert raised.value.field == "messages[0].content"


def test_tool_round_trip_blocks() -> None:
    body = encode(
        [
            Message.user("Weather in Paris?"),
            Message.assistant("Checking.", tool_calls=[CALL]),
            Message.tool_result(ToolResult.success("toolu_1", "get_weather", "18°C")),
            Message.tool_result(ToolResult.error("toolu_2", "get_weather", "no such city")),
            Message.user("And tomorrow?"),
        ]
    )
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "18°C"}],
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "no such city"}],
                    "is_error": True,
                },
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]


def test_tool_results_open_a_merged_user_turn() -> None:
    body = encode(
        [
            Message.assistant("", tool_calls=[CALL]),
            Message.user("Here you go:"),
            Message.tool_result(ToolResult.success("toolu_1", "get_weather", "18°C")),
        ]
    )
    assert [block["type"] for block in body["messages"][1]["content"]] == ["tool_result", "text"]


def test_a_tool_message_with_plain_content_answers_its_call() -> None:
    message = Message(role=Role.TOOL, content="done", tool_call_id="toolu_9")
    assert encode([message])["messages"][0]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": "toolu_9",
            "content": [{"type": "text", "text": "done"}],
        }
    ]


def test_tool_results_with_images_and_empty_results() -> None:
    image = ImagePart.from_base64("aGVsbG8=", "image/png")
    result = ToolResult.success("toolu_1", "screenshot", [image])
    empty = ToolResult.success("toolu_2", "noop", "")
    content = encode([Message.tool_result(result), Message.tool_result(empty)])["messages"][0][
        "content"
    ]
    assert content[0]["content"][0]["type"] == "image"
    assert content[1] == {"type": "tool_result", "tool_use_id": "toolu_2"}


def test_consecutive_same_role_messages_merge_and_empty_text_is_dropped() -> None:
    body = encode([Message.user("a"), Message.user(""), Message.user("b"), Message.assistant("c")])
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "c"}]},
    ]


def test_invalid_tool_call_arguments_name_the_field() -> None:
    broken = ToolCall(id="t", name="f", arguments="{not json")
    with pytest.raises(InvalidRequestError) as raised:
        encode([Message.assistant("", tool_calls=[broken])])
    assert raised.value.field == "messages[0].tool_calls[0].arguments"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ToolChoice.auto(), {"type": "auto"}),
        (ToolChoice.required(), {"type": "any"}),
        (ToolChoice.none(), {"type": "none"}),
        (ToolChoice.tool("get_weather"), {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tools_and_tool_choice(choice: ToolChoice, expected: dict[str, str]) -> None:
    body = encode([Message.user("Hi")], tools=[WEATHER], tool_choice=choice)
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "City name"}},
                "required": ["city"],
            },
        }
    ]
    assert body["tool_choice"] == expected


def test_no_tools_no_tool_choice() -> None:
    assert "tool_choice" not in encode([Message.user("Hi")], tool_choice=ToolChoice.none())


def test_sampling_options_stop_sequences_metadata_and_stream() -> None:
    request = CompletionRequest(
        messages=[Message.user("Hi")],
        temperature=0.5,
        top_p=0.9,
        stop=["END", "\n\nHuman:"],
        metadata={"user_id": "u-42", "trace": "not sent"},
    )
    body = encode_request(request, model="m", max_tokens=10, stream=True)
    assert body["temperature"] == 0.5
    assert body["top_p"] == 0.9
    assert body["stop_sequences"] == ["END", "\n\nHuman:"]
    assert body["metadata"] == {"user_id": "u-42"}
    assert body["stream"] is True
    assert "stream" not in encode([Message.user("Hi")])


def test_json_mode_is_refused() -> None:
    with pytest.raises(InvalidRequestError) as raised:
        encode([Message.user("Hi")], json_mode=True)
    assert raised.value.field == "json_mode"


def test_temperature_above_one_is_refused() -> None:
    with pytest.raises(InvalidRequestError) as raised:
        encode([Message.user("Hi")], temperature=1.5)
    assert raised.value.field == "temperature"


@pytest.mark.parametrize(
    ("asked", "default", "limit", "sent"),
    [
        (None, 4096, 64_000, 4096),
        (None, 100_000, 64_000, 64_000),
        (64_000, 4096, 64_000, 64_000),
        (500_000, 4096, None, 500_000),
    ],
    ids=["default", "default-capped", "at-limit", "unknown-model-unchecked"],
)
def test_max_tokens_resolution(
    asked: int | None, default: int, limit: int | None, sent: int
) -> None:
    request = CompletionRequest(messages=[Message.user("Hi")], max_tokens=asked)
    assert resolve_max_tokens(request, default, limit) == sent


def test_max_tokens_above_the_limit_is_refused_naming_it() -> None:
    request = CompletionRequest(messages=[Message.user("Hi")], max_tokens=64_001)
    with pytest.raises(InvalidRequestError) as raised:
        resolve_max_tokens(request, 4096, 64_000)
    assert raised.value.field == "max_tokens"
    assert "64000" in raised.value.message


def test_the_harness_decodes_what_the_encoder_sends() -> None:
    conversation = [
        Message.system("Be brief."),
        Message.user("Read it"),
        Message.assistant("", tool_calls=[CALL]),
        Message.tool_result(ToolResult.success("toolu_1", "get_weather", "18°C")),
        Message.user([TextPart(text="Look"), ImagePart.from_url("https://x/y.png")]),
    ]
    sent = decode_sent_request(encode(conversation, tools=[WEATHER]))
    assert [(m.role, m.text) for m in sent.messages] == [(m.role, m.text) for m in conversation]
    assert sent.messages[2].tool_calls[0].parsed_arguments() == {"city": "Paris"}
    assert sent.messages[3].tool_call_id == "toolu_1"
    assert sent.messages[4].content == conversation[4].content
    assert (sent.tools, sent.model, sent.max_tokens, sent.stream) == (
        ["get_weather"],
        "claude-test",
        100,
        False,
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (
            {"response_schema": {"name": "answer", "json_schema": {"type": "object"}}},
            "response_schema",
        ),
        ({"seed": 7}, "seed"),
        ({"reasoning_effort": "high"}, "reasoning_effort"),
    ],
)
def test_what_the_messages_api_cannot_do_is_refused_naming_it(
    fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        encode([Message.user("Hi")], **fields)
    assert raised.value.field == field


def test_parallel_tool_calls_off_disables_parallel_tool_use() -> None:
    body = encode([Message.user("Hi")], tools=[WEATHER], parallel_tool_calls=False)
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert (
        "disable_parallel_tool_use"
        not in encode([Message.user("Hi")], tools=[WEATHER], parallel_tool_calls=True)[
            "tool_choice"
        ]
    )


def test_a_strict_tool_is_sent_as_any_other() -> None:
    strict = ToolDefinition.builder("get_weather").required_string("city").strict().build()
    assert strict.strict is True
    assert "strict" not in encode([Message.user("Hi")], tools=[strict])["tools"][0]
