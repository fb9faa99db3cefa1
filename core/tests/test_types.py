"""Messages, requests, responses and usage through the public names."""

from __future__ import annotations

import json

import pytest

from tachikoma_backends_core import (
    CompletionChunk,
    CompletionRequest,
    CompletionResponse,
    FinishReason,
    ImagePart,
    InvalidRequestError,
    Message,
    Role,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolDefinition,
    ToolResult,
    Usage,
)


def test_message_constructors_and_text() -> None:
    assert Message.system("be brief").role is Role.SYSTEM
    assert Message.user("Hi").text == "Hi"
    parts = Message.user([TextPart(text="look: "), ImagePart.from_url("https://x/cat.png")])
    assert parts.text == "look: "
    call = ToolCall(id="c1", name="read_file", arguments='{"path": "a"}')
    assistant = Message.assistant("reading", tool_calls=[call])
    assert assistant.tool_calls == [call]
    result = Message.tool_result(ToolResult.success("c1", "read_file", "contents"))
    assert (result.role, result.tool_call_id, result.text) == (Role.TOOL, "c1", "contents")


def test_only_assistant_messages_carry_tool_calls() -> None:
    with pytest.raises(ValueError, match="only assistant messages"):
        Message(role=Role.USER, tool_calls=[ToolCall(id="c", name="t")])


def test_messages_round_trip_through_json() -> None:
    original = CompletionRequest(
        messages=[
            Message.system("sys"),
            Message.user([TextPart(text="a"), ImagePart.from_bytes(b"\x89PNG", "image/png")]),
            Message.assistant("", tool_calls=[ToolCall(id="c", name="t", arguments="{}")]),
            Message.tool_result(ToolResult.error("c", "t", "boom")),
        ],
        tools=[ToolDefinition.builder("t").build()],
        tool_choice=ToolChoice.tool("t"),
    )
    assert CompletionRequest.model_validate_json(original.model_dump_json()) == original


def test_copy_builders_return_new_validated_requests() -> None:
    base = CompletionRequest(messages=[Message.system("old"), Message.user("Hi")])
    tool = ToolDefinition.builder("lookup").required_string("q", "query").build()
    changed = (
        base.with_max_tokens(10)
        .with_temperature(0.5)
        .with_model("m")
        .with_tools([tool], ToolChoice.required())
        .with_system("new")
        .with_stop(["END"])
        .with_json_mode()
        .with_top_p(0.9)
    )
    assert base.max_tokens is None
    assert base.tools == []
    assert (changed.max_tokens, changed.temperature, changed.model) == (10, 0.5, "m")
    assert changed.tools == [tool]
    assert changed.tool_choice == ToolChoice.required()
    assert changed.system_prompt == "new"
    assert [m.role for m in changed.messages] == [Role.SYSTEM, Role.USER]
    assert (changed.stop, changed.json_mode, changed.top_p) == (["END"], True, 0.9)


def test_requests_are_immutable() -> None:
    request = CompletionRequest(messages=[Message.user("Hi")])
    with pytest.raises(InvalidRequestError, match="immutable") as raised:
        request.max_tokens = 5  # type: ignore[misc]
    assert raised.value.field == "max_tokens"


def test_system_prompt_joins_several_system_messages() -> None:
    request = CompletionRequest(
        messages=[Message.system("a"), Message.user("Hi"), Message.system("b")]
    )
    assert request.system_prompt == "a\n\nb"
    assert CompletionRequest(messages=[Message.user("Hi")]).system_prompt is None


def test_usage_positional_keyword_and_sum() -> None:
    assert Usage(100, 50) == Usage.new(100, 50) == Usage(input_tokens=100, output_tokens=50)
    assert Usage.new(100, 50).total_tokens == 150
    total = Usage.new(1, 2) + Usage(3, 4, cache_read_input_tokens=5)
    assert (total.input_tokens, total.output_tokens, total.cache_read_input_tokens) == (4, 6, 5)
    assert json.loads(Usage.new(1, 2).model_dump_json())["total_tokens"] == 3


def test_response_text_and_chunk_constructors() -> None:
    response = CompletionResponse(finish_reason=FinishReason.TOOL_CALLS, model="m")
    assert (response.content, response.text, response.usage) == ("", "", Usage())
    assert CompletionChunk.text("hi").delta == "hi"
    final = CompletionChunk.final_chunk(Usage.new(1, 1), FinishReason.STOP)
    assert final.is_final
    assert not CompletionChunk.text("x").is_final


def test_tool_call_accessors() -> None:
    call = ToolCall(id="c", name="t", arguments='{"name": "test", "count": 5, "ok": true}')
    assert call.get_string("name") == "test"
    assert call.get_int("count") == 5
    assert call.get_bool("ok") is True
    assert call.get_number("count") == 5.0
    assert call.get_string("missing", "fallback") == "fallback"
    assert ToolCall(id="c", name="t", arguments="").parsed_arguments() == {}
    built = ToolCall.from_arguments("c", "t", {"path": "/tmp"})
    assert built.arguments == '{"path":"/tmp"}'


def test_tool_results() -> None:
    ok = ToolResult.success("c", "t", "Success!")
    assert ok.success
    assert ok.content.as_text() == "Success!"
    failed = ToolResult.error("c", "t", "no such file")
    assert not failed.success
    assert failed.is_error
    with_image = ToolResult.success("c", "t", [TextPart(text="see"), ImagePart.from_url("u")])
    assert with_image.content.as_text() == "see"


def test_tool_choice_constructors() -> None:
    assert [c.mode for c in (ToolChoice.auto(), ToolChoice.none(), ToolChoice.required())] == [
        "auto",
        "none",
        "required",
    ]
    assert ToolChoice.tool("x").name == "x"
    with pytest.raises(ValueError, match="mode is 'tool'"):
        ToolChoice(mode="auto", name="x")


def test_response_content_is_none_only_for_a_tool_call_only_answer() -> None:
    call = ToolCall(id="c", name="t")
    stop, tools = FinishReason.STOP, FinishReason.TOOL_CALLS
    assert (
        CompletionResponse(content="", tool_calls=[call], finish_reason=tools, model="m").content
        is None
    )
    assert CompletionResponse(content=None, finish_reason=stop, model="m").content == ""
    assert (
        CompletionResponse(content="hi", tool_calls=[call], finish_reason=tools, model="m").content
        == "hi"
    )


def test_reading_arguments_does_not_change_equality() -> None:
    a, b = (ToolCall(id="c", name="t", arguments='{"path": "x"}') for _ in range(2))
    assert a.get_string("path") == "x"
    assert a == b
    assert hash(a) == hash(b)


def test_natural_finish_reason() -> None:
    assert FinishReason.natural(has_tool_calls=True) is FinishReason.TOOL_CALLS
    assert FinishReason.natural(has_tool_calls=False) is FinishReason.STOP


def test_the_newer_request_options_validate_and_build() -> None:
    base = CompletionRequest(messages=[Message.user("Hi")])
    request = (
        base.with_response_schema({"type": "object"}, name="answer", strict=False)
        .with_seed(42)
        .with_reasoning_effort("low")
        .with_parallel_tool_calls(False)
    )
    assert request.response_schema is not None
    assert (request.response_schema.name, request.response_schema.strict) == ("answer", False)
    assert request.response_schema.json_schema == {"type": "object"}
    assert (request.seed, request.reasoning_effort, request.parallel_tool_calls) == (
        42,
        "low",
        False,
    )
    with pytest.raises(InvalidRequestError) as raised:
        CompletionRequest(messages=[Message.user("Hi")], reasoning_effort="extreme")  # type: ignore[arg-type]
    assert raised.value.field == "reasoning_effort"
    with pytest.raises(InvalidRequestError, match="1-64 ASCII"):
        base.with_response_schema({}, name="has spaces")


def test_refusals_and_reasoning_tokens_are_kept() -> None:
    response = CompletionResponse(
        content=None, refusal="I can't help with that.", finish_reason=FinishReason.STOP, model="m"
    )
    assert (response.refusal, response.text) == ("I can't help with that.", "")
    total = Usage(10, 5, reasoning_tokens=3) + Usage(1, 1, reasoning_tokens=1)
    assert (total.output_tokens, total.reasoning_tokens) == (6, 4)
