"""Decode an Ollama ``/api/chat`` answer (the whole one, or each streamed line).

Each answer (or line) is ``{"model", "created_at", "message": {"role", "content",
"thinking", "tool_calls"}, "done", "done_reason", ...counts}``:

* ``message.content`` is the text, ``message.thinking`` what a thinking model thought;
* ``message.tool_calls`` are ``{"id"?, "function": {"index"?, "name", "arguments"}}``
  with the arguments an object, serialised to our JSON text; a call without an ``id``
  (Ollama before 0.12.10) gets ``call_<n>``, numbered in the answer;
* ``done_reason``: ``stop`` (``TOOL_CALLS`` when tools were called), ``length``;
  ``load``/``unload`` and anything unknown read as a natural stop;
* ``prompt_eval_count`` and ``eval_count`` are the input and output tokens.
"""

from __future__ import annotations

import json
from typing import Any

from tachikoma_backends_core.completion import CompletionResponse, FinishReason, Usage
from tachikoma_backends_core.errors import BackendError, ServerError
from tachikoma_backends_core.tool_calls import ToolCall

from . import PROVIDER
from .errors import error_from_message

__all__ = ["decode_chat", "finish_reason_for", "tool_call_from", "usage_from"]


def finish_reason_for(done_reason: object, has_tool_calls: bool) -> FinishReason:
    """The finish reason for Ollama's ``done_reason``.

    Examples:
        >>> finish_reason_for("length", False), finish_reason_for("stop", True)
        (<FinishReason.LENGTH: 'length'>, <FinishReason.TOOL_CALLS: 'tool_calls'>)
    """
    if done_reason == "length":
        return FinishReason.LENGTH
    return FinishReason.natural(has_tool_calls)


def usage_from(answer: dict[str, Any]) -> Usage:
    """Input and output tokens from the final answer's counts (zeros if absent)."""
    return Usage(_count(answer.get("prompt_eval_count")), _count(answer.get("eval_count")))


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def tool_call_from(call: Any, number: int) -> ToolCall:
    """One of ``message.tool_calls`` as a `ToolCall` (``number``: its place, for an id)."""
    function = call["function"]
    name = function["name"]
    if not isinstance(name, str) or not name:
        raise TypeError("a tool call's function has no name")
    arguments = function.get("arguments")
    if isinstance(arguments, str):  # a server that sends JSON text, as OpenAI does
        text = arguments
    elif arguments is None or isinstance(arguments, dict):
        text = json.dumps(arguments or {}, ensure_ascii=False, separators=(",", ":"))
    else:
        raise TypeError("a tool call's arguments must be a JSON object")
    call_id = call.get("id")
    return ToolCall(id=call_id if isinstance(call_id, str) and call_id else f"call_{number}",
                    name=name, arguments=text)  # fmt: skip


def decode_chat(raw: bytes | dict[str, Any], *, fallback_model: str) -> CompletionResponse:
    """The response for a whole (``stream: false``) ``/api/chat`` answer."""
    answer: Any = raw
    if isinstance(raw, bytes):
        try:
            answer = json.loads(raw)
        except ValueError:
            raise _malformed("it is not JSON") from None
    if not isinstance(answer, dict):
        raise _malformed("it is not a JSON object")
    error = answer.get("error")
    if error:
        raise error_from_message(str(error))
    message = answer.get("message")
    if not isinstance(message, dict):
        raise _malformed("it has no message")
    try:
        calls = [tool_call_from(call, n) for n, call in enumerate(message.get("tool_calls") or ())]
    except (KeyError, TypeError, AttributeError):
        raise _malformed("a tool call has no function name") from None
    content, thinking = message.get("content"), message.get("thinking")
    model = answer.get("model")
    return CompletionResponse(
        content=content if isinstance(content, str) else "",
        tool_calls=calls,
        finish_reason=finish_reason_for(answer.get("done_reason"), bool(calls)),
        usage=usage_from(answer),
        model=model if isinstance(model, str) and model else fallback_model,
        thinking=thinking if isinstance(thinking, str) and thinking else None,
    )


def _malformed(reason: str) -> BackendError:
    return ServerError(
        f"Ollama answered 200 with a body that is not a chat answer: {reason}",
        provider=PROVIDER,
        status_code=200,
        retryable=False,
    )
