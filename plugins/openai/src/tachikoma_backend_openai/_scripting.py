"""The Chat Completions API seen from the server: build its answers, read its requests.

The mirror image of the wire layer, for the conformance harness and for tests: a reply's
text and tool calls become the ``chat.completion`` body or the chunk stream OpenAI would
send (tool-call fragments optionally interleaved, as parallel calls arrive), and a request
body the backend sent becomes a `SentRequest` in the core's terms.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import zip_longest
from typing import Any

from tachikoma_backends_core.completion import FinishReason, Usage
from tachikoma_backends_core.conformance.harness import SentRequest
from tachikoma_backends_core.content import ImagePart, TextPart
from tachikoma_backends_core.messages import Message
from tachikoma_backends_core.tool_calls import ToolCall, ToolResult, ToolResultContent

from ._wire.encode import ERROR_PREFIX

__all__ = [
    "FINISH_REASON_FOR",
    "completion_body",
    "decode_sent_request",
    "error_body",
    "sse_bytes",
    "stream_chunks",
    "usage_body",
]

#: The ``finish_reason`` OpenAI sends for each finish reason it can express.
FINISH_REASON_FOR: dict[FinishReason, str] = {
    FinishReason.STOP: "stop",
    FinishReason.LENGTH: "length",
    FinishReason.TOOL_CALLS: "tool_calls",
    FinishReason.CONTENT_FILTER: "content_filter",
}

_PIECE = 8  # characters per streamed text delta
_ID = "chatcmpl-Tachikoma"


def usage_body(usage: Usage) -> dict[str, Any]:
    """OpenAI's ``usage`` object for ``usage`` (the prompt counts its cached tokens)."""
    return {
        "prompt_tokens": usage.input_tokens + usage.cache_read_input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.cache_read_input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _call_body(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def completion_body(
    *,
    model: str,
    text: str = "",
    tool_calls: Sequence[ToolCall] = (),
    finish_reason: str = "stop",
    usage: Usage | None = None,
    refusal: str | None = None,
) -> dict[str, Any]:
    """The ``chat.completion`` a non-streamed ``POST /chat/completions`` answers with."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text or (None if tool_calls or refusal else ""),
        "refusal": refusal,
    }
    if tool_calls:
        message["tool_calls"] = [_call_body(call) for call in tool_calls]
    return {
        "id": _ID,
        "object": "chat.completion",
        "created": 1_764_000_000,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
        ],
        "usage": usage_body(usage or Usage()),
    }


def _chunk(model: str, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": _ID,
        "object": "chat.completion.chunk",
        "created": 1_764_000_000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def _pieces(text: str, size: int) -> list[str]:
    return [text[start : start + size] for start in range(0, len(text), size)]


def _call_fragments(index: int, call: ToolCall) -> list[dict[str, Any]]:
    """A call's fragments as OpenAI streams them: id and name first, then arguments."""
    opening = {
        "index": index,
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": ""},
    }
    size = max(len(call.arguments) // 3, 1)  # a few fragments, cut anywhere
    rest = [
        {"index": index, "function": {"arguments": piece}}
        for piece in _pieces(call.arguments, size)
    ]
    return [opening, *rest]


def stream_chunks(
    *,
    model: str,
    text: str = "",
    tool_calls: Sequence[ToolCall] = (),
    finish_reason: str = "stop",
    usage: Usage | None = None,
    interleave: bool = False,
    include_usage: bool = True,
) -> list[dict[str, Any]]:
    """The chunks of the same answer, as OpenAI streams them.

    A role chunk, the text in pieces, the tool calls' fragments (one call after another,
    or round-robin across calls with ``interleave``), a chunk with the finish reason and,
    with ``include_usage``, the usage-only chunk whose ``choices`` is empty.
    """
    chunks = [_chunk(model, {"role": "assistant", "content": ""})]
    chunks += [_chunk(model, {"content": piece}) for piece in _pieces(text, _PIECE)]
    per_call = [_call_fragments(index, call) for index, call in enumerate(tool_calls)]
    if interleave:
        fragments = [f for row in zip_longest(*per_call) for f in row if f is not None]
    else:
        fragments = [fragment for call in per_call for fragment in call]
    chunks += [_chunk(model, {"tool_calls": [fragment]}) for fragment in fragments]
    chunks.append(_chunk(model, {}, finish_reason))
    if include_usage:
        chunks.append(
            {
                "id": _ID,
                "object": "chat.completion.chunk",
                "created": 1_764_000_000,
                "model": model,
                "choices": [],
                "usage": usage_body(usage or Usage()),
            }
        )
    return chunks


def sse_bytes(chunks: Sequence[dict[str, Any]], *, done: bool = True) -> bytes:
    """Chunks as an SSE body (``data:`` lines), ending with ``data: [DONE]`` if ``done``."""
    body = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks)
    return (body + ("data: [DONE]\n\n" if done else "")).encode()


def error_body(
    message: str, error_type: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """An error answer's body, as https://platform.openai.com/docs/guides/error-codes shows."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def decode_sent_request(body: dict[str, Any]) -> SentRequest:
    """A request body the backend sent, in the core's terms."""
    messages: list[Message] = []
    tool_names: dict[str, str] = {}
    for turn in body.get("messages", []):
        role, content = turn["role"], turn.get("content")
        if role in ("system", "developer"):
            messages.append(Message.system(_text(content)))
        elif role == "assistant":
            calls = [
                ToolCall(
                    id=c["id"], name=c["function"]["name"], arguments=c["function"]["arguments"]
                )
                for c in turn.get("tool_calls") or ()
            ]
            tool_names.update((call.id, call.name) for call in calls)
            messages.append(Message.assistant(_text(content), tool_calls=calls))
        elif role == "tool":
            text = _text(content)
            failed = text.startswith(ERROR_PREFIX)
            result = ToolResult(
                call_id=turn["tool_call_id"],
                name=tool_names.get(turn["tool_call_id"], ""),
                content=ToolResultContent.text(text.removeprefix(ERROR_PREFIX) if failed else text),
                is_error=failed,
            )
            messages.append(Message.tool_result(result))
        else:
            messages.append(_user(content))
    response_format = body.get("response_format") or {}
    return SentRequest(
        messages=messages,
        tools=[tool["function"]["name"] for tool in body.get("tools", [])],
        max_tokens=body.get("max_completion_tokens", body.get("max_tokens")),
        model=body.get("model"),
        stream=bool(body.get("stream", False)),
        json_mode=response_format.get("type") in ("json_object", "json_schema"),
    )


def _text(content: object) -> str:
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def _user(content: object) -> Message:
    if not isinstance(content, list):
        return Message.user(_text(content))
    parts: list[TextPart | ImagePart] = []
    for part in content:
        if part["type"] == "text":
            parts.append(TextPart(text=part["text"]))
        elif part["type"] == "image_url":
            url = part["image_url"]["url"]
            if url.startswith("data:") and ";base64," in url:
                media_type, _, data = url[5:].partition(";base64,")
                parts.append(ImagePart.from_base64(data, media_type))
            else:
                parts.append(ImagePart.from_url(url))
    if all(isinstance(part, TextPart) for part in parts):
        return Message.user("".join(p.text for p in parts if isinstance(p, TextPart)))
    return Message.user(parts)
