"""The Messages API seen from the server: build its answers, read the requests it got.

The mirror image of the wire layer, for the conformance harness and for tests: a
`ScriptedReply`'s worth of text and tool calls becomes the ``message`` body or the SSE
event stream Anthropic would send, and a request body the backend sent becomes a
`SentRequest` in the core's terms (the ``system`` field as a leading system message,
``tool_result`` blocks as tool messages).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tachikoma_backends_core.completion import FinishReason, Usage
from tachikoma_backends_core.conformance.harness import SentRequest, sent_tool_definition
from tachikoma_backends_core.content import ImagePart, TextPart
from tachikoma_backends_core.messages import Message
from tachikoma_backends_core.tool_calls import (
    ToolCall,
    ToolChoice,
    ToolResult,
    ToolResultContent,
)

__all__ = [
    "STOP_REASON_FOR",
    "decode_sent_request",
    "error_body",
    "error_event",
    "message_body",
    "message_events",
    "sse_bytes",
]

#: The ``stop_reason`` Anthropic sends for each finish reason it can express.
STOP_REASON_FOR: dict[FinishReason, str] = {
    FinishReason.STOP: "end_turn",
    FinishReason.STOP_SEQUENCE: "stop_sequence",
    FinishReason.LENGTH: "max_tokens",
    FinishReason.TOOL_CALLS: "tool_use",
    FinishReason.CONTENT_FILTER: "refusal",
}

_PIECE = 8  # characters per streamed text delta


def _pieces(text: str, size: int) -> list[str]:
    return [text[start : start + size] for start in range(0, len(text), size)]


def _usage(usage: Usage, *, output_tokens: int | None = None) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "output_tokens": usage.output_tokens if output_tokens is None else output_tokens,
    }


def message_body(
    *,
    model: str,
    text: str = "",
    tool_calls: Sequence[ToolCall] = (),
    stop_reason: str = "end_turn",
    usage: Usage | None = None,
) -> dict[str, Any]:
    """The ``message`` object a non-streamed ``POST /v1/messages`` answers with."""
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content += [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": c.parsed_arguments()}
        for c in tool_calls
    ]
    return {
        "id": "msg_01Tachikoma",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": _usage(usage or Usage()),
    }


def message_events(
    *,
    model: str,
    text: str = "",
    tool_calls: Sequence[ToolCall] = (),
    stop_reason: str = "end_turn",
    usage: Usage | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """The ``(event, data)`` stream of the same answer, as Anthropic sends it."""
    usage = usage or Usage()
    start = message_body(model=model, usage=usage, stop_reason=stop_reason)
    start.update(content=[], stop_reason=None)
    start["usage"] = _usage(usage, output_tokens=min(usage.output_tokens, 1))
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("ping", {"type": "ping"}),
    ]
    index = 0
    if text:
        events.append(_block_start(index, {"type": "text", "text": ""}))
        events += [_delta(index, {"type": "text_delta", "text": p}) for p in _pieces(text, _PIECE)]
        events.append(_block_stop(index))
        index += 1
    for call in tool_calls:
        block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        events.append(_block_start(index, block))
        # A few fragments, cut anywhere, as Claude does; a call without arguments gets
        # one empty fragment, as Claude sends it.
        arguments = "" if call.parsed_arguments() == {} else call.arguments
        size = max(len(arguments) // 3, 1)
        events += [
            _delta(index, {"type": "input_json_delta", "partial_json": p})
            for p in _pieces(arguments, size) or [""]
        ]
        events.append(_block_stop(index))
        index += 1
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": usage.output_tokens},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _block_start(index: int, block: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "content_block_start", {
        "type": "content_block_start",
        "index": index,
        "content_block": block,
    }


def _delta(index: int, delta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}


def _block_stop(index: int) -> tuple[str, dict[str, Any]]:
    return "content_block_stop", {"type": "content_block_stop", "index": index}


def sse_bytes(events: Sequence[tuple[str, dict[str, Any]]]) -> bytes:
    """Events as an SSE body: ``event:`` and ``data:`` lines, a blank line after each."""
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


def error_body(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    """An error answer's body, as https://platform.claude.com/docs/en/api/errors shows it."""
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    }


def error_event(error_type: str, message: str) -> bytes:
    """The ``error`` event Anthropic sends when a request fails after its stream started."""
    data = {"type": "error", "error": {"type": error_type, "message": message}}
    return sse_bytes([("error", data)])


#: ``tool_choice.type`` back to the core's mode (``"any"`` is "required").
_TOOL_CHOICES = {
    "auto": ToolChoice.auto(),
    "any": ToolChoice.required(),
    "none": ToolChoice.none(),
}


def _tool_choice(body: dict[str, Any]) -> ToolChoice:
    choice = body.get("tool_choice") or {"type": "auto"}  # the API's default
    if choice["type"] == "tool":
        return ToolChoice.tool(choice["name"])
    return _TOOL_CHOICES[choice["type"]]


def decode_sent_request(body: dict[str, Any]) -> SentRequest:
    """A request body the backend sent, in the core's terms."""
    messages: list[Message] = []
    system = body.get("system")
    if isinstance(system, list):  # the block form: [{"type": "text", "text": ...}]
        system = "".join(block.get("text", "") for block in system)
    if system:
        messages.append(Message.system(system))
    tool_names: dict[str, str] = {}
    for turn in body.get("messages", []):
        content = turn["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if turn["role"] == "assistant":
            calls = [
                ToolCall(id=b["id"], name=b["name"], arguments=json.dumps(b["input"]))
                for b in blocks
                if b["type"] == "tool_use"
            ]
            tool_names.update((call.id, call.name) for call in calls)
            text = "".join(b["text"] for b in blocks if b["type"] == "text")
            messages.append(Message.assistant(text, tool_calls=calls))
            continue
        parts: list[TextPart | ImagePart] = []
        for block in blocks:
            if block["type"] == "tool_result":
                call_id = block["tool_use_id"]
                result = ToolResult(
                    call_id=call_id,
                    name=tool_names.get(call_id, ""),
                    content=ToolResultContent(parts=_parts(block.get("content", []))),
                    is_error=bool(block.get("is_error", False)),
                )
                messages.append(Message.tool_result(result))
            else:
                parts.extend(_parts([block]))
        if parts:
            # One text block reads as plain text; several stay separate blocks.
            only = parts[0]
            if len(parts) == 1 and isinstance(only, TextPart):
                messages.append(Message.user(only.text))
            else:
                messages.append(Message.user(parts))
    tools = body.get("tools", [])
    return SentRequest(
        messages=messages,
        tools=[tool["name"] for tool in tools],
        max_tokens=body.get("max_tokens"),
        model=body.get("model"),
        stream=bool(body.get("stream", False)),
        json_mode=False,  # the Messages API has no JSON mode to ask for
        sampling={name: body[name] for name in ("temperature", "top_p") if name in body},
        stop=list(body.get("stop_sequences", [])),
        tool_choice=_tool_choice(body),
        metadata=dict(body.get("metadata", {})),
        tool_definitions=[
            sent_tool_definition(t["name"], t.get("description"), t.get("input_schema"))
            for t in tools
        ],
    )


def _parts(blocks: str | list[dict[str, Any]]) -> list[TextPart | ImagePart]:
    if isinstance(blocks, str):
        return [TextPart(text=blocks)]
    parts: list[TextPart | ImagePart] = []
    for block in blocks:
        if block["type"] == "text":
            parts.append(TextPart(text=block["text"]))
        elif block["type"] == "image":
            source = block["source"]
            if source["type"] == "url":
                parts.append(ImagePart.from_url(source["url"]))
            else:
                parts.append(ImagePart.from_base64(source["data"], source["media_type"]))
    return parts
