"""Encode a `CompletionRequest` as a Chat Completions request body.

The body of ``POST /chat/completions`` (https://platform.openai.com/docs/api-reference/chat):

* system messages: a ``system`` message each, in place (``developer`` for reasoning
  models, which take instructions under that role);
* user text and images: a string, or ``text`` and ``image_url`` parts (base64 images
  as ``data:`` URLs);
* assistant turns: ``content`` (``null`` beside tool calls) and ``tool_calls``, each
  ``{"id", "type": "function", "function": {"name", "arguments"}}``;
* tool results: a ``tool`` message each, answering its call by ``tool_call_id`` (a
  failed run's text starts ``Error: ``: there is no error flag);
* ``tools``: ``{"type": "function", "function": {name, description, parameters}}``,
  with ``strict`` when the tool asks for it; ``tool_choice``: ``"auto"``, ``"none"``,
  ``"required"`` or ``{"type": "function", "function": {"name"}}``;
* ``max_tokens``: as ``max_completion_tokens`` for reasoning models (which refuse
  ``max_tokens``) and for unknown ids at OpenAI itself, else as ``max_tokens`` (what
  older models and most OpenAI-compatible servers know);
* ``json_mode`` / ``response_schema``: ``response_format`` ``json_object`` /
  ``json_schema``; ``stop``, ``temperature``, ``top_p``, ``seed``,
  ``parallel_tool_calls``, ``reasoning_effort`` as named; ``metadata["user_id"]`` as
  ``user`` (other metadata stays on our side);
* streaming: ``stream: true`` and ``stream_options.include_usage`` (unless turned off).

Refused before anything is sent, with the field named: more than 4 stop sequences,
``max_tokens`` above a known model's output limit, an effort the model does not take (or
any effort for a model that does not reason), tools with an effort on a model that calls
tools only without one, and images inside a tool result (tool messages take text only).
"""

from __future__ import annotations

from typing import Any

from tachikoma_backend_openai._models import OpenAIModel
from tachikoma_backends_core.completion import CompletionRequest
from tachikoma_backends_core.content import ImagePart, TextPart
from tachikoma_backends_core.errors import InvalidRequestError
from tachikoma_backends_core.messages import Message, Role
from tachikoma_backends_core.tool_calls import ToolChoice, ToolResult
from tachikoma_backends_core.tools import ToolDefinition

from . import PROVIDER

__all__ = ["ERROR_PREFIX", "encode_messages", "encode_request"]

_MAX_STOP_SEQUENCES = 4
#: How a failed tool run's text starts (Chat Completions has no error flag for one).
ERROR_PREFIX = "Error: "


def encode_request(
    request: CompletionRequest,
    *,
    model: str,
    known: OpenAIModel | None,
    stream: bool,
    stream_usage: bool = True,
    reasoning_by_default: bool = False,
) -> dict[str, Any]:
    """The JSON body of ``POST /chat/completions`` for ``request``.

    Args:
        model: the ``model`` to send (on Azure's classic API: ignored by the service).
        known: what the registry knows of ``model`` (``None``: nothing).
        stream: ask for a stream (with its usage, when ``stream_usage``).
        reasoning_by_default: treat an unknown model as a reasoning model (talking to
            OpenAI itself, whose new models reason); off for other servers.

    Examples:
        >>> from tachikoma_backends_core import CompletionRequest, Message
        >>> request = CompletionRequest(messages=[Message.system("Be brief."), Message.user("Hi")])
        >>> body = encode_request(request, model="gpt-4o", known=None, stream=False)
        >>> body["messages"]
        [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'Hi'}]
    """
    reasoning = known.reasoning if known is not None else reasoning_by_default
    body: dict[str, Any] = {
        "model": model,
        "messages": encode_messages(request.messages, system_role=_system_role(reasoning)),
    }
    if request.max_tokens is not None:
        _check_max_tokens(request.max_tokens, known)
        body["max_completion_tokens" if reasoning else "max_tokens"] = request.max_tokens
    if request.tools:
        body["tools"] = [_tool(tool) for tool in request.tools]
        body["tool_choice"] = _tool_choice(request.tool_choice)
        if request.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = request.parallel_tool_calls
    effort = _reasoning_effort(request, known)
    if effort is not None:
        body["reasoning_effort"] = effort
    if request.stop:
        if len(request.stop) > _MAX_STOP_SEQUENCES:
            raise InvalidRequestError(
                f"OpenAI takes at most {_MAX_STOP_SEQUENCES} stop sequences, got "
                f"{len(request.stop)}",
                field="stop",
                provider=PROVIDER,
            )
        body["stop"] = list(request.stop)
    for name in ("temperature", "top_p", "seed"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    response_format = _response_format(request)
    if response_format is not None:
        body["response_format"] = response_format
    user = request.metadata.get("user_id")
    if user:
        body["user"] = user
    if stream:
        body["stream"] = True
        if stream_usage:
            body["stream_options"] = {"include_usage": True}
    return body


def encode_messages(messages: list[Message], *, system_role: str = "system") -> list[Any]:
    """The ``messages`` array; each tool result is a ``tool`` message answering its call."""
    encoded: list[Any] = []
    for index, message in enumerate(messages):
        role = message.role
        if role is Role.SYSTEM:
            encoded.append({"role": system_role, "content": message.text})
            continue
        if role is Role.ASSISTANT:
            encoded.append(_assistant(message))
            continue
        content = message.content
        parts: list[TextPart | ImagePart | ToolResult] = (
            [TextPart(text=content)] if isinstance(content, str) else list(content)
        )
        results = [part for part in parts if isinstance(part, ToolResult)]
        rest = [part for part in parts if not isinstance(part, ToolResult)]
        encoded.extend(_tool_message(result, index) for result in results)
        if role is Role.TOOL and not results:  # a tool message built by hand: its text
            encoded.append(
                {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text}
            )
        elif (role is Role.USER and (rest or not results)) or any(
            _has_content(part)
            for part in rest  # words beside a tool's results
        ):
            encoded.append({"role": "user", "content": _user_content(rest)})
    return encoded


def _has_content(part: TextPart | ImagePart) -> bool:
    return isinstance(part, ImagePart) or bool(part.text)


def _system_role(reasoning: bool) -> str:
    # Reasoning models take instructions as "developer" messages (and convert "system").
    return "developer" if reasoning else "system"


def _user_content(parts: list[TextPart | ImagePart]) -> str | list[dict[str, Any]]:
    if all(isinstance(part, TextPart) for part in parts):
        return "".join(part.text for part in parts if isinstance(part, TextPart))
    encoded: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextPart):
            encoded.append({"type": "text", "text": part.text})
        else:
            encoded.append({"type": "image_url", "image_url": {"url": _image_url(part)}})
    return encoded


def _image_url(image: ImagePart) -> str:
    if image.url is not None:
        return image.url
    return f"data:{image.media_type};base64,{image.data}"


def _assistant(message: Message) -> dict[str, Any]:
    text = message.text
    encoded: dict[str, Any] = {"role": "assistant", "content": text or None}
    if message.tool_calls:
        encoded["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments or "{}"},
            }
            for call in message.tool_calls
        ]
    elif not text:
        encoded["content"] = ""
    return encoded


def _tool_message(result: ToolResult, index: int) -> dict[str, Any]:
    if any(isinstance(part, ImagePart) for part in result.content.parts):
        raise InvalidRequestError(
            "OpenAI's tool messages take text only: send the image in a user message",
            field=f"messages[{index}].content",
            provider=PROVIDER,
        )
    text = result.content.as_text()
    # There is no error flag: a failed run says so in its text, as the model must see.
    content = f"{ERROR_PREFIX}{text}" if result.is_error else text
    return {"role": "tool", "tool_call_id": result.call_id, "content": content}


def _tool(tool: ToolDefinition) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description:
        function["description"] = tool.description
    function["parameters"] = tool.parameters.to_json_schema()
    if tool.strict:
        function["strict"] = True
    return {"type": "function", "function": function}


def _tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    if choice.mode == "tool":
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode  # "auto", "none", "required": OpenAI's words too


def _response_format(request: CompletionRequest) -> dict[str, Any] | None:
    schema = request.response_schema
    if schema is not None:
        return {
            "type": "json_schema",
            "json_schema": {
                "name": schema.name,
                "schema": schema.json_schema,
                "strict": schema.strict,
            },
        }
    return {"type": "json_object"} if request.json_mode else None


def _check_max_tokens(max_tokens: int, known: OpenAIModel | None) -> None:
    if known is not None and max_tokens > known.max_output_tokens:
        raise InvalidRequestError(
            f"max_tokens={max_tokens} is above {known.id}'s limit of "
            f"{known.max_output_tokens} output tokens; ask for at most {known.max_output_tokens}",
            field="max_tokens",
            provider=PROVIDER,
        )


def _reasoning_effort(request: CompletionRequest, known: OpenAIModel | None) -> str | None:
    """The effort to send: the request's, checked against the model; ``"none"`` for tools
    on a model that calls tools only without effort."""
    effort = request.reasoning_effort
    if known is None:
        return effort  # an unknown model: the server decides
    if effort is not None and effort not in known.efforts:
        takes = ", ".join(sorted(known.efforts)) if known.efforts else "no reasoning_effort"
        raise InvalidRequestError(
            f"{known.id} does not take reasoning_effort={effort!r}; it takes {takes}",
            field="reasoning_effort",
            provider=PROVIDER,
        )
    if not (request.tools and known.tools_need_no_effort):
        return effort
    if "none" not in known.efforts:
        raise InvalidRequestError(
            f"{known.id} cannot call function tools on Chat Completions (it has no "
            "reasoning_effort 'none', which tools need there); choose another model",
            field="tools",
            provider=PROVIDER,
        )
    if effort not in (None, "none"):
        raise InvalidRequestError(
            f"{known.id} calls function tools on Chat Completions only with "
            f"reasoning_effort 'none', not {effort!r}",
            field="reasoning_effort",
            provider=PROVIDER,
        )
    return "none"
