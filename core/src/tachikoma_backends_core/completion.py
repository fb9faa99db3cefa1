"""Requests, responses, streamed chunks and token usage.

Requests are validated once, when built (``InvalidRequestError`` names the field);
``CompletionChunk`` is deliberately *not* validated: one is created per streamed event,
so it is a slotted dataclass that costs about as much as a tuple.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from pydantic import Field, NonNegativeInt, computed_field, field_validator, model_validator

from ._validation import ValidatedModel
from .messages import Message, Role
from .tool_calls import ToolCall, ToolCallDelta, ToolChoice
from .tools import ToolDefinition

__all__ = [
    "CompletionChunk",
    "CompletionRequest",
    "CompletionResponse",
    "FinishReason",
    "ReasoningEffort",
    "ResponseSchema",
    "Usage",
]

#: How hard a reasoning model thinks before it answers, on OpenAI's scale (``"none"``
#: to ``"max"``; each model takes a subset). Providers without the setting refuse it.
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]

# OpenAI's rule for a response format's name, and a fair one for any provider.
_SCHEMA_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class FinishReason(str, Enum):
    """Why the model stopped producing output."""

    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"
    STOP_SEQUENCE = "stop_sequence"
    ERROR = "error"

    @classmethod
    def natural(cls, has_tool_calls: bool) -> FinishReason:
        """Why a model that ended on its own stopped: ``TOOL_CALLS`` if it called tools."""
        return cls.TOOL_CALLS if has_tool_calls else cls.STOP


class Usage(ValidatedModel):
    """Tokens a call consumed, as the provider reported them.

    ``Usage(100, 50)``, ``Usage.new(100, 50)`` and ``Usage(input_tokens=100,
    output_tokens=50)`` are the same.

    The prompt's tokens are split three ways, the same for every provider:
    ``input_tokens`` (read afresh), ``cache_read_input_tokens`` (read from the provider's
    prompt cache) and ``cache_creation_input_tokens`` (written to it); the whole prompt is
    their sum. Cache counts are zero where a provider has no cache. ``reasoning_tokens``
    is the part of ``output_tokens`` a reasoning model spent thinking (zero where the
    provider does not say).
    """

    input_tokens: NonNegativeInt = 0
    output_tokens: NonNegativeInt = 0
    cache_creation_input_tokens: NonNegativeInt = 0
    cache_read_input_tokens: NonNegativeInt = 0
    reasoning_tokens: NonNegativeInt = 0

    def __init__(self, input_tokens: int = 0, output_tokens: int = 0, /, **data: Any) -> None:
        data.setdefault("input_tokens", input_tokens)
        data.setdefault("output_tokens", output_tokens)
        super().__init__(**data)

    @classmethod
    def new(cls, input_tokens: int, output_tokens: int) -> Usage:
        return cls(input_tokens=input_tokens, output_tokens=output_tokens)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_creation_input_tokens=(
                self.cache_creation_input_tokens + other.cache_creation_input_tokens
            ),
            cache_read_input_tokens=self.cache_read_input_tokens + other.cache_read_input_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
        )


class ResponseSchema(ValidatedModel):
    """Structured output: the answer must be JSON matching ``json_schema``.

    Attributes:
        name: what the schema is called (1-64 letters, digits, ``_`` or ``-``).
        json_schema: the JSON Schema of the answer, as a dict.
        strict: whether the provider must follow the schema exactly (OpenAI's strict
            mode, which accepts a subset of JSON Schema) rather than as guidance.
    """

    name: str = "response"
    json_schema: dict[str, Any]
    strict: bool = True

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        if not _SCHEMA_NAME.fullmatch(name):
            raise ValueError(f"must be 1-64 ASCII letters, digits, '_' or '-', got {name!r}")
        return name


class CompletionRequest(ValidatedModel):
    """What to ask a backend. Immutable: the ``with_*`` builders return new requests.

    Examples:
        >>> request = CompletionRequest(messages=[Message.user("Hi")]).with_max_tokens(100)
        >>> request.max_tokens
        100
    """

    messages: list[Message] = Field(min_length=1)
    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    stop: list[str] = Field(default_factory=list)
    tools: list[ToolDefinition] = Field(default_factory=list)
    tool_choice: ToolChoice = Field(default_factory=ToolChoice.auto)
    json_mode: bool = False
    metadata: dict[str, str] = Field(default_factory=dict)
    response_schema: ResponseSchema | None = None
    seed: int | None = None
    reasoning_effort: ReasoningEffort | None = None
    parallel_tool_calls: bool | None = None

    @model_validator(mode="after")
    def _tools_consistent(self) -> CompletionRequest:
        names = [tool.name for tool in self.tools]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"tools: duplicate tool names {duplicates}")
        choice = self.tool_choice
        if choice.mode == "tool" and choice.name not in names:
            raise ValueError(f"tool_choice: names tool {choice.name!r}, which is not in tools")
        if choice.mode == "required" and not names:
            raise ValueError("tool_choice: 'required' needs at least one tool")
        return self

    def _with(self, **changes: Any) -> CompletionRequest:
        # Re-validate through the constructor: model_copy(update=...) would skip validation.
        return CompletionRequest(**{**dict(self), **changes})

    def with_max_tokens(self, max_tokens: int) -> CompletionRequest:
        return self._with(max_tokens=max_tokens)

    def with_temperature(self, temperature: float) -> CompletionRequest:
        return self._with(temperature=temperature)

    def with_top_p(self, top_p: float) -> CompletionRequest:
        return self._with(top_p=top_p)

    def with_model(self, model: str) -> CompletionRequest:
        return self._with(model=model)

    def with_tools(
        self, tools: Sequence[ToolDefinition], tool_choice: ToolChoice | None = None
    ) -> CompletionRequest:
        return self._with(tools=list(tools), tool_choice=tool_choice or self.tool_choice)

    def with_tool_choice(self, tool_choice: ToolChoice) -> CompletionRequest:
        return self._with(tool_choice=tool_choice)

    def with_stop(self, stop: Sequence[str]) -> CompletionRequest:
        return self._with(stop=list(stop))

    def with_json_mode(self, json_mode: bool = True) -> CompletionRequest:
        return self._with(json_mode=json_mode)

    def with_response_schema(
        self, schema: dict[str, Any], *, name: str = "response", strict: bool = True
    ) -> CompletionRequest:
        """Ask for JSON matching ``schema`` (structured output); see `ResponseSchema`."""
        schema_format = ResponseSchema(name=name, json_schema=schema, strict=strict)
        return self._with(response_schema=schema_format)

    def with_seed(self, seed: int) -> CompletionRequest:
        """Sample deterministically where the provider can (best effort, as it says)."""
        return self._with(seed=seed)

    def with_reasoning_effort(self, effort: ReasoningEffort) -> CompletionRequest:
        return self._with(reasoning_effort=effort)

    def with_parallel_tool_calls(self, parallel: bool) -> CompletionRequest:
        """Whether the model may call several tools in one turn (``None``: provider default)."""
        return self._with(parallel_tool_calls=parallel)

    def with_system(self, text: str) -> CompletionRequest:
        """Replace any system messages by one with ``text``, placed first."""
        rest = [m for m in self.messages if m.role is not Role.SYSTEM]
        return self._with(messages=[Message.system(text), *rest])

    @property
    def system_prompt(self) -> str | None:
        """The system messages' text joined by blank lines, or ``None`` when there is none."""
        texts = [m.text for m in self.messages if m.role is Role.SYSTEM]
        return "\n\n".join(texts) if texts else None


class CompletionResponse(ValidatedModel):
    """A finished completion: text and/or tool calls, why it stopped, and what it cost.

    ``content`` is the text; it is ``None`` exactly when the model answered with tool calls
    and no text, and ``""`` for an empty answer without tool calls. Normalised here, so a
    streamed-and-collected response equals the same response completed in one call,
    whichever backend produced it. ``refusal`` is the model's explanation when it declined
    to answer (OpenAI's ``refusal``), ``None`` otherwise. ``thinking`` is the reasoning a
    thinking model showed before its answer (Claude's thinking blocks, Ollama's
    ``thinking``, ``reasoning_content`` from OpenAI-compatible servers), ``None`` if none.
    """

    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: FinishReason
    usage: Usage = Field(default_factory=Usage)
    model: str
    refusal: str | None = None
    thinking: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _canonical_content(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("content"):
            return {**data, "content": None if data.get("tool_calls") else ""}
        return data

    @property
    def text(self) -> str:
        """``content`` or ``""``."""
        return self.content or ""


@dataclass(slots=True)
class CompletionChunk:
    """One piece of a streamed completion.

    Most chunks carry a text ``delta``; tool calls arrive as ``tool_call_deltas``; a
    refusal's text arrives as ``refusal``, a thinking model's reasoning as ``thinking``;
    the last chunk carries ``finish_reason`` and ``usage``. Not validated (hot path).
    """

    delta: str = ""
    tool_call_deltas: Sequence[ToolCallDelta] = ()
    usage: Usage | None = None
    finish_reason: FinishReason | None = None
    refusal: str = ""
    thinking: str = ""

    @classmethod
    def text(cls, delta: str) -> CompletionChunk:
        return cls(delta=delta)

    @classmethod
    def final_chunk(cls, usage: Usage, finish_reason: FinishReason) -> CompletionChunk:
        return cls(usage=usage, finish_reason=finish_reason)

    @property
    def is_final(self) -> bool:
        return self.finish_reason is not None
