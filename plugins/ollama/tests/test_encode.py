"""Encoding ``POST /api/chat`` bodies: roles, images, tool calls and results, tools,
options, structured output, thinking, keep_alive and stream; what is refused before sending.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tachikoma_backend_ollama._scripting import decode_sent_request
from tachikoma_backend_ollama._wire.encode import encode_chat
from tachikoma_backends_core import (
    CompletionRequest,
    ImagePart,
    InvalidRequestError,
    Message,
    ReasoningEffort,
    ResponseSchema,
    Role,
    TextPart,
    ToolArgumentError,
    ToolCall,
    ToolChoice,
    ToolDefinition,
    ToolResult,
    ToolResultContent,
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
PING_JSON = {
    "type": "function",
    "function": {
        "name": "ping",
        "parameters": {"type": "object", "properties": {}, "required": []},
    },
}
CALL = ToolCall.from_arguments("call_k3x9q2ab", "get_weather", {"city": "Zürich"})
CALL_2 = ToolCall.from_arguments("call_9d2kw8te", "get_weather", {"city": "東京"})
HI = [Message.user("Hi")]
NESTED = '{"steps": [1, 2.5, null], "opts": {"dry": true}, "z": "\\u00e9"}'
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
PNG_BASE64 = base64.b64encode(PNG).decode()


def encode(
    messages: list[Message],
    *,
    model: str = "llama3.2",
    stream: bool = False,
    options: dict[str, Any] | None = None,
    think: bool | str | None = None,
    keep_alive: float | str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    request = CompletionRequest(messages=messages, **fields)
    return encode_chat(
        request, model=model, stream=stream, options=options, think=think, keep_alive=keep_alive
    )


def refused(messages: list[Message], **fields: Any) -> str | None:
    """The field the refusal names (the test fails if nothing is refused)."""
    with pytest.raises(InvalidRequestError) as raised:
        encode(messages, **fields)
    assert raised.value.provider == "ollama"
    assert raised.value.message
    return raised.value.field


# --- messages ---------------------------------------------------------------------------


def test_minimal_request() -> None:
    assert encode(HI) == {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": False,
    }


@pytest.mark.parametrize("stream", [True, False])
def test_stream_is_always_sent(stream: bool) -> None:
    # Ollama streams unless told not to: "stream": false must be explicit.
    body = encode(HI, stream=stream)
    assert "stream" in body
    assert body["stream"] is stream


def test_every_role_keeps_its_name_in_order() -> None:
    body = encode(
        [
            Message.system("Be brief."),
            Message.user("Hi"),
            Message.assistant("Hello! ☕"),
            Message.user("Again"),
            Message.system("Be kind."),
        ]
    )
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! ☕"},
        {"role": "user", "content": "Again"},
        {"role": "system", "content": "Be kind."},
    ]


def test_text_parts_are_joined_into_one_string() -> None:
    message = Message.user([TextPart(text="Hello, "), TextPart(text="world 寿司")])
    assert encode([message])["messages"] == [{"role": "user", "content": "Hello, world 寿司"}]


@pytest.mark.parametrize(
    ("image", "sent"),
    [
        (ImagePart.from_base64("aGVsbG8=", "image/png"), "aGVsbG8="),
        (ImagePart.from_bytes(PNG, "image/png"), PNG_BASE64),
        (ImagePart.from_url("data:image/jpeg;base64,/9j/4AAQ"), "/9j/4AAQ"),
        (ImagePart.from_url(f"data:image/png;base64,{PNG_BASE64}"), PNG_BASE64),
    ],
    ids=["base64", "bytes", "data-url", "data-url-png"],
)
def test_images_are_plain_base64_in_images(image: ImagePart, sent: str) -> None:
    message = Message.user([TextPart(text="What is this?"), image])
    assert encode([message])["messages"] == [
        {"role": "user", "content": "What is this?", "images": [sent]}
    ]


def test_several_images_keep_their_order_and_the_text_is_joined() -> None:
    parts: list[TextPart | ImagePart] = [
        TextPart(text="Compare "),
        ImagePart.from_base64("aGVsbG8=", "image/png"),
        TextPart(text="with"),
        ImagePart.from_bytes(PNG, "image/png"),
    ]
    assert encode([Message.user(parts)])["messages"] == [
        {"role": "user", "content": "Compare with", "images": ["aGVsbG8=", PNG_BASE64]}
    ]


def test_an_image_alone_has_empty_content() -> None:
    message = Message.user([ImagePart.from_base64("aGVsbG8=", "image/png")])
    assert encode([message])["messages"] == [
        {"role": "user", "content": "", "images": ["aGVsbG8="]}
    ]


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/cat.png",
        "http://localhost:8000/cat.png",
        "file:///tmp/cat.png",
        "data:image/svg+xml,%3Csvg%3E%3C/svg%3E",  # a data: URL, but not base64
        "data:image/png;base64,abc",  # base64 that does not decode
    ],
)
def test_an_image_url_is_refused_naming_its_message(url: str) -> None:
    message = Message.user([TextPart(text="Look"), ImagePart.from_url(url)])
    assert refused([Message.system("s"), message]) == "messages[1].content"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (Message.assistant("Sure."), {"role": "assistant", "content": "Sure."}),
        (Message.assistant(""), {"role": "assistant", "content": ""}),
        (
            Message.assistant("", tool_calls=[CALL]),
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call_k3x9q2ab",
                        "function": {"name": "get_weather", "arguments": {"city": "Zürich"}},
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
                        "id": "call_k3x9q2ab",
                        "function": {"name": "get_weather", "arguments": {"city": "Zürich"}},
                    },
                    {
                        "id": "call_9d2kw8te",
                        "function": {"name": "get_weather", "arguments": {"city": "東京"}},
                    },
                ],
            },
        ),
        (
            Message.assistant("", tool_calls=[ToolCall(id="call_3", name="ping", arguments="")]),
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": "call_3", "function": {"name": "ping", "arguments": {}}}],
            },
        ),
        (
            Message.assistant(
                "",
                tool_calls=[
                    ToolCall(
                        id="call_4",
                        name="plan",
                        arguments=NESTED,
                    )
                ],
            ),
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call_4",
                        "function": {
                            "name": "plan",
                            "arguments": {
                                "steps": [1, 2.5, None],
                                "opts": {"dry": True},
                                "z": "é",
                            },
                        },
                    }
                ],
            },
        ),
    ],
    ids=["text", "empty", "tool-call", "text-and-two-calls", "empty-arguments", "nested-arguments"],
)
def test_assistant_turns_carry_tool_calls_with_object_arguments(
    message: Message, expected: dict[str, Any]
) -> None:
    assert encode([Message.user("Hi"), message])["messages"][1] == expected


def test_tool_call_arguments_keep_their_key_order() -> None:
    call = ToolCall(id="c", name="f", arguments='{"z": 1, "a": 2, "m": 3}')
    sent = encode([Message.user("Hi"), Message.assistant("", tool_calls=[call])])
    assert list(sent["messages"][1]["tool_calls"][0]["function"]["arguments"]) == ["z", "a", "m"]


@pytest.mark.parametrize(
    "arguments",
    ["not json", '{"city": ', "[1, 2]", '"text"', "42", "null", "true"],
)
def test_tool_call_arguments_that_are_not_a_json_object_are_refused(arguments: str) -> None:
    call = ToolCall(id="call_1", name="get_weather", arguments=arguments)
    messages = [Message.user("Hi"), Message.assistant("", tool_calls=[CALL, call])]
    with pytest.raises(ToolArgumentError) as raised:
        encode(messages)
    assert raised.value.tool_name == "get_weather"
    assert raised.value.key == "messages[1].tool_calls[1].arguments"
    assert raised.value.provider == "ollama"


def test_tool_results_are_tool_messages_with_tool_name_and_tool_call_id_in_order() -> None:
    body = encode(
        [
            Message.user("Weather in Zürich and Tokyo?"),
            Message.assistant("", tool_calls=[CALL, CALL_2]),
            Message.tool_result(ToolResult.success("call_k3x9q2ab", "get_weather", "18°C")),
            Message.tool_result(ToolResult.success("call_9d2kw8te", "get_weather", "25°C")),
            Message.user("And tomorrow?"),
        ]
    )
    assert body["messages"][2:] == [
        {
            "role": "tool",
            "content": "18°C",
            "tool_name": "get_weather",
            "tool_call_id": "call_k3x9q2ab",
        },
        {
            "role": "tool",
            "content": "25°C",
            "tool_name": "get_weather",
            "tool_call_id": "call_9d2kw8te",
        },
        {"role": "user", "content": "And tomorrow?"},
    ]


def test_two_results_in_one_message_are_two_tool_messages_in_order() -> None:
    results: list[TextPart | ImagePart | ToolResult] = [
        ToolResult.success("call_1", "get_weather", "18°C"),
        ToolResult.success("call_2", "get_time", "09:41"),
    ]
    message = Message(role=Role.TOOL, content=results, tool_call_id="call_1")
    assert encode([message])["messages"] == [
        {"role": "tool", "content": "18°C", "tool_name": "get_weather", "tool_call_id": "call_1"},
        {"role": "tool", "content": "09:41", "tool_name": "get_time", "tool_call_id": "call_2"},
    ]


@pytest.mark.parametrize("role", [Role.USER, Role.TOOL])
def test_words_beside_results_come_after_them_as_a_user_message(role: Role) -> None:
    message = Message(
        role=role,
        content=[ToolResult.success("call_1", "get_weather", "18°C"), TextPart(text="Thanks")],
        tool_call_id="call_1" if role is Role.TOOL else None,
    )
    assert encode([message])["messages"] == [
        {"role": "tool", "content": "18°C", "tool_name": "get_weather", "tool_call_id": "call_1"},
        {"role": "user", "content": "Thanks"},
    ]


def test_a_tool_result_of_several_text_parts_is_joined() -> None:
    result = ToolResult.success("call_1", "read", [TextPart(text="a"), TextPart(text="b")])
    assert encode([Message.tool_result(result)])["messages"][0]["content"] == "ab"


def test_a_failed_tool_result_says_so_in_its_text() -> None:
    # Ollama's tool message has no error flag: the text is all the model sees, and
    # ToolResult.error promises "the model sees the message and that it is an error"
    # (the OpenAI plugin writes "Error: <message>" for the same reason).
    result = ToolResult.error("call_1", "get_weather", "no such city")
    content = encode([Message.tool_result(result)])["messages"][0]["content"]
    assert content != "no such city"
    assert "no such city" in content
    assert "error" in content.lower()


def test_images_in_a_tool_result_go_in_its_images() -> None:
    parts: list[TextPart | ImagePart] = [
        TextPart(text="The screenshot:"),
        ImagePart.from_bytes(PNG, "image/png"),
        ImagePart.from_url("data:image/jpeg;base64,/9j/4AAQ"),
    ]
    result = ToolResult(call_id="call_1", name="screenshot", content=ToolResultContent(parts=parts))
    assert encode([Message.user("Look"), Message.tool_result(result)])["messages"][1] == {
        "role": "tool",
        "content": "The screenshot:",
        "tool_name": "screenshot",
        "tool_call_id": "call_1",
        "images": [PNG_BASE64, "/9j/4AAQ"],
    }


def test_an_image_url_in_a_tool_result_is_refused_naming_its_message() -> None:
    result = ToolResult.success(
        "call_1", "screenshot", [ImagePart.from_url("https://example.com/shot.png")]
    )
    assert refused([Message.user("Look"), Message.tool_result(result)]) == "messages[1].content"


def test_a_hand_built_tool_message_is_its_text_for_its_call() -> None:
    message = Message(role=Role.TOOL, content="18°C", tool_call_id="call_1")
    assert encode([message])["messages"] == [
        {"role": "tool", "content": "18°C", "tool_call_id": "call_1"}
    ]


# --- tools ------------------------------------------------------------------------------


def test_tools_are_functions() -> None:
    body = encode(HI, tools=[WEATHER, PING])
    assert body["tools"] == [WEATHER_JSON, PING_JSON]


def test_no_tools_no_tools_key() -> None:
    assert "tools" not in encode(HI)


def test_tool_choice_none_sends_no_tools() -> None:
    body = encode(HI, tools=[WEATHER], tool_choice=ToolChoice.none())
    assert "tools" not in body
    # Nothing to refuse when no tools go out.
    assert "tools" not in encode(
        HI, tools=[WEATHER], tool_choice=ToolChoice.none(), parallel_tool_calls=False
    )


@pytest.mark.parametrize(
    "choice", [ToolChoice.required(), ToolChoice.tool("get_weather")], ids=["required", "named"]
)
def test_a_forced_tool_choice_is_refused(choice: ToolChoice) -> None:
    assert refused(HI, tools=[WEATHER], tool_choice=choice) == "tool_choice"


def test_parallel_tool_calls_false_is_refused() -> None:
    assert refused(HI, tools=[WEATHER], parallel_tool_calls=False) == "parallel_tool_calls"


def test_parallel_tool_calls_true_is_what_ollama_does_anyway() -> None:
    body = encode(HI, tools=[WEATHER], parallel_tool_calls=True)
    assert body["tools"] == [WEATHER_JSON]
    assert "parallel_tool_calls" not in body


# --- options ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "options"),
    [
        ({"temperature": 0.2}, {"temperature": 0.2}),
        ({"temperature": 0.0}, {"temperature": 0.0}),
        ({"top_p": 0.9}, {"top_p": 0.9}),
        ({"seed": 42}, {"seed": 42}),
        ({"seed": 0}, {"seed": 0}),
        ({"stop": ["\n\n", "User:"]}, {"stop": ["\n\n", "User:"]}),
        ({"max_tokens": 256}, {"num_predict": 256}),
        (
            {"temperature": 0.7, "top_p": 0.5, "seed": 7, "stop": ["END"], "max_tokens": 1},
            {"temperature": 0.7, "top_p": 0.5, "seed": 7, "stop": ["END"], "num_predict": 1},
        ),
    ],
)
def test_request_settings_go_in_options(fields: dict[str, Any], options: dict[str, Any]) -> None:
    body = encode(HI, **fields)
    assert body["options"] == options
    for name in ("temperature", "top_p", "seed", "stop", "max_tokens", "num_predict"):
        assert name not in body, "settings go in options, not at the top"


def test_no_settings_no_options() -> None:
    assert "options" not in encode(HI)
    assert "options" not in encode(HI, options={})
    assert "options" not in encode(HI, stop=[])


def test_the_configs_options_are_merged_under_the_requests() -> None:
    config = {"num_ctx": 8192, "temperature": 0.8, "top_k": 20, "num_predict": 64}
    body = encode(HI, options=config, temperature=0.2, max_tokens=100)
    assert body["options"] == {"num_ctx": 8192, "temperature": 0.2, "top_k": 20, "num_predict": 100}
    assert config == {"num_ctx": 8192, "temperature": 0.8, "top_k": 20, "num_predict": 64}


def test_the_configs_options_alone() -> None:
    assert encode(HI, options={"num_ctx": 32768})["options"] == {"num_ctx": 32768}


# --- structured output ------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {"capital": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["capital", "population"],
}


def test_json_mode_is_format_json() -> None:
    assert encode(HI, json_mode=True)["format"] == "json"


def test_a_response_schema_is_the_format() -> None:
    body = encode(HI, response_schema=ResponseSchema(name="country", json_schema=SCHEMA))
    assert body["format"] == SCHEMA


def test_a_response_schema_wins_over_json_mode() -> None:
    body = encode(HI, json_mode=True, response_schema=ResponseSchema(json_schema=SCHEMA))
    assert body["format"] == SCHEMA


def test_no_format_by_default() -> None:
    assert "format" not in encode(HI)


# --- thinking and keep_alive ------------------------------------------------------------


@pytest.mark.parametrize(
    ("effort", "think"),
    [
        ("none", False),
        ("minimal", "low"),
        ("low", "low"),
        ("medium", "medium"),
        ("high", "high"),
        ("xhigh", "high"),
        ("max", "max"),
    ],
)
def test_reasoning_effort_is_think(effort: ReasoningEffort, think: bool | str) -> None:
    assert encode(HI, reasoning_effort=effort)["think"] == think
    # The request's effort wins over the config's think, whatever it is.
    for configured in (True, False, "low", "max"):
        assert encode(HI, reasoning_effort=effort, think=configured)["think"] == think


@pytest.mark.parametrize("configured", [True, False, "low", "medium", "high", "max"])
def test_the_configs_think_is_used_when_the_request_sets_none(configured: bool | str) -> None:
    assert encode(HI, think=configured)["think"] == configured


def test_no_think_leaves_the_models_default() -> None:
    assert "think" not in encode(HI)


@pytest.mark.parametrize("keep_alive", [300, 0, -1, 2.5, "10m", "1h30m", "-1m"])
def test_keep_alive_is_passed(keep_alive: float | str) -> None:
    body = encode(HI, keep_alive=keep_alive)
    assert body["keep_alive"] == keep_alive
    assert type(body["keep_alive"]) is type(keep_alive)


def test_no_keep_alive_leaves_the_servers_default() -> None:
    assert "keep_alive" not in encode(HI)


def test_everything_at_once() -> None:
    body = encode(
        [Message.system("Answer in JSON."), Message.user("Capital of France?")],
        model="qwen3:0.6b",
        stream=True,
        options={"num_ctx": 8192},
        think=True,
        keep_alive="10m",
        tools=[WEATHER],
        temperature=0.1,
        max_tokens=50,
        json_mode=True,
        reasoning_effort="none",
    )
    assert body == {
        "model": "qwen3:0.6b",
        "messages": [
            {"role": "system", "content": "Answer in JSON."},
            {"role": "user", "content": "Capital of France?"},
        ],
        "stream": True,
        "tools": [WEATHER_JSON],
        "options": {"num_ctx": 8192, "temperature": 0.1, "num_predict": 50},
        "format": "json",
        "think": False,
        "keep_alive": "10m",
    }


# --- round trip through the harness's reading of a sent body ----------------------------

CONVERSATION = [
    Message.system("Be brief."),
    Message.user([TextPart(text="What is this?"), ImagePart.from_bytes(PNG, "image/png")]),
    Message.assistant("Checking.", tool_calls=[CALL, CALL_2]),
    Message.tool_result(ToolResult.success("call_k3x9q2ab", "get_weather", "18°C")),
    Message.tool_result(ToolResult.success("call_9d2kw8te", "get_weather", "25°C")),
    Message.assistant("Zürich 18°C, 東京 25°C."),
    Message.user("Thanks"),
]


@pytest.mark.parametrize(
    ("fields", "json_mode"),
    [
        ({}, False),
        ({"json_mode": True}, True),
        ({"response_schema": ResponseSchema(json_schema=SCHEMA)}, True),
    ],
    ids=["plain", "json-mode", "schema"],
)
@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("max_tokens", [None, 512])
def test_decode_sent_request_recovers_what_was_encoded(
    fields: dict[str, Any], json_mode: bool, stream: bool, max_tokens: int | None
) -> None:
    request = CompletionRequest(
        messages=CONVERSATION, tools=[WEATHER, PING], max_tokens=max_tokens, **fields
    )
    body = encode_chat(request, model="qwen3:0.6b", stream=stream, options={"num_ctx": 4096})
    sent = decode_sent_request(body)
    assert list(sent.messages) == CONVERSATION
    assert list(sent.tools) == ["get_weather", "ping"]
    assert sent.max_tokens == max_tokens
    assert sent.model == "qwen3:0.6b"
    assert sent.stream is stream
    assert sent.json_mode is json_mode


def test_decode_sent_request_without_tools() -> None:
    sent = decode_sent_request(encode(HI, tools=[WEATHER], tool_choice=ToolChoice.none()))
    assert list(sent.tools) == []
    assert list(sent.messages) == HI


def test_decode_sent_request_reads_the_options_tools_and_tool_choice() -> None:
    request = CompletionRequest(
        messages=HI,
        tools=[WEATHER, PING],
        temperature=0.3,
        top_p=0.9,
        seed=7,
        stop=["END", "STOP HERE"],
        metadata={"user_id": "user-42"},
    )
    sent = decode_sent_request(encode_chat(request, model="llama3.2", stream=True))
    assert sent.sampling == {"temperature": 0.3, "top_p": 0.9}
    assert list(sent.stop or ()) == ["END", "STOP HERE"]
    assert sent.tool_choice == ToolChoice.auto(), "tools sent: the model decides"
    assert sent.metadata is None, "Ollama takes no request metadata"
    assert [(t.name, t.description) for t in sent.tool_definitions or ()] == [
        ("get_weather", "Current weather"),
        ("ping", ""),
    ]
    assert list(sent.tool_definitions or ()) == [WEATHER, PING]


def test_decode_sent_request_with_nothing_sent() -> None:
    sent = decode_sent_request(encode(HI, tools=[WEATHER], tool_choice=ToolChoice.none()))
    assert (sent.sampling, sent.stop, sent.tool_definitions) == ({}, [], [])
    assert sent.tool_choice == ToolChoice.none(), "no tools sent: none can be called"


def test_decode_sent_request_keeps_consecutive_user_turns_apart() -> None:
    turns = [Message.user("first question"), Message.user("second question")]
    assert list(decode_sent_request(encode(turns)).messages) == turns


@pytest.mark.parametrize(
    ("data", "media_type"),
    [("/9j/4AAQSkZJRgABAQAAAQABAAD", "image/jpeg"), (PNG_BASE64, "image/png")],
)
def test_decode_sent_request_reads_the_media_type_off_the_image(data: str, media_type: str) -> None:
    image = ImagePart.from_base64(data, media_type)
    sent = decode_sent_request(encode([Message.user([TextPart(text="What is this?"), image])]))
    assert list(sent.messages) == [Message.user([TextPart(text="What is this?"), image])]
