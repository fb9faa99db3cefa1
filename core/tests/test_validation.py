"""Invalid input raises typed errors that name the offending field (issue: must-show 5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tachikoma_backends_core import (
    CompletionRequest,
    ImagePart,
    InvalidRequestError,
    Message,
    ToolArgumentError,
    ToolCall,
    ToolChoice,
    ToolDefinition,
    Usage,
)

HI = [Message.user("Hi")]


def _call(arguments: str) -> ToolCall:
    return ToolCall(id="call_1", name="read_file", arguments=arguments)


CASES: list[tuple[str, Callable[[], Any], type[InvalidRequestError], str]] = [
    ("empty messages", lambda: CompletionRequest(messages=[]), InvalidRequestError, "messages"),
    (
        "negative max_tokens",
        lambda: CompletionRequest(messages=HI, max_tokens=-1),
        InvalidRequestError,
        "max_tokens",
    ),
    (
        "zero max_tokens via builder",
        lambda: CompletionRequest(messages=HI).with_max_tokens(0),
        InvalidRequestError,
        "max_tokens",
    ),
    (
        "temperature above 2",
        lambda: CompletionRequest(messages=HI, temperature=2.5),
        InvalidRequestError,
        "temperature",
    ),
    (
        "temperature below 0 via builder",
        lambda: CompletionRequest(messages=HI).with_temperature(-0.1),
        InvalidRequestError,
        "temperature",
    ),
    (
        "top_p above 1",
        lambda: CompletionRequest(messages=HI, top_p=1.5),
        InvalidRequestError,
        "top_p",
    ),
    (
        "message with a wrong role",
        lambda: CompletionRequest(messages=[{"role": "robot", "content": "x"}]),
        InvalidRequestError,
        "messages[0].role",
    ),
    (
        "invalid tool name",
        lambda: ToolDefinition.builder("read file").build(),
        InvalidRequestError,
        "name",
    ),
    (
        "duplicate tool parameter",
        lambda: ToolDefinition.builder("t").required_string("path", "").optional_int("path", ""),
        InvalidRequestError,
        "parameters.path",
    ),
    (
        "bad tool-call JSON",
        lambda: _call('{"path": ').parsed_arguments(),
        ToolArgumentError,
        "",
    ),
    ("missing argument", lambda: _call("{}").get_string("path"), ToolArgumentError, "path"),
    (
        "mistyped argument",
        lambda: _call('{"path": 7}').get_string("path"),
        ToolArgumentError,
        "path",
    ),
    (
        "bool is not an int",
        lambda: _call('{"count": true}').get_int("count"),
        ToolArgumentError,
        "count",
    ),
    (
        "tool_choice names an unknown tool",
        lambda: CompletionRequest(messages=HI, tool_choice=ToolChoice.tool("nope")),
        InvalidRequestError,
        "tool_choice",
    ),
    (
        "tool message without tool_call_id",
        lambda: Message(role="tool", content="x"),
        InvalidRequestError,
        "tool_call_id",
    ),
    (
        "image with neither url nor data",
        lambda: ImagePart(),
        InvalidRequestError,
        "",
    ),
    ("negative usage", lambda: Usage(-1, 0), InvalidRequestError, "input_tokens"),
]


@pytest.mark.parametrize(
    ("build", "error_type", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_invalid_input_raises_a_typed_error_naming_the_field(
    build: Callable[[], Any], error_type: type[InvalidRequestError], field: str
) -> None:
    def build_fully() -> None:
        result = build()
        if hasattr(result, "build"):  # a builder: the error comes from build()
            result.build()

    with pytest.raises(error_type) as raised:
        build_fully()
    error = raised.value
    if field:
        assert error.field == field
        assert field.split(".")[-1].split("[")[0] in error.message
    else:
        assert error.message


def test_tool_argument_error_names_the_key_and_tool() -> None:
    with pytest.raises(ToolArgumentError) as raised:
        _call('{"path": 7}').get_string("path")
    assert raised.value.key == "path"
    assert raised.value.tool_name == "read_file"
    assert "must be a string, got int" in raised.value.message


def test_errors_do_not_echo_the_invalid_value() -> None:
    with pytest.raises(InvalidRequestError) as raised:
        CompletionRequest(messages=HI, temperature=123.456)
    assert "123.456" not in str(raised.value)


def test_model_validate_raises_typed_errors_too() -> None:
    with pytest.raises(InvalidRequestError, match="messages"):
        CompletionRequest.model_validate({"messages": []})
