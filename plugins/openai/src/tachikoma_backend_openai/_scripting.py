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
from tachikoma_backends_core.conformance.harness import SentRequest, sent_tool_definition
from tachikoma_backends_core.content import ImagePart, TextPart
from tachikoma_backends_core.messages import ContentPart, Message, Role
from tachikoma_backends_core.tool_calls import (
    ToolCall,
    ToolChoice,
    ToolResult,
    ToolResultContent,
)

from ._wire.encode import ERROR_PREFIX

__all__ = [
    "FINISH_REASON_FOR",
    "completion_body",
    "decode_sent_request",
    "error_body",
    "error_event",
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


def error_event(
    message: str, error_type: str, code: str | None = None, param: str | None = None
) -> bytes:
    """What OpenAI streams when a request fails after its stream started: the error body
    as a ``data:`` event, then ``data: [DONE]``, as OpenAI sends it mid-stream
    (``tests/transcripts/error_midstream.sse``)."""
    return sse_bytes([error_body(message, error_type, code, param)])


def _tool_choice(body: dict[str, Any]) -> ToolChoice:
    # Left out, OpenAI's default is "auto" (with tools; with none there is nothing to call).
    choice = body.get("tool_choice", "auto")
    if isinstance(choice, dict):
        return ToolChoice.tool(choice["function"]["name"])
    return ToolChoice(mode=choice)


def _stop(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    return [stop] if isinstance(stop, str) else list(stop)


def _metadata(body: dict[str, Any]) -> dict[str, str]:
    # The plugin sends metadata["user_id"] as ``user``; ``metadata`` is OpenAI's own field.
    metadata = dict(body.get("metadata") or {})
    if "user" in body:
        metadata["user_id"] = body["user"]
    return metadata


def decode_sent_request(body: dict[str, Any]) -> SentRequest:
    """A request body the backend sent, in the core's terms.

    Content sent as a list of parts stays parts (one text part reads as plain text):
    several text parts are never glued into one.
    """
    messages: list[Message] = []
    tool_names: dict[str, str] = {}
    for turn in body.get("messages", []):
        role, content = turn["role"], turn.get("content")
        if role in ("system", "developer"):
            messages.append(Message(role=Role.SYSTEM, content=_content(content)))
        elif role == "assistant":
            calls = [
                ToolCall(
                    id=c["id"], name=c["function"]["name"], arguments=c["function"]["arguments"]
                )
                for c in turn.get("tool_calls") or ()
            ]
            tool_names.update((call.id, call.name) for call in calls)
            messages.append(
                Message(role=Role.ASSISTANT, content=_content(content), tool_calls=calls)
            )
        elif role == "tool":
            messages.append(Message.tool_result(_tool_result(turn, tool_names)))
        else:
            messages.append(Message(role=Role.USER, content=_content(content)))
    response_format = body.get("response_format") or {}
    functions = [tool["function"] for tool in body.get("tools", [])]
    return SentRequest(
        messages=messages,
        tools=[function["name"] for function in functions],
        max_tokens=body.get("max_completion_tokens", body.get("max_tokens")),
        model=body.get("model"),
        stream=bool(body.get("stream", False)),
        json_mode=response_format.get("type") in ("json_object", "json_schema"),
        sampling={name: body[name] for name in ("temperature", "top_p") if name in body},
        stop=_stop(body),
        tool_choice=_tool_choice(body),
        metadata=_metadata(body),
        tool_definitions=[
            sent_tool_definition(f["name"], f.get("description"), f.get("parameters"))
            for f in functions
        ],
    )


def _tool_result(turn: dict[str, Any], tool_names: dict[str, str]) -> ToolResult:
    """A ``tool`` message back as the result it carries (``Error: `` marks a failure)."""
    call_id = turn["tool_call_id"]
    parts = _parts(turn.get("content"))
    first = parts[0] if parts else None
    failed = isinstance(first, TextPart) and first.text.startswith(ERROR_PREFIX)
    if failed and isinstance(first, TextPart):
        parts[0] = TextPart(text=first.text.removeprefix(ERROR_PREFIX))
    return ToolResult(
        call_id=call_id,
        name=tool_names.get(call_id, ""),
        content=ToolResultContent(parts=parts) if parts else ToolResultContent.text(""),
        is_error=failed,
    )


def _content(content: object) -> str | list[ContentPart]:
    """A message's content: a string as sent, a list of parts as parts (one text part
    reads as plain text; several stay separate, never glued together)."""
    if not isinstance(content, list):
        return content if isinstance(content, str) else ""
    parts: list[ContentPart] = list(_parts(content))
    if len(parts) == 1 and isinstance(parts[0], TextPart):
        return parts[0].text
    return parts


def _parts(content: object) -> list[TextPart | ImagePart]:
    if isinstance(content, str):
        return [TextPart(text=content)]
    if not isinstance(content, list):
        return []
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
    return parts
