"""Decode a Messages API response (a ``message`` object) into a `CompletionResponse`.

Shared with the stream decoder: how ``stop_reason`` maps to `FinishReason` and how
``usage`` maps to `Usage`, so a streamed-and-collected answer equals the same answer
completed in one call.

``stop_reason`` (https://platform.claude.com/docs/en/api/handling-stop-reasons):

| ``stop_reason`` | `FinishReason` |
|---|---|
| ``end_turn`` | ``STOP`` |
| ``stop_sequence`` | ``STOP_SEQUENCE`` |
| ``max_tokens``, ``model_context_window_exceeded`` | ``LENGTH`` |
| ``tool_use`` | ``TOOL_CALLS`` |
| ``refusal`` | ``CONTENT_FILTER`` |
| ``pause_turn``, none, or newer than this release | ``TOOL_CALLS`` with tool calls, else ``STOP`` |

``pause_turn`` means a long server-tool turn was paused; the answer so far is valid and
can be sent back to continue, so it reads as a natural stop rather than an error.
"""

from __future__ import annotations

import json
from typing import Any

from tachikoma_backends_core.completion import CompletionResponse, FinishReason, Usage
from tachikoma_backends_core.errors import BackendError, ServerError
from tachikoma_backends_core.tool_calls import ToolCall

from . import PROVIDER
from .errors import error_from_event

__all__ = ["STOP_REASONS", "decode_message", "finish_reason_for", "usage_from"]

STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP_SEQUENCE,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
}


def finish_reason_for(stop_reason: object, has_tool_calls: bool) -> FinishReason:
    """The `FinishReason` for a ``stop_reason``; unknown values never fail."""
    reason = STOP_REASONS.get(stop_reason) if isinstance(stop_reason, str) else None
    return reason or FinishReason.natural(has_tool_calls)


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_from(usage: object) -> Usage:
    """`Usage` from a ``usage`` object; missing, null or odd counts read as 0.

    Anthropic's ``input_tokens`` excludes cached tokens: the prompt's full size is
    ``input_tokens + cache_creation_input_tokens + cache_read_input_tokens``.
    """
    if not isinstance(usage, dict):
        return Usage()
    return Usage(
        input_tokens=_count(usage.get("input_tokens")),
        output_tokens=_count(usage.get("output_tokens")),
        cache_creation_input_tokens=_count(usage.get("cache_creation_input_tokens")),
        cache_read_input_tokens=_count(usage.get("cache_read_input_tokens")),
    )


def tool_arguments(tool_input: object) -> str:
    """A ``tool_use`` block's ``input`` object as compact JSON text."""
    return json.dumps(
        tool_input if tool_input is not None else {}, ensure_ascii=False, separators=(",", ":")
    )


def decode_message(raw: bytes | dict[str, Any], *, fallback_model: str) -> CompletionResponse:
    """The response for a ``message`` body (bytes as received, or already decoded).

    Text blocks are joined; ``tool_use`` blocks become `ToolCall`s with their ``input`` as
    JSON text; thinking blocks are ``thinking``; server-tool blocks are left
    out. A body that is not a
    message raises ``ServerError`` (not retryable: the request may have run).
    """
    body: Any = raw
    if isinstance(raw, bytes):
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise _malformed("it is not JSON") from None
    if not isinstance(body, dict):
        raise _malformed("it is not a JSON object")
    if body.get("type") == "error":
        raise error_from_event(body)
    content = body.get("content")
    if not isinstance(content, list):
        raise _malformed("it has no content list")
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[ToolCall] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind in ("text", "thinking"):
            text = block.get(kind)
            if isinstance(text, str):
                (texts if kind == "text" else thoughts).append(text)
        elif kind == "tool_use":
            call_id, name = block.get("id"), block.get("name")
            if not (isinstance(call_id, str) and isinstance(name, str)):
                raise _malformed("a tool_use block lacks its id or name")
            calls.append(
                ToolCall(id=call_id, name=name, arguments=tool_arguments(block.get("input")))
            )
    model = body.get("model")
    return CompletionResponse(
        content="".join(texts),
        tool_calls=calls,
        finish_reason=finish_reason_for(body.get("stop_reason"), bool(calls)),
        usage=usage_from(body.get("usage")),
        model=model if isinstance(model, str) and model else fallback_model,
        thinking="".join(thoughts) or None,
    )


def _malformed(reason: str) -> BackendError:
    return ServerError(
        f"Claude answered 200 with a body that is not a message: {reason}",
        provider=PROVIDER,
        status_code=200,
        retryable=False,
    )
