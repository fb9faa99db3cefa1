"""Ollama's native API seen from the server: build its answers, read its requests.

The mirror image of the wire layer, for the conformance harness, tests and fake servers:
a reply becomes the ``/api/chat`` answer or its NDJSON lines (text in pieces, tool calls
on a line of their own, the ``done`` line with the counts), an error after the stream
started becomes its ``{"error": ...}`` line, a pull becomes its progress lines, and a
request body the backend sent becomes a `SentRequest`.
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
    "DONE_REASON_FOR",
    "chat_answer",
    "chat_lines",
    "decode_sent_request",
    "error_line",
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


def error_line(message: str) -> bytes:
    """The line Ollama writes when a request fails after its stream started.

    Only the message: ``streamResponse`` (server/routes.go) sends the status of an error
    only while nothing was written, so after the first line there is no status to tell
    an overload from a crash, and the message is all a client has.
    """
    return ndjson_bytes([{"error": message}])


#: How base64 image data starts, by media type: Ollama's ``images`` are bare base64 with
#: no media type, so the harness reads it off the bytes, as Ollama does.
_MAGIC: dict[str, str] = {
    "/9j/": "image/jpeg",
    "iVBORw0KGgo": "image/png",
    "R0lGOD": "image/gif",
    "UklGR": "image/webp",
}


def _media_type(data: str) -> str:
    return next((kind for magic, kind in _MAGIC.items() if data.startswith(magic)), "image/png")


def decode_sent_request(body: dict[str, Any]) -> SentRequest:
    """A request body the backend sent, in the core's terms.

    Each wire message is one `Message`: its ``content`` is one string, so several user
    turns stay several messages. ``options`` holds the sampling parameters
    (``temperature``, ``top_p``), the stop sequences and ``num_predict``. Ollama has no
    ``tool_choice``: tools sent are ``auto()`` (the model decides), none sent is
    ``none()``. It takes no request metadata either (``None``: no such field).
    """
    messages: list[Message] = []
    for turn in body.get("messages", []):
        role, content = turn["role"], turn.get("content", "")
        images = [ImagePart.from_base64(d, _media_type(d)) for d in turn.get("images") or ()]
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
    options = body.get("options") or {}
    functions = [tool["function"] for tool in body.get("tools") or ()]
    return SentRequest(
        messages=messages,
        tools=[function["name"] for function in functions],
        max_tokens=options.get("num_predict"),
        model=body.get("model"),
        stream=bool(body.get("stream", True)),
        json_mode=format_ is not None,
        sampling={name: options[name] for name in ("temperature", "top_p") if name in options},
        stop=list(options.get("stop") or ()),
        tool_choice=ToolChoice.auto() if functions else ToolChoice.none(),
        metadata=None,
        tool_definitions=[
            sent_tool_definition(f["name"], f.get("description"), f.get("parameters"))
            for f in functions
        ],
    )
