"""Ollama's native API seen from the server: build its answers, read its requests.

The mirror image of the wire layer, for the conformance harness, tests and fake servers:
a reply becomes the ``/api/chat`` answer or its NDJSON lines (text in pieces, tool calls
on a line of their own, the ``done`` line with the counts), a pull becomes its progress
lines, and a request body the backend sent becomes a `SentRequest`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tachikoma_backends_core.completion import FinishReason, Usage
from tachikoma_backends_core.conformance.harness import SentRequest
from tachikoma_backends_core.content import ImagePart, TextPart
from tachikoma_backends_core.messages import Message
from tachikoma_backends_core.tool_calls import ToolCall, ToolResult, ToolResultContent

__all__ = [
    "DONE_REASON_FOR",
    "chat_answer",
    "chat_lines",
    "decode_sent_request",
    "ndjson_bytes",
    "pull_lines",
]

#: The ``done_reason`` Ollama sends for each finish reason it can express.
DONE_REASON_FOR: dict[FinishReason, str] = {
    FinishReason.STOP: "stop",
    FinishReason.TOOL_CALLS: "stop",
    FinishReason.LENGTH: "length",
}

_PIECE = 8
_CREATED = "2026-11-29T12:00:00.000000000Z"


def _calls(tool_calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    return [
        {
            "id": call.id,
            "function": {"index": index, "name": call.name, "arguments": call.parsed_arguments()},
        }
        for index, call in enumerate(tool_calls)
    ]


def _done(model: str, done_reason: str, usage: Usage) -> dict[str, Any]:
    return {
        "model": model,
        "created_at": _CREATED,
        "done": True,
        "done_reason": done_reason,
        "total_duration": 4_883_583_458,
        "load_duration": 1_334_875,
        "prompt_eval_count": usage.input_tokens,
        "prompt_eval_duration": 342_546_000,
        "eval_count": usage.output_tokens,
        "eval_duration": 4_535_599_000,
    }


def chat_answer(
    *,
    model: str,
    text: str = "",
    tool_calls: Sequence[ToolCall] = (),
    done_reason: str = "stop",
    usage: Usage | None = None,
    thinking: str = "",
) -> dict[str, Any]:
    """The whole answer of ``POST /api/chat`` with ``"stream": false``."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if thinking:
        message["thinking"] = thinking
    if tool_calls:
        message["tool_calls"] = _calls(tool_calls)
    return {**_done(model, done_reason, usage or Usage()), "message": message}


def chat_lines(
    *,
    model: str,
    text: str = "",
    tool_calls: Sequence[ToolCall] = (),
    done_reason: str = "stop",
    usage: Usage | None = None,
    thinking: str = "",
    calls_on_done_line: bool = False,
) -> list[dict[str, Any]]:
    """The NDJSON lines of the same answer, streamed.

    Thinking, then text, in pieces; the tool calls on a line of their own before the
    ``done`` line (as models Ollama renders send them), or on the ``done`` line itself
    with ``calls_on_done_line`` (as its llama-server path does).
    """

    def line(**message: Any) -> dict[str, Any]:
        return {
            "model": model,
            "created_at": _CREATED,
            "message": {"role": "assistant", "content": "", **message},
            "done": False,
        }

    lines = [line(content="", thinking=p) for p in _pieces(thinking)]
    lines += [line(content=piece) for piece in _pieces(text)]
    if tool_calls and not calls_on_done_line:
        lines.append(line(tool_calls=_calls(tool_calls)))
    final: dict[str, Any] = {"role": "assistant", "content": ""}
    if tool_calls and calls_on_done_line:
        final["tool_calls"] = _calls(tool_calls)
    lines.append({**_done(model, done_reason, usage or Usage()), "message": final})
    return lines


def _pieces(text: str) -> list[str]:
    return [text[start : start + _PIECE] for start in range(0, len(text), _PIECE)]


def pull_lines(digest: str = "sha256:" + "8e" * 32, size: int = 2_019_393_189) -> list[Any]:
    """The progress lines of a successful ``POST /api/pull``."""
    short = digest.removeprefix("sha256:")[:12]
    steps: list[dict[str, Any]] = [{"status": "pulling manifest"}]
    for completed in (0, size // 4, size // 2, size):
        steps.append(
            {"status": f"pulling {short}", "digest": digest, "total": size, "completed": completed}
        )
    steps += [
        {"status": "verifying sha256 digest"},
        {"status": "writing manifest"},
        {"status": "success"},
    ]
    return steps


def ndjson_bytes(lines: Sequence[Any]) -> bytes:
    """Lines as an NDJSON body, each JSON value followed by a newline."""
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def decode_sent_request(body: dict[str, Any]) -> SentRequest:
    """A request body the backend sent, in the core's terms."""
    messages: list[Message] = []
    for turn in body.get("messages", []):
        role, content = turn["role"], turn.get("content", "")
        images = [ImagePart.from_base64(data, "image/png") for data in turn.get("images") or ()]
        if role == "system":
            messages.append(Message.system(content))
        elif role == "assistant":
            calls = [
                ToolCall.from_arguments(call.get("id", ""), call["function"]["name"],
                                        call["function"].get("arguments") or {})
                for call in turn.get("tool_calls") or ()
            ]  # fmt: skip
            messages.append(Message.assistant(content, tool_calls=calls))
        elif role == "tool":
            parts: list[TextPart | ImagePart] = [TextPart(text=content), *images]
            result = ToolResult(
                call_id=turn.get("tool_call_id", ""),
                name=turn.get("tool_name", ""),
                content=ToolResultContent(parts=parts),
            )
            messages.append(Message.tool_result(result))
        else:
            messages.append(Message.user([TextPart(text=content), *images] if images else content))
    format_ = body.get("format")
    return SentRequest(
        messages=messages,
        tools=[tool["function"]["name"] for tool in body.get("tools", [])],
        max_tokens=(body.get("options") or {}).get("num_predict"),
        model=body.get("model"),
        stream=bool(body.get("stream", True)),
        json_mode=format_ is not None,
    )
