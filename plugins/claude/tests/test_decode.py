"""Decoding non-streamed ``message`` bodies: blocks, stop reasons, usage, bad bodies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tachikoma_backend_claude._wire.decode import decode_message, finish_reason_for, usage_from
from tachikoma_backends_core import (
    FinishReason,
    OverloadedError,
    ServerError,
    Usage,
)

TRANSCRIPTS = Path(__file__).parent / "transcripts"


def test_text_blocks_are_joined() -> None:
    response = decode_message(
        (TRANSCRIPTS / "text_message.json").read_bytes(), fallback_model="unused"
    )
    assert response.content == "Bonjour! Un café ☕ et des sushis 寿司, s'il vous plaît."
    assert response.tool_calls == []
    assert response.finish_reason is FinishReason.STOP
    assert response.usage == Usage(25, 15)
    assert response.model == "claude-sonnet-4-5-20250929"


def test_tool_use_blocks_become_tool_calls_and_thinking_is_left_out() -> None:
    body = json.loads((TRANSCRIPTS / "tool_use_message.json").read_text())
    response = decode_message(body, fallback_model="unused")
    assert response.content == "Okay, let's check the weather for San Francisco, CA:"
    first, second = response.tool_calls
    assert (first.id, first.name) == ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather")
    assert first.arguments == '{"location":"San Francisco, CA","unit":"fahrenheit"}'
    assert (second.name, second.arguments) == ("get_time", "{}")
    assert response.finish_reason is FinishReason.TOOL_CALLS
    assert response.usage.cache_creation_input_tokens == 1024
    assert response.usage.cache_read_input_tokens == 2048


def test_only_tool_calls_means_no_content() -> None:
    body = {
        "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"a": "é"}}],
        "stop_reason": "tool_use",
    }
    response = decode_message(body, fallback_model="claude-fallback")
    assert response.content is None
    assert response.tool_calls[0].arguments == '{"a":"é"}'
    assert response.model == "claude-fallback", "a body without a model keeps the requested one"


@pytest.mark.parametrize(
    ("stop_reason", "has_tools", "expected"),
    [
        ("end_turn", False, FinishReason.STOP),
        ("stop_sequence", False, FinishReason.STOP_SEQUENCE),
        ("max_tokens", False, FinishReason.LENGTH),
        ("model_context_window_exceeded", False, FinishReason.LENGTH),
        ("tool_use", True, FinishReason.TOOL_CALLS),
        ("refusal", False, FinishReason.CONTENT_FILTER),
        ("pause_turn", False, FinishReason.STOP),
        ("pause_turn", True, FinishReason.TOOL_CALLS),
        ("a_reason_from_the_future", False, FinishReason.STOP),
        ("a_reason_from_the_future", True, FinishReason.TOOL_CALLS),
        (None, False, FinishReason.STOP),
        (42, False, FinishReason.STOP),
    ],
)
def test_every_stop_reason_maps(
    stop_reason: object, has_tools: bool, expected: FinishReason
) -> None:
    assert finish_reason_for(stop_reason, has_tools) is expected


def test_usage_tolerates_missing_null_and_odd_counts() -> None:
    assert usage_from(None) == Usage()
    assert usage_from({"input_tokens": 3, "output_tokens": None}) == Usage(3, 0)
    assert usage_from(
        {"input_tokens": True, "output_tokens": -4, "cache_read_input_tokens": 2}
    ) == (Usage(0, 0, cache_read_input_tokens=2))


@pytest.mark.parametrize(
    "raw",
    [b"<html>gateway</html>", b"[]", b'{"type": "message"}', b"\xff"],
    ids=["html", "list", "no-content", "not-utf8"],
)
def test_a_body_that_is_not_a_message_is_a_server_error(raw: bytes) -> None:
    with pytest.raises(ServerError) as raised:
        decode_message(raw, fallback_model="m")
    assert raised.value.retryable is False, "the request may have run: not retried blindly"
    assert raised.value.status_code == 200


def test_tool_use_without_id_is_a_server_error() -> None:
    body = {"content": [{"type": "tool_use", "name": "f", "input": {}}]}
    with pytest.raises(ServerError, match="id or name"):
        decode_message(body, fallback_model="m")


def test_an_error_object_in_a_200_body_is_mapped() -> None:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(OverloadedError):
        decode_message(json.dumps(body).encode(), fallback_model="m")
