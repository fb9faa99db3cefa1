"""Encode a `CompletionRequest` as a Messages API request body.

The Messages API (https://platform.claude.com/docs/en/api/messages) differs from the
core's conversation model in ways this module absorbs:

* the system prompt is a top-level ``system`` field, not a message (several system
  messages are joined with blank lines, wherever they stood);
* there are only ``user`` and ``assistant`` turns, and they must alternate: tool results
  are ``tool_result`` blocks of a user turn, and consecutive turns of one role merge
  into one, with its ``tool_result`` blocks first, as the API requires after a
  ``tool_use``;
* tool calls are ``tool_use`` blocks whose ``input`` is a JSON object, not JSON text;
* ``max_tokens`` is required, so the configured default fills in for requests without.

What the API cannot do is refused here, before anything is sent, with the field named:
``json_mode`` and ``response_schema`` (the Messages API has no JSON mode), ``seed``,
``reasoning_effort`` (Claude's extended thinking takes a token budget, not an effort),
``temperature`` above 1.0, and ``max_tokens`` above the model's documented output limit.
``parallel_tool_calls=False`` becomes ``disable_parallel_tool_use``; a tool's ``strict``
is not sent (the API has no such flag).
"""

from __future__ import annotations

from typing import Any

from tachikoma_backends_core.completion import CompletionRequest
from tachikoma_backends_core.content import ImagePart, TextPart
from tachikoma_backends_core.errors import InvalidRequestError, ToolArgumentError
from tachikoma_backends_core.messages import Message, Role
from tachikoma_backends_core.tool_calls import ToolChoice, ToolResult
from tachikoma_backends_core.tools import ToolDefinition

from . import PROVIDER

__all__ = ["encode_messages", "encode_request", "resolve_max_tokens"]

_MAX_TEMPERATURE = 1.0
_TOOL_CHOICE_TYPES = {"auto": "auto", "required": "any", "none": "none", "tool": "tool"}


def resolve_max_tokens(
    request: CompletionRequest, default: int, max_output_tokens: int | None
) -> int:
    """The ``max_tokens`` to send: the request's, else ``default`` capped at the limit.

    A request asking for more than ``max_output_tokens`` (the model's documented limit,
    ``None`` when the model is not in the registry) is refused, naming ``max_tokens``.
    """
    if request.max_tokens is None:
        return default if max_output_tokens is None else min(default, max_output_tokens)
    if max_output_tokens is not None and request.max_tokens > max_output_tokens:
        raise InvalidRequestError(
            f"max_tokens={request.max_tokens} is above the model's limit of "
            f"{max_output_tokens} output tokens; ask for at most {max_output_tokens}",
            field="max_tokens",
            provider=PROVIDER,
        )
    return request.max_tokens


def encode_request(
    request: CompletionRequest,
    *,
    model: str,
    max_tokens: int,
    stream: bool,
) -> dict[str, Any]:
    """The JSON body of ``POST /v1/messages`` for ``request``.

    Examples:
        >>> from tachikoma_backends_core import CompletionRequest, Message
        >>> request = CompletionRequest(messages=[Message.system("Be brief."), Message.user("Hi")])
        >>> body = encode_request(request, model="claude-sonnet-4-5", max_tokens=64, stream=False)
        >>> body["system"], body["messages"]
        ('Be brief.', [{'role': 'user', 'content': [{'type': 'text', 'text': 'Hi'}]}])
    """
    _refuse_what_claude_cannot_do(request)
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": max_tokens,
        "messages": encode_messages(request.messages),
    }
    system = request.system_prompt
    if system is not None:
        body["system"] = system
    if request.tools:
        body["tools"] = [_tool(tool) for tool in request.tools]
        body["tool_choice"] = _tool_choice(request.tool_choice)
        if request.parallel_tool_calls is False and request.tool_choice.mode != "none":
            body["tool_choice"]["disable_parallel_tool_use"] = True
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.temperature is not None:
        if request.temperature > _MAX_TEMPERATURE:
            raise InvalidRequestError(
                f"temperature={request.temperature} is above Claude's maximum of 1.0",
                field="temperature",
                provider=PROVIDER,
            )
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    user_id = request.metadata.get("user_id")
    if user_id:
        # The only metadata the API accepts; other keys stay on our side.
        body["metadata"] = {"user_id": user_id}
    if stream:
        body["stream"] = True
    return body


def _refuse_what_claude_cannot_do(request: CompletionRequest) -> None:
    for field, asked, why in (
        ("json_mode", request.json_mode, "the Messages API has no JSON mode"),
        ("response_schema", request.response_schema, "the Messages API has no JSON mode"),
        ("seed", request.seed is not None, "the Messages API has no seed"),
        (
            "reasoning_effort",
            request.reasoning_effort is not None,
            "Claude's extended thinking takes a token budget, not an effort",
        ),
    ):
        if asked:
            advice = (
                "; ask for JSON in the prompt, or offer a tool whose input schema is the "
                "JSON you want"
                if field in ("json_mode", "response_schema")
                else ""
            )
            raise InvalidRequestError(f"{why}{advice}", field=field, provider=PROVIDER)


def encode_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """The ``messages`` array: alternating user/assistant turns of content blocks."""
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        if message.role is Role.SYSTEM:
            continue
        role = "assistant" if message.role is Role.ASSISTANT else "user"
        blocks = _blocks(message, index)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        content = turn["content"]
        if turn["role"] == "user" and any(b["type"] == "tool_result" for b in content):
            # Tool results must open the user turn that answers a tool_use.
            turn["content"] = [b for b in content if b["type"] == "tool_result"] + [
                b for b in content if b["type"] != "tool_result"
            ]
    return turns


def _blocks(message: Message, index: int) -> list[dict[str, Any]]:
    parts: list[TextPart | ImagePart | ToolResult]
    if isinstance(message.content, str):
        parts = [TextPart(text=message.content)] if message.content else []
    else:
        parts = list(message.content)
    has_results = any(isinstance(part, ToolResult) for part in parts)
    if message.role is Role.TOOL and not has_results:
        # A tool message given as plain content answers the call it names.
        plain = [p for p in parts if not isinstance(p, ToolResult)]
        return [_tool_result(message.tool_call_id or "", plain, is_error=False, index=index)]
    blocks: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, ToolResult):
            blocks.append(
                _tool_result(part.call_id, part.content.parts, is_error=part.is_error, index=index)
            )
        else:
            block = _content_block(part, index)
            if block is not None:
                blocks.append(block)
    for number, call in enumerate(message.tool_calls):
        try:
            arguments = call.parsed_arguments()
        except ToolArgumentError as exc:
            raise InvalidRequestError(
                exc.message,
                field=f"messages[{index}].tool_calls[{number}].arguments",
                provider=PROVIDER,
            ) from exc
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments})
    return blocks


def _content_block(part: TextPart | ImagePart, index: int) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        # The API refuses empty text blocks; an empty string adds nothing anyway.
        return {"type": "text", "text": part.text} if part.text else None
    return {"type": "image", "source": _image_source(part, index)}


def _image_source(image: ImagePart, index: int) -> dict[str, Any]:
    if image.data is not None:
        return {"type": "base64", "media_type": image.media_type, "data": image.data}
    url = image.url or ""
    if not url.startswith("data:"):
        return {"type": "url", "url": url}
    # A data: URL carries its bytes inline; the API wants those as a base64 source.
    header, _, data = url[len("data:") :].partition(",")
    media_type, _, encoding = header.partition(";")
    if encoding != "base64" or not media_type or not data:
        raise InvalidRequestError(
            "image data: URLs must look like data:<media type>;base64,<data>",
            field=f"messages[{index}].content",
            provider=PROVIDER,
        )
    return {"type": "base64", "media_type": media_type, "data": data}


def _tool_result(
    call_id: str, parts: list[TextPart | ImagePart], *, is_error: bool, index: int
) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
    content = [b for b in (_content_block(part, index) for part in parts) if b is not None]
    if content:
        block["content"] = content
    if is_error:
        block["is_error"] = True
    return block


def _tool(tool: ToolDefinition) -> dict[str, Any]:
    encoded: dict[str, Any] = {"name": tool.name}
    if tool.description:
        encoded["description"] = tool.description
    encoded["input_schema"] = tool.parameters.to_json_schema()
    return encoded


def _tool_choice(choice: ToolChoice) -> dict[str, Any]:
    encoded: dict[str, Any] = {"type": _TOOL_CHOICE_TYPES[choice.mode]}
    if choice.mode == "tool":
        encoded["name"] = choice.name
    return encoded
