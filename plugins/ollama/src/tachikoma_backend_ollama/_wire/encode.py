"""Encode a `CompletionRequest` as an Ollama ``POST /api/chat`` body.

* messages keep their roles (``system``, ``user``, ``assistant``, ``tool``); images go
  in a message's ``images`` as plain base64 (Ollama takes no URLs: a ``data:`` URL is
  unpacked, any other URL is refused);
* an assistant's tool calls are ``{"id", "function": {"name", "arguments": {...}}}``, the
  arguments an object (our JSON text, parsed); a tool result is a ``tool`` message with
  ``tool_name`` and ``tool_call_id``;
* ``tools`` are functions; ``tool_choice`` ``"none"`` sends none; ``"required"`` or a
  named tool, and ``parallel_tool_calls=False``, are refused (Ollama cannot be told);
* ``json_mode`` is ``format: "json"``, ``response_schema`` is ``format: <the schema>``;
* ``temperature``, ``top_p``, ``seed``, ``stop`` and ``max_tokens`` (``num_predict``)
  go in ``options``, over the config's ``num_ctx`` and ``options``;
* ``reasoning_effort`` is ``think``: ``"none"`` turns thinking off, ``"low"`` to ``"max"``
  pass as they are, ``"minimal"`` is ``"low"`` and ``"xhigh"`` is ``"high"``; without one,
  the config's ``think``, else nothing (the model's default);
* ``stream`` is always sent (Ollama streams unless told not to), with ``keep_alive`` when
  configured.
"""

from __future__ import annotations

import binascii
import json
from typing import Any

from tachikoma_backends_core.completion import CompletionRequest
from tachikoma_backends_core.content import ImagePart, TextPart
from tachikoma_backends_core.errors import InvalidRequestError, ToolArgumentError
from tachikoma_backends_core.messages import Message, Role
from tachikoma_backends_core.tool_calls import ToolResult

from . import PROVIDER

__all__ = ["ERROR_PREFIX", "encode_chat"]

#: How a failed tool run's text starts (the native API has no error flag for one).
ERROR_PREFIX = "Error: "

_EFFORT_TO_THINK: dict[str, bool | str] = {
    "none": False,
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
    "max": "max",
}


def encode_chat(
    request: CompletionRequest,
    *,
    model: str,
    stream: bool,
    options: dict[str, Any] | None = None,
    think: bool | str | None = None,
    keep_alive: float | str | None = None,
) -> dict[str, Any]:
    """The JSON body of ``POST /api/chat`` for ``request``.

    Args:
        model: the model to ask.
        stream: NDJSON streaming, or one answer.
        options: the config's model options (``num_ctx`` and the rest); the request's
            own settings win.
        think: the config's ``think``, used when the request sets no reasoning effort.
        keep_alive: how long the model stays loaded.

    Examples:
        >>> from tachikoma_backends_core import CompletionRequest, Message
        >>> request = CompletionRequest(messages=[Message.user("Hi")], temperature=0.2)
        >>> body = encode_chat(request, model="llama3.2", stream=False)
        >>> body["messages"], body["stream"], body["options"]
        ([{'role': 'user', 'content': 'Hi'}], False, {'temperature': 0.2})
    """
    body: dict[str, Any] = {
        "model": model,
        "messages": _all_messages(request.messages),
        "stream": stream,
    }
    tools = _tools(request)
    if tools:
        body["tools"] = tools
    merged = {**(options or {}), **_options(request)}
    if merged:
        body["options"] = merged
    if request.response_schema is not None:
        body["format"] = request.response_schema.json_schema
    elif request.json_mode:
        body["format"] = "json"
    effort = request.reasoning_effort
    chosen = _EFFORT_TO_THINK[effort] if effort is not None else think
    if chosen is not None:
        body["think"] = chosen
    if keep_alive is not None:
        body["keep_alive"] = keep_alive
    return body


def _options(request: CompletionRequest) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for ours, theirs in (
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("seed", "seed"),
        ("max_tokens", "num_predict"),
    ):
        value = getattr(request, ours)
        if value is not None:
            options[theirs] = value
    if request.stop:
        options["stop"] = list(request.stop)
    return options


def _tools(request: CompletionRequest) -> list[dict[str, Any]]:
    if not request.tools or request.tool_choice.mode == "none":
        return []
    if request.tool_choice.mode != "auto":
        raise InvalidRequestError(
            "Ollama cannot be told to call a tool: only tool_choice auto() or none() work",
            field="tool_choice",
            provider=PROVIDER,
        )
    if request.parallel_tool_calls is False:
        raise InvalidRequestError(
            "Ollama cannot be told to call one tool at a time: leave parallel_tool_calls unset",
            field="parallel_tool_calls",
            provider=PROVIDER,
        )
    encoded = []
    for tool in request.tools:
        function: dict[str, Any] = {"name": tool.name}
        if tool.description:
            function["description"] = tool.description
        function["parameters"] = tool.parameters.to_json_schema()
        encoded.append({"type": "function", "function": function})
    return encoded


def _all_messages(messages: list[Message]) -> list[dict[str, Any]]:
    encoded: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # call id -> tool name, for hand-built tool messages
    for index, message in enumerate(messages):
        names.update((call.id, call.name) for call in message.tool_calls)
        for entry in _messages(message, index):
            if entry["role"] == "tool" and not entry.get("tool_name"):
                name = names.get(entry.get("tool_call_id") or "")
                if name:
                    entry["tool_name"] = name
            encoded.append(entry)
    return encoded


def _messages(message: Message, index: int) -> list[dict[str, Any]]:
    """The message, after a ``tool`` message for each tool result it holds."""
    content = message.content
    parts = [TextPart(text=content)] if isinstance(content, str) else list(content)
    results = [part for part in parts if isinstance(part, ToolResult)]
    rest = [part for part in parts if not isinstance(part, ToolResult)]
    encoded = [_tool_message(result, index) for result in results]
    if message.role is Role.TOOL and not results:  # a tool message built by hand: its text
        encoded.append(
            {"role": "tool", "content": _text(rest), "tool_call_id": message.tool_call_id}
        )
        return encoded
    says = any(isinstance(p, ImagePart) or (isinstance(p, TextPart) and p.text) for p in rest)
    if results and not says:
        return encoded
    role = "user" if message.role is Role.TOOL else message.role.value  # words beside results
    entry: dict[str, Any] = {"role": role, "content": _text(rest)}
    images = [_base64(part, index) for part in rest if isinstance(part, ImagePart)]
    if images:
        entry["images"] = images
    if message.tool_calls:
        entry["tool_calls"] = [
            {
                "id": call.id,
                "function": {
                    "name": call.name,
                    "arguments": _arguments(call.arguments, call.name, index, position),
                },
            }
            for position, call in enumerate(message.tool_calls)
        ]
    encoded.append(entry)
    return encoded


def _text(parts: list[Any]) -> str:
    return "".join(part.text for part in parts if isinstance(part, TextPart))


def _tool_message(result: ToolResult, index: int) -> dict[str, Any]:
    text = result.content.as_text()
    entry: dict[str, Any] = {
        "role": "tool",
        # There is no error flag: a failed run says so in its text, as the model must see.
        "content": f"{ERROR_PREFIX}{text}" if result.is_error else text,
        "tool_name": result.name,
        "tool_call_id": result.call_id,
    }
    images = [_base64(part, index) for part in result.content.parts if isinstance(part, ImagePart)]
    if images:
        entry["images"] = images
    return entry


def _base64(image: ImagePart, index: int) -> str:
    """The image as Ollama takes it: plain base64, no ``data:`` prefix, no URL."""
    if image.data is not None:
        return image.data
    url = image.url or ""
    _, separator, data = url.partition(";base64,")
    if url.startswith("data:") and separator:
        try:
            binascii.a2b_base64(data)
        except binascii.Error:
            pass
        else:
            return data
    raise InvalidRequestError(
        "Ollama takes images as base64 data, not URLs: load the image and pass "
        "ImagePart.from_bytes(...) or ImagePart.from_base64(...)",
        field=f"messages[{index}].content",
        provider=PROVIDER,
    )


def _arguments(arguments: str, name: str, index: int, position: int) -> Any:
    """A tool call's JSON text as the object Ollama wants."""
    field = f"messages[{index}].tool_calls[{position}].arguments"
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        raise ToolArgumentError(
            f"tool call {name!r}: its arguments are not JSON", key=field, tool_name=name,
            provider=PROVIDER,
        ) from None  # fmt: skip
    if not isinstance(value, dict):
        raise ToolArgumentError(
            f"tool call {name!r}: Ollama takes arguments as a JSON object", key=field,
            tool_name=name, provider=PROVIDER,
        )  # fmt: skip
    return value
