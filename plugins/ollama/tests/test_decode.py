"""Decoding whole (``"stream": false``) ``/api/chat`` answers: text, thinking, tool calls,
done reasons, counts, the model, errors in a 200, and bodies that are not answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tachikoma_backend_ollama._scripting import chat_answer
from tachikoma_backend_ollama._wire.decode import decode_chat
from tachikoma_backends_core import (
    BackendError,
    ContextLengthExceededError,
    FinishReason,
    InvalidRequestError,
    ModelNotFoundError,
    OverloadedError,
    ServerError,
    ToolCall,
    Usage,
)

TRANSCRIPTS = Path(__file__).parent / "transcripts"


def transcript(name: str) -> bytes:
    return (TRANSCRIPTS / name).read_bytes()


def answer(message: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    """A whole answer around ``message`` (top-level fields in ``top``; None drops one)."""
    body: dict[str, Any] = {
        "model": "llama3.2",
        "created_at": "2026-11-29T12:00:00.000000000Z",
        "message": {"role": "assistant", "content": "Hi"} if message is None else message,
        "done_reason": "stop",
        "done": True,
        "prompt_eval_count": 10,
        "eval_count": 2,
    }
    body.update(top)
    return {key: value for key, value in body.items() if value is not None}


def decode(body: dict[str, Any] | bytes, fallback_model: str = "fallback") -> Any:
    return decode_chat(body, fallback_model=fallback_model)


# --- transcripts ------------------------------------------------------------------------


def test_text_answer() -> None:
    response = decode(transcript("chat_text.json"), "unused")
    assert response.content == (
        "The sky is blue because of Rayleigh scattering: air molecules scatter short (blue) "
        "wavelengths of sunlight more than long (red) ones — & so the sky looks blue."
    )
    assert response.tool_calls == []
    assert response.thinking is None
    assert response.finish_reason is FinishReason.STOP
    assert response.usage == Usage(26, 38)
    assert response.model == "llama3.2"


def test_thinking_answer() -> None:
    response = decode(transcript("chat_thinking.json"), "unused")
    assert response.content == "6 \u00d7 7 = **42**"
    assert response.thinking == "Okay, the user asks for 6 \u00d7 7.\nThat's 42."
    assert response.finish_reason is FinishReason.STOP
    assert response.usage == Usage(14, 23)
    assert response.model == "qwen3:0.6b"


def test_two_tool_calls_with_ids_and_non_ascii_arguments() -> None:
    response = decode(transcript("chat_tool_calls.json"), "unused")
    assert response.tool_calls == [
        ToolCall(
            id="call_0mq7z1xc",
            name="get_weather",
            arguments='{"city":"Zürich","unit":"celsius"}',
        ),
        ToolCall(
            id="call_9d2kw8te", name="get_weather", arguments='{"city":"東京","unit":"celsius"}'
        ),
    ]
    assert response.tool_calls[1].get_string("city") == "東京"
    assert response.content is None, "tool calls and no text"
    assert response.thinking == "Two cities: call the tool twice."
    assert response.finish_reason is FinishReason.TOOL_CALLS, "'stop' with tool calls"
    assert response.usage == Usage(263, 97)


def test_calls_without_ids_are_numbered_in_the_answer() -> None:
    # Ollama before 0.12.10 sent no ids.
    response = decode(transcript("chat_tool_calls_no_id.json"), "unused")
    assert response.tool_calls == [
        ToolCall(id="call_0", name="get_weather", arguments='{"city":"Zürich"}'),
        ToolCall(id="call_1", name="get_time", arguments="{}"),
    ]
    assert response.finish_reason is FinishReason.TOOL_CALLS
    assert response.model == "llama3.1"


@pytest.mark.parametrize(
    "name",
    ["chat_text.json", "chat_thinking.json", "chat_tool_calls.json", "chat_tool_calls_no_id.json"],
)
def test_bytes_and_the_decoded_dict_decode_alike(name: str) -> None:
    raw = transcript(name)
    assert decode(raw) == decode(json.loads(raw))


# --- tool calls -------------------------------------------------------------------------


def call(name: str, arguments: Any, call_id: str | None = None, **more: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"function": {"index": 0, "name": name, "arguments": arguments}}
    if call_id is not None:
        entry["id"] = call_id
    entry.update(more)
    return entry


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        ([call("f", {}, "call_a")], [ToolCall(id="call_a", name="f", arguments="{}")]),
        ([call("f", None, "call_a")], [ToolCall(id="call_a", name="f", arguments="{}")]),
        (
            [call("f", {"n": 1, "x": [True, None, 2.5]}, "")],
            [ToolCall(id="call_0", name="f", arguments='{"n":1,"x":[true,null,2.5]}')],
        ),
        (
            [call("f", {"a": 1}), call("g", {"b": 2}, "call_x"), call("h", {"c": 3})],
            [
                ToolCall(id="call_0", name="f", arguments='{"a":1}'),
                ToolCall(id="call_x", name="g", arguments='{"b":2}'),
                ToolCall(id="call_2", name="h", arguments='{"c":3}'),
            ],
        ),
        (
            [call("f", {"z": 1, "a": {"y": 2, "b": 3}}, "c1")],
            [ToolCall(id="c1", name="f", arguments='{"z":1,"a":{"y":2,"b":3}}')],
        ),
        (
            [call("f", {"text": 'naïve "quotes" \\ 寿司 \u2028'}, "c1", type="function")],
            [
                ToolCall(
                    id="c1",
                    name="f",
                    arguments='{"text":"naïve \\"quotes\\" \\\\ 寿司 \u2028"}',
                )
            ],
        ),
    ],
    ids=["empty", "null-arguments", "empty-id", "mixed-ids", "key-order", "escapes"],
)
def test_tool_calls(calls: list[dict[str, Any]], expected: list[ToolCall]) -> None:
    response = decode(answer({"role": "assistant", "content": "", "tool_calls": calls}))
    assert response.tool_calls == expected
    for decoded in response.tool_calls:
        assert isinstance(decoded.parsed_arguments(), dict)


@pytest.mark.parametrize(
    "arguments", ['{"city": "Zürich"}', '{"city":"Zürich"}', "{}", ""], ids=repr
)
def test_arguments_sent_as_json_text_are_kept_as_they_are(arguments: str) -> None:
    # A server that sends OpenAI's JSON-encoded string instead of Ollama's object.
    body = answer({"role": "assistant", "content": "", "tool_calls": [call("f", arguments, "c")]})
    assert decode(body).tool_calls == [ToolCall(id="c", name="f", arguments=arguments)]


def test_text_beside_tool_calls_is_kept() -> None:
    body = answer({"role": "assistant", "content": "Checking.", "tool_calls": [call("f", {}, "c")]})
    response = decode(body)
    assert response.content == "Checking."
    assert response.finish_reason is FinishReason.TOOL_CALLS


# --- finish reasons, counts, model ------------------------------------------------------


@pytest.mark.parametrize(
    ("done_reason", "with_calls", "expected"),
    [
        ("stop", False, FinishReason.STOP),
        ("stop", True, FinishReason.TOOL_CALLS),
        ("length", False, FinishReason.LENGTH),
        ("length", True, FinishReason.LENGTH),
        ("load", False, FinishReason.STOP),
        ("unload", False, FinishReason.STOP),
        ("", False, FinishReason.STOP),  # DoneReasonConnectionClosed stringifies to ""
        ("something_new", False, FinishReason.STOP),
        ("something_new", True, FinishReason.TOOL_CALLS),
        (None, False, FinishReason.STOP),
        (None, True, FinishReason.TOOL_CALLS),
    ],
)
def test_done_reason(done_reason: str | None, with_calls: bool, expected: FinishReason) -> None:
    message: dict[str, Any] = {"role": "assistant", "content": "" if with_calls else "Hi"}
    if with_calls:
        message["tool_calls"] = [call("f", {}, "c")]
    assert decode(answer(message, done_reason=done_reason)).finish_reason is expected


def test_a_load_answer_is_an_empty_stop() -> None:
    # POST /api/chat with no messages loads the model: done_reason "load", no counts.
    body = {
        "model": "llama3.2",
        "created_at": "2026-11-29T12:00:00.000000000Z",
        "message": {"role": "assistant", "content": ""},
        "done_reason": "load",
        "done": True,
    }
    response = decode(body)
    assert (response.content, response.finish_reason) == ("", FinishReason.STOP)
    assert response.usage == Usage()


@pytest.mark.parametrize(
    ("counts", "usage"),
    [
        ({"prompt_eval_count": 26, "eval_count": 298}, Usage(26, 298)),
        ({"prompt_eval_count": None, "eval_count": 5}, Usage(0, 5)),
        ({"prompt_eval_count": 7, "eval_count": None}, Usage(7, 0)),
        ({"prompt_eval_count": None, "eval_count": None}, Usage()),
        ({"prompt_eval_count": "26", "eval_count": 1.5}, Usage()),  # not counts: ignored
        ({"prompt_eval_count": True, "eval_count": -3}, Usage()),
    ],
)
def test_usage_from_the_counts(counts: dict[str, Any], usage: Usage) -> None:
    assert decode(answer(**counts)).usage == usage


@pytest.mark.parametrize("model", [None, "", 42])
def test_model_falls_back_when_missing(model: Any) -> None:
    assert decode(answer(model=model), "llama3.2:latest").model == "llama3.2:latest"


@pytest.mark.parametrize(
    ("message", "content", "thinking"),
    [
        ({"role": "assistant", "content": "", "thinking": ""}, "", None),
        ({"role": "assistant"}, "", None),
        ({"role": "assistant", "content": None, "thinking": None}, "", None),
        ({"role": "assistant", "content": "ok", "thinking": "hm"}, "ok", "hm"),
    ],
)
def test_empty_or_missing_text_and_thinking(
    message: dict[str, Any], content: str, thinking: str | None
) -> None:
    response = decode(answer(message))
    assert (response.content, response.thinking) == (content, thinking)


def test_the_scripted_answer_round_trips() -> None:
    calls = [ToolCall.from_arguments("call_1", "get_weather", {"city": "Zürich"})]
    body = chat_answer(
        model="qwen3:0.6b", text="", tool_calls=calls, usage=Usage(9, 4), thinking="hm"
    )
    response = decode(body)
    assert response.tool_calls == [
        ToolCall(id="call_1", name="get_weather", arguments='{"city":"Zürich"}')
    ]
    assert (response.usage, response.thinking) == (Usage(9, 4), "hm")


# --- errors in a 200, and bodies that are not answers -----------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("an error was encountered while running the model", ServerError),
        ("model 'llama9' not found", ModelNotFoundError),
        ("server busy, please try again.  maximum pending requests exceeded", OverloadedError),
        ("the input length exceeds the context length", ContextLengthExceededError),
        ('"llama3.2" does not support thinking', InvalidRequestError),
    ],
)
def test_an_error_body_raises_the_mapped_error(message: str, expected: type[BackendError]) -> None:
    with pytest.raises(expected) as raised:
        decode(json.dumps({"error": message}).encode())
    assert type(raised.value) is expected
    assert message in raised.value.message
    assert raised.value.provider == "ollama"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b"<html><body>502 Bad Gateway</body></html>", "not JSON"),
        (b"", "not JSON"),
        (b'{"message": ', "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'"text"', "not a JSON object"),
        (b"null", "not a JSON object"),
        (b'{"model": "llama3.2", "done": true}', "no message"),
        (b'{"model": "llama3.2", "message": "Hi", "done": true}', "no message"),
        (b'{"model": "llama3.2", "message": null, "done": true}', "no message"),
        (b'{"message": {"content": "", "tool_calls": [{"function": {"arguments": {}}}]}}', "name"),
        (b'{"message": {"content": "", "tool_calls": [{"function": {"name": ""}}]}}', "name"),
        (b'{"message": {"content": "", "tool_calls": [{"function": {"name": 7}}]}}', "name"),
        (b'{"message": {"content": "", "tool_calls": [{"id": "c"}]}}', "name"),
        (b'{"message": {"content": "", "tool_calls": ["f"]}}', "name"),
        (b'{"message": {"content": "", "tool_calls": [{"function": "f"}]}}', "name"),
    ],
)
def test_a_body_that_is_not_an_answer_is_a_server_error(raw: bytes, reason: str) -> None:
    with pytest.raises(ServerError) as raised:
        decode(raw)
    error = raised.value
    assert type(error) is ServerError
    assert reason in error.message
    assert (error.provider, error.status_code, error.retryable) == ("ollama", 200, False)


def test_a_dict_that_is_not_an_answer_is_a_server_error() -> None:
    with pytest.raises(ServerError, match="no message"):
        decode({"model": "llama3.2"})
