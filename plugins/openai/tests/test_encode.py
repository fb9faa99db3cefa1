"""Encoding requests: every role, part and option, and what is refused before sending."""

from __future__ import annotations

from typing import Any

import pytest

from tachikoma_backend_openai._models import OpenAIModel
from tachikoma_backend_openai._scripting import decode_sent_request
from tachikoma_backend_openai._wire.encode import encode_request
from tachikoma_backends_core import (
    CompletionRequest,
    ImagePart,
    InvalidRequestError,
    Message,
    ReasoningEffort,
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
PING = ToolDefinition.builder("ping").build()  # no description, no parameters
WEATHER_JSON = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    },
}
CALL = ToolCall.from_arguments("call_1", "get_weather", {"city": "Paris"})
CALL_2 = ToolCall.from_arguments("call_2", "get_weather", {"city": "Tokyo"})
HI = [Message.user("Hi")]


def encode(
    messages: list[Message],
    *,
    model: str = "gpt-4o",
    stream: bool = False,
    stream_usage: bool = True,
    reasoning_by_default: bool = False,
    **fields: Any,
) -> dict[str, Any]:
    """Encode for ``model`` with what the registry knows of it (as the backend does)."""
    request = CompletionRequest(messages=messages, **fields)
    return encode_request(
        request,
        model=model,
        known=OpenAIModel.lookup(model),
        stream=stream,
        stream_usage=stream_usage,
        reasoning_by_default=reasoning_by_default,
    )


def refused(messages: list[Message], *, model: str = "gpt-4o", **fields: Any) -> str | None:
    """The field the refusal names (the test fails if nothing is refused)."""
    with pytest.raises(InvalidRequestError) as raised:
        encode(messages, model=model, **fields)
    assert raised.value.provider == "openai"
    assert raised.value.message
    return raised.value.field


# --- messages ---------------------------------------------------------------------------


def test_minimal_request() -> None:
    assert encode(HI) == {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.mark.parametrize(
    ("model", "reasoning_by_default", "role"),
    [
        ("gpt-4o", False, "system"),
        ("gpt-4.1-mini", True, "system"),  # a known model: its entry decides
        ("gpt-5.4-mini", False, "developer"),
        ("gpt-5.4-mini-2026-03-17", False, "developer"),  # a dated snapshot
        ("o3", False, "developer"),
        ("my-local-llama", False, "system"),
        ("gpt-7-future", True, "developer"),
    ],
)
def test_system_messages_take_the_models_instruction_role_in_place(
    model: str, reasoning_by_default: bool, role: str
) -> None:
    body = encode(
        [Message.system("Be brief."), Message.user("Hi"), Message.system("Be kind.")],
        model=model,
        reasoning_by_default=reasoning_by_default,
    )
    assert body["messages"] == [
        {"role": role, "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": role, "content": "Be kind."},
    ]


def test_user_text_parts_are_joined_into_one_string() -> None:
    message = Message.user([TextPart(text="Hello, "), TextPart(text="world ☕")])
    assert encode([message])["messages"] == [{"role": "user", "content": "Hello, world ☕"}]


def test_user_images_by_url_and_base64_are_image_url_parts() -> None:
    parts: list[TextPart | ImagePart] = [
        TextPart(text="Compare"),
        ImagePart.from_url("https://example.com/a.png"),
        ImagePart.from_base64("aGVsbG8=", "image/png"),
        ImagePart.from_url("data:image/jpeg;base64,/9j/4AAQ"),
    ]
    assert encode([Message.user(parts)])["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
            ],
        }
    ]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (Message.assistant("Sure."), {"role": "assistant", "content": "Sure."}),
        (Message.assistant(""), {"role": "assistant", "content": ""}),
        (
            Message.assistant("", tool_calls=[CALL]),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
        ),
        (
            Message.assistant("Checking both.", tool_calls=[CALL, CALL_2]),
            {
                "role": "assistant",
                "content": "Checking both.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Tokyo"}'},
                    },
                ],
            },
        ),
        (
            Message.assistant("", tool_calls=[ToolCall(id="call_3", name="ping", arguments="")]),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_3",
                        "type": "function",
                        "function": {"name": "ping", "arguments": "{}"},
                    }
                ],
            },
        ),
    ],
    ids=["text", "empty", "tool-calls-only", "text-and-tool-calls", "empty-arguments"],
)
def test_assistant_turns(message: Message, expected: dict[str, Any]) -> None:
    assert encode([Message.user("Hi"), message])["messages"][1] == expected


def test_tool_results_answer_their_calls_each_in_its_own_message_in_order() -> None:
    body = encode(
        [
            Message.user("Weather in Paris and Tokyo?"),
            Message.assistant("", tool_calls=[CALL, CALL_2]),
            Message.tool_result(ToolResult.success("call_1", "get_weather", "18°C")),
            Message.tool_result(ToolResult.success("call_2", "get_weather", "25°C")),
            Message.user("And tomorrow?"),
        ]
    )
    assert body["messages"][2:] == [
        {"role": "tool", "tool_call_id": "call_1", "content": "18°C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "25°C"},
        {"role": "user", "content": "And tomorrow?"},
    ]


def test_several_results_in_one_message_become_one_tool_message_each() -> None:
    results: list[TextPart | ImagePart | ToolResult] = [
        ToolResult.success("call_1", "get_weather", "18°C"),
        ToolResult.success("call_2", "get_weather", "25°C"),
    ]
    message = Message(role=Role.TOOL, content=results, tool_call_id="call_1")
    assert encode([message])["messages"] == [
        {"role": "tool", "tool_call_id": "call_1", "content": "18°C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "25°C"},
    ]


def test_results_beside_words_in_a_user_message_come_first_then_the_words() -> None:
    message = Message(
        role=Role.USER,
        content=[ToolResult.success("call_1", "get_weather", "18°C"), TextPart(text="Thanks")],
    )
    assert encode([message])["messages"] == [
        {"role": "tool", "tool_call_id": "call_1", "content": "18°C"},
        {"role": "user", "content": "Thanks"},
    ]


def test_a_failed_tool_result_says_so_in_its_text() -> None:
    result = ToolResult.error("call_1", "get_weather", "no such city")
    assert encode([Message.tool_result(result)])["messages"] == [
        {"role": "tool", "tool_call_id": "call_1", "content": "Error: no such city"}
    ]


def test_a_tool_result_of_several_text_parts_is_joined() -> None:
    result = ToolResult.success("call_1", "read", [TextPart(text="a"), TextPart(text="b")])
    assert encode([Message.tool_result(result)])["messages"][0]["content"] == "ab"


def test_an_image_in_a_tool_result_is_refused_naming_its_message() -> None:
    image = ImagePart.from_base64("aGVsbG8=", "image/png")
    result = ToolResult.success("call_1", "screenshot", [TextPart(text="here"), image])
    conversation = [
        Message.user("Screenshot please"),
        Message.assistant("", tool_calls=[ToolCall(id="call_1", name="screenshot")]),
        Message.tool_result(result),
    ]
    assert refused(conversation) == "messages[2].content"


def test_a_hand_built_tool_message_answers_its_call() -> None:
    message = Message(role=Role.TOOL, content="x", tool_call_id="c")
    assert encode([message])["messages"] == [{"role": "tool", "tool_call_id": "c", "content": "x"}]


# --- tools ------------------------------------------------------------------------------


def test_tools_are_function_tools_strict_only_when_asked() -> None:
    strict = ToolDefinition.builder("lookup").required_string("id").strict().build()
    body = encode(HI, tools=[WEATHER, PING, strict])
    assert body["tools"] == [
        WEATHER_JSON,
        {
            "type": "function",
            "function": {
                "name": "ping",
                "parameters": {"type": "object", "properties": {}, "required": []},
            },
        },
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {
                    "type": "object",
                    "properties": {"id": {"type": "string"}},
                    "required": ["id"],
                },
                "strict": True,
            },
        },
    ]
    assert "strict" not in body["tools"][0]["function"]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ToolChoice.auto(), "auto"),
        (ToolChoice.none(), "none"),
        (ToolChoice.required(), "required"),
        (ToolChoice.tool("get_weather"), {"type": "function", "function": {"name": "get_weather"}}),
    ],
    ids=["auto", "none", "required", "named"],
)
def test_tool_choice(choice: ToolChoice, expected: str | dict[str, Any]) -> None:
    body = encode(HI, tools=[WEATHER], tool_choice=choice)
    assert body["tools"] == [WEATHER_JSON]
    assert body["tool_choice"] == expected


@pytest.mark.parametrize("parallel", [True, False])
def test_parallel_tool_calls_is_sent_only_with_tools(parallel: bool) -> None:
    assert encode(HI, tools=[WEATHER], parallel_tool_calls=parallel)["parallel_tool_calls"] is (
        parallel
    )
    without_tools = encode(HI, parallel_tool_calls=parallel)
    assert not {"parallel_tool_calls", "tools", "tool_choice"} & without_tools.keys()


def test_no_parallel_tool_calls_when_the_request_leaves_it_to_the_provider() -> None:
    assert "parallel_tool_calls" not in encode(HI, tools=[WEATHER])


# --- options ----------------------------------------------------------------------------


def test_stop_sequences_are_sent_as_a_list() -> None:
    assert encode(HI, stop=["END"])["stop"] == ["END"]
    four = ["a", "b", "c", "\n\nUser:"]
    assert encode(HI, stop=four)["stop"] == four
    assert "stop" not in encode(HI)


def test_more_than_four_stop_sequences_are_refused() -> None:
    assert refused(HI, stop=["a", "b", "c", "d", "e"]) == "stop"


def test_sampling_options() -> None:
    body = encode(HI, temperature=0.0, top_p=0.9, seed=0)
    assert (body["temperature"], body["top_p"], body["seed"]) == (0.0, 0.9, 0)
    assert not {"temperature", "top_p", "seed"} & encode(HI).keys()


def test_json_mode_is_a_json_object_response_format() -> None:
    assert encode(HI, json_mode=True)["response_format"] == {"type": "json_object"}
    assert "response_format" not in encode(HI)


@pytest.mark.parametrize("strict", [True, False])
def test_response_schema_is_a_json_schema_response_format(strict: bool) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    request = CompletionRequest(messages=HI).with_response_schema(
        schema, name="answer", strict=strict
    )
    body = encode_request(request, model="gpt-4o", known=None, stream=False)
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": strict},
    }


@pytest.mark.parametrize(
    ("model", "reasoning_by_default", "key"),
    [
        ("gpt-5.4-mini", False, "max_completion_tokens"),
        ("o3", False, "max_completion_tokens"),
        ("gpt-7-future", True, "max_completion_tokens"),
        ("gpt-4o", False, "max_tokens"),
        ("gpt-4o", True, "max_tokens"),
        ("my-local-llama", False, "max_tokens"),
    ],
    ids=["reasoning", "o-series", "unknown-at-openai", "chat", "chat-at-openai", "unknown"],
)
def test_max_tokens_field_depends_on_the_model(
    model: str, reasoning_by_default: bool, key: str
) -> None:
    body = encode(HI, model=model, reasoning_by_default=reasoning_by_default, max_tokens=256)
    assert body[key] == 256
    other = {"max_tokens", "max_completion_tokens"} - {key}
    assert not other & body.keys()


def test_no_max_tokens_sends_neither_field() -> None:
    assert not {"max_tokens", "max_completion_tokens"} & encode(HI, model="gpt-5.4-mini").keys()


@pytest.mark.parametrize(
    ("model", "limit"), [("gpt-4o", 16_384), ("gpt-5.4-mini", 128_000), ("o3", 100_000)]
)
def test_max_tokens_up_to_a_known_models_limit(model: str, limit: int) -> None:
    body = encode(HI, model=model, max_tokens=limit)
    assert limit in (body.get("max_tokens"), body.get("max_completion_tokens"))
    with pytest.raises(InvalidRequestError) as raised:
        encode(HI, model=model, max_tokens=limit + 1)
    assert raised.value.field == "max_tokens"
    assert str(limit) in raised.value.message


def test_max_tokens_for_an_unknown_model_is_the_servers_business() -> None:
    assert encode(HI, model="my-local-llama", max_tokens=1_000_000)["max_tokens"] == 1_000_000


# --- reasoning effort -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "effort"),
    [
        ("gpt-5.4-mini", "none"),
        ("gpt-5.4-mini", "xhigh"),
        ("gpt-5", "minimal"),
        ("gpt-5.1", "high"),
        ("o3", "low"),
        ("gpt-6.2-sol", "max"),
        ("my-local-llama", "minimal"),  # unknown: passed through untouched
        ("my-local-llama", "max"),
    ],
)
def test_reasoning_effort_the_model_takes_is_sent(model: str, effort: ReasoningEffort) -> None:
    assert encode(HI, model=model, reasoning_effort=effort)["reasoning_effort"] == effort


@pytest.mark.parametrize(
    ("model", "effort"),
    [
        ("gpt-5.4-mini", "minimal"),
        ("gpt-5.4-mini", "max"),
        ("gpt-5", "none"),
        ("gpt-5.1", "xhigh"),
        ("gpt-6.2-astra", "none"),
        ("gpt-4o", "low"),
        ("gpt-4o", "none"),
        ("gpt-4.1-mini", "high"),
    ],
)
def test_reasoning_effort_the_model_does_not_take_is_refused(
    model: str, effort: ReasoningEffort
) -> None:
    assert refused(HI, model=model, reasoning_effort=effort) == "reasoning_effort"


def test_no_reasoning_effort_without_tools_sends_none() -> None:
    for model in ("gpt-5.4-mini", "gpt-4o", "my-local-llama"):
        assert "reasoning_effort" not in encode(HI, model=model)


@pytest.mark.parametrize(
    ("model", "effort", "sent"),
    [
        ("gpt-5.4-mini", None, "none"),
        ("gpt-5.4-mini", "none", "none"),
        ("gpt-6-luna", None, "none"),
        ("gpt-5.1", "high", "high"),
        ("gpt-5.1", None, None),
        ("gpt-6.2-astra", "high", "high"),  # not documented yet: the API decides
        ("gpt-4o", None, None),
        ("my-local-llama", None, None),
        ("my-local-llama", "high", "high"),
    ],
)
def test_tools_and_reasoning_effort(
    model: str, effort: ReasoningEffort | None, sent: str | None
) -> None:
    body = encode(HI, model=model, tools=[WEATHER], reasoning_effort=effort)
    assert body.get("reasoning_effort") == sent
    assert body["tools"] == [WEATHER_JSON]


@pytest.mark.parametrize(
    ("model", "effort", "field"),
    [
        ("gpt-5.4-mini", "high", "reasoning_effort"),
        ("gpt-5.4-mini", "low", "reasoning_effort"),
        ("gpt-5.6", "medium", "reasoning_effort"),
        ("gpt-6-astra", None, "tools"),
        ("gpt-6-astra", "high", "tools"),
        ("gpt-6.1-sol", None, "tools"),
    ],
)
def test_tools_with_an_effort_the_model_cannot_combine_are_refused(
    model: str, effort: ReasoningEffort | None, field: str
) -> None:
    assert refused(HI, model=model, tools=[WEATHER], reasoning_effort=effort) == field


# --- metadata and streaming -------------------------------------------------------------


def test_user_id_metadata_becomes_user_and_other_metadata_stays_here() -> None:
    body = encode(HI, metadata={"user_id": "u1", "trace": "not sent"})
    assert body["user"] == "u1"
    assert "metadata" not in body
    assert "not sent" not in str(body)
    assert "user" not in encode(HI, metadata={"trace": "x"})


@pytest.mark.parametrize(
    ("stream", "stream_usage", "expected"),
    [
        (True, True, {"stream": True, "stream_options": {"include_usage": True}}),
        (True, False, {"stream": True}),
        (False, True, {}),
    ],
    ids=["stream-with-usage", "stream-without-usage", "no-stream"],
)
def test_streaming_fields(stream: bool, stream_usage: bool, expected: dict[str, Any]) -> None:
    body = encode(HI, stream=stream, stream_usage=stream_usage)
    assert {key: body[key] for key in ("stream", "stream_options") if key in body} == expected


def test_a_full_request_body() -> None:
    body = encode(
        [Message.system("Be brief."), Message.user("Weather in Paris?")],
        model="gpt-5.4-mini",
        stream=True,
        tools=[WEATHER],
        tool_choice=ToolChoice.required(),
        parallel_tool_calls=False,
        max_tokens=512,
        temperature=0.2,
        seed=7,
        metadata={"user_id": "u1"},
    )
    assert body == {
        "model": "gpt-5.4-mini",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
        ],
        "max_completion_tokens": 512,
        "tools": [WEATHER_JSON],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "reasoning_effort": "none",
        "temperature": 0.2,
        "seed": 7,
        "user": "u1",
        "stream": True,
        "stream_options": {"include_usage": True},
    }


# --- round trip through the harness's decoder -------------------------------------------


@pytest.mark.parametrize(
    ("model", "stream"), [("gpt-4o", False), ("gpt-5.4-mini", True), ("my-local-llama", False)]
)
def test_the_harness_decodes_what_the_encoder_sends(model: str, stream: bool) -> None:
    conversation = [
        Message.system("Be brief."),
        Message.user(
            [
                TextPart(text="Look at these"),
                ImagePart.from_url("https://example.com/a.png"),
                ImagePart.from_base64("aGVsbG8=", "image/png"),
            ]
        ),
        Message.assistant("Checking.", tool_calls=[CALL, CALL_2]),
        Message.tool_result(ToolResult.success("call_1", "get_weather", "18°C")),
        Message.tool_result(ToolResult.error("call_2", "get_weather", "no such city")),
        Message.user("Thanks"),
    ]
    body = encode(conversation, model=model, stream=stream, tools=[WEATHER, PING], max_tokens=300)
    sent = decode_sent_request(body)
    assert list(sent.messages) == conversation
    assert sent.messages[4].content == [ToolResult.error("call_2", "get_weather", "no such city")]
    assert (sent.tools, sent.max_tokens, sent.model, sent.stream, sent.json_mode) == (
        ["get_weather", "ping"],
        300,
        model,
        stream,
        False,
    )


@pytest.mark.parametrize(
    "fields",
    [{"json_mode": True}, {"response_schema": {"name": "r", "json_schema": {"type": "object"}}}],
    ids=["json-object", "json-schema"],
)
def test_the_harness_sees_json_mode(fields: dict[str, Any]) -> None:
    assert decode_sent_request(encode(HI, **fields)).json_mode is True


def test_the_harness_decodes_the_contract_3_fields() -> None:
    body = encode(
        HI,
        tools=[WEATHER, PING],
        tool_choice=ToolChoice.tool("get_weather"),
        temperature=0.3,
        top_p=0.9,
        stop=["END", "STOP HERE"],
        metadata={"user_id": "user-42", "trace": "t-1"},
    )
    sent = decode_sent_request(body)
    assert sent.sampling == {"temperature": 0.3, "top_p": 0.9}
    assert sent.stop == ["END", "STOP HERE"]
    assert sent.tool_choice == ToolChoice.tool("get_weather")
    assert sent.metadata == {"user_id": "user-42"}, "only user_id is sent (as `user`)"
    assert [(t.name, t.description) for t in sent.tool_definitions or ()] == [
        ("get_weather", "Current weather"),
        ("ping", ""),
    ]
    weather = (sent.tool_definitions or [])[0].parameters
    assert (weather.properties, weather.required) == (
        WEATHER.parameters.properties,
        WEATHER.parameters.required,
    )


@pytest.mark.parametrize("mode", ["auto", "none", "required"])
def test_the_harness_decodes_each_tool_choice(mode: str) -> None:
    body = encode(HI, tools=[WEATHER], tool_choice=ToolChoice(mode=mode))  # type: ignore[arg-type]
    assert decode_sent_request(body).tool_choice == ToolChoice(mode=mode)  # type: ignore[arg-type]


def test_the_harness_reads_what_was_left_out_as_openais_defaults() -> None:
    sent = decode_sent_request(encode(HI))
    assert (sent.sampling, sent.stop, sent.metadata, sent.tool_definitions) == ({}, [], {}, [])
    assert sent.tool_choice == ToolChoice.auto()


def test_the_harness_reads_a_single_stop_string_and_body_metadata() -> None:
    body = {**encode(HI), "stop": "END", "metadata": {"trace": "t-1"}, "user": "u1"}
    sent = decode_sent_request(body)
    assert (sent.stop, sent.metadata) == (["END"], {"trace": "t-1", "user_id": "u1"})


def test_the_harness_keeps_several_text_parts_apart() -> None:
    body = encode(HI)
    body["messages"] = [
        {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "first question"},
                {"type": "text", "text": "second question"},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "ok"}]},
    ]
    messages = decode_sent_request(body).messages
    assert messages[0] == Message.system("Be brief.")
    assert messages[1].content == [
        TextPart(text="first question"),
        TextPart(text="second question"),
    ], "several text parts stay separate, not glued into 'first questionsecond question'"
    assert messages[2].content == [ToolResult.success("call_1", "", "ok")]
