"""Decode a Chat Completions answer: the ``chat.completion`` body, its finish and usage.

* ``choices[0].message``: ``content``, ``refusal`` (kept as `CompletionResponse.refusal`),
  ``reasoning_content`` or ``reasoning`` (as `CompletionResponse.thinking`) and
  ``tool_calls`` (``arguments`` is JSON text already; a server that sends an object
  gets it serialised);
* ``finish_reason``: see `finish_reason_for`;
* ``usage``: ``prompt_tokens`` is split as the core counts a prompt,
  ``prompt_tokens_details.cached_tokens`` as ``cache_read_input_tokens`` and the rest as
  ``input_tokens``; ``completion_tokens_details.reasoning_tokens`` as
  ``reasoning_tokens``. A server that sends no usage gives zeros.

A ``200`` whose body is an ``{"error": ...}`` object raises that error; one that is not a
completion at all raises ``ServerError`` (not retryable: the request may have run).
"""

from __future__ import annotations

import json
from typing import Any

from tachikoma_backends_core.completion import CompletionResponse, FinishReason, Usage
from tachikoma_backends_core.errors import BackendError, ServerError
from tachikoma_backends_core.tool_calls import ToolCall

from . import PROVIDER
from .errors import error_from_payload

__all__ = [
    "content_text",
    "decode_completion",
    "reasoning_text",
    "finish_reason_for",
    "tool_arguments",
    "usage_from",
]

# OpenAI's finish reasons, and what OpenAI-compatible servers send instead:
# "eos" (Together AI), "eos_token" (older TGI and sglang) end a turn like "stop".
_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "content_filter": FinishReason.CONTENT_FILTER,
    "eos": FinishReason.STOP,
    "eos_token": FinishReason.STOP,
    "error": FinishReason.ERROR,
}


def finish_reason_for(value: object, has_tool_calls: bool) -> FinishReason:
    """The finish reason for ``value``.

    OpenAI's values map one to one. A turn that called tools but says ``"stop"`` (as
    Gemini's OpenAI endpoint does) finished with ``TOOL_CALLS``; a missing, empty or
    unknown value (a reason added after this release, or a server's own) is the natural
    one.

    Examples:
        >>> finish_reason_for("length", False), finish_reason_for("eos", False)
        (<FinishReason.LENGTH: 'length'>, <FinishReason.STOP: 'stop'>)
        >>> finish_reason_for("stop", True), finish_reason_for("brand_new", False)
        (<FinishReason.TOOL_CALLS: 'tool_calls'>, <FinishReason.STOP: 'stop'>)
    """
    reason = _FINISH_REASONS.get(value) if isinstance(value, str) else None
    if reason is None or (reason is FinishReason.STOP and has_tool_calls):
        return FinishReason.natural(has_tool_calls)
    return reason


def usage_from(usage: object) -> Usage:
    """Our `Usage` for an OpenAI ``usage`` object (zeros for anything else)."""
    if not isinstance(usage, dict):
        return Usage()
    prompt = _count(usage.get("prompt_tokens"))
    cached = min(_count(_detail(usage, "prompt_tokens_details", "cached_tokens")), prompt)
    return Usage(
        prompt - cached,
        _count(usage.get("completion_tokens")),
        cache_read_input_tokens=cached,
        reasoning_tokens=_count(_detail(usage, "completion_tokens_details", "reasoning_tokens")),
    )


def _detail(usage: dict[str, Any], group: str, key: str) -> object:
    details = usage.get(group)
    return details.get(key) if isinstance(details, dict) else None


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def tool_arguments(arguments: object) -> str:
    """A tool call's ``arguments`` as JSON text (some servers send an object)."""
    if isinstance(arguments, str):
        return arguments
    if arguments is None:
        return ""
    return json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))


def decode_completion(raw: bytes | dict[str, Any], *, fallback_model: str) -> CompletionResponse:
    """The response for a ``chat.completion`` body (bytes as received, or decoded)."""
    body: Any = raw
    if isinstance(raw, bytes):
        try:
            body = json.loads(raw)
        except ValueError:
            raise _malformed("it is not JSON") from None
    if not isinstance(body, dict):
        raise _malformed("it is not a JSON object")
    if body.get("error"):
        raise error_from_payload(body)
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _malformed("it has no choices")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise _malformed("its first choice has no message")
    calls = [_tool_call(call) for call in message.get("tool_calls") or ()]
    content = content_text(message.get("content"))
    refusal = message.get("refusal")
    model = body.get("model")
    return CompletionResponse(
        content=content,
        tool_calls=calls,
        finish_reason=finish_reason_for(choices[0].get("finish_reason"), bool(calls)),
        usage=usage_from(body.get("usage")),
        model=model if isinstance(model, str) and model else fallback_model,
        refusal=refusal if isinstance(refusal, str) and refusal else None,
        thinking=reasoning_text(message) or None,
    )


def content_text(content: object) -> str | None:
    """The message's text: a string, or the text parts of a list (Mistral's magistral)."""
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "".join(text for text in texts if isinstance(text, str))
    return content if isinstance(content, str) else None


def reasoning_text(message: dict[str, Any]) -> str:
    """The reasoning an OpenAI-compatible server shows: ``reasoning_content`` (DeepSeek,
    older vLLM) or ``reasoning`` (vLLM, OpenRouter); ``""`` if none."""
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _tool_call(call: object) -> ToolCall:
    if isinstance(call, dict) and isinstance(call.get("function"), dict):
        function = call["function"]
        call_id, name = call.get("id"), function.get("name")
        if isinstance(call_id, str) and call_id and isinstance(name, str) and name:
            arguments = tool_arguments(function.get("arguments"))
            return ToolCall(id=call_id, name=name, arguments=arguments)
    raise _malformed("a tool call lacks its id or function name")


def _malformed(reason: str) -> BackendError:
    return ServerError(
        f"the server answered 200 with a body that is not a chat completion: {reason}",
        provider=PROVIDER,
        status_code=200,
        retryable=False,
    )
