"""What a model asks a tool to do, and what the tool answered.

``ToolCall.arguments`` keeps the JSON text exactly as the model produced it; the typed
accessors parse it and raise ``ToolArgumentError`` naming the key when it is missing,
mistyped, or the JSON is invalid, so tool code never meets a bare ``KeyError``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar, overload

from pydantic import ConfigDict, Field, model_validator

from ._validation import ValidatedModel
from .content import ImagePart, TextPart
from .errors import ToolArgumentError

__all__ = [
    "ToolCall",
    "ToolCallDelta",
    "ToolChoice",
    "ToolResult",
    "ToolResultContent",
]

_T = TypeVar("_T")
_MISSING: Any = object()


class ToolCall(ValidatedModel):
    """A model's request to run tool ``name`` with JSON ``arguments``.

    Examples:
        >>> call = ToolCall(id="call_1", name="read_file", arguments='{"path": "/tmp/x"}')
        >>> call.get_string("path")
        '/tmp/x'
    """

    id: str
    name: str
    arguments: str = "{}"

    @classmethod
    def from_arguments(cls, id: str, name: str, arguments: dict[str, Any]) -> ToolCall:
        """Build a call from already-parsed arguments (serialised to compact JSON)."""
        return cls(id=id, name=name, arguments=json.dumps(arguments, separators=(",", ":")))

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as a new dict. An empty string counts as ``{}`` (no-argument tools).

        Parsed on each call, not cached: arguments are small, and a cache would be state
        that makes equal calls compare unequal.
        """
        text = self.arguments.strip() or "{}"
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ToolArgumentError(
                f"tool call {self.name!r} ({self.id}) has invalid JSON arguments: "
                f"{exc.msg} at position {exc.pos}",
                tool_name=self.name,
            ) from None
        if not isinstance(value, dict):
            raise ToolArgumentError(
                f"tool call {self.name!r} ({self.id}) arguments must be a JSON object, "
                f"got {type(value).__name__}",
                tool_name=self.name,
            )
        return value

    def _get(self, key: str, kind: str, check: Callable[[Any], bool], default: Any) -> Any:
        arguments = self.parsed_arguments()
        if key not in arguments:
            if default is not _MISSING:
                return default
            raise ToolArgumentError(
                f"tool call {self.name!r} is missing required argument {key!r}",
                key=key,
                tool_name=self.name,
            )
        value = arguments[key]
        if not check(value):
            raise ToolArgumentError(
                f"tool call {self.name!r} argument {key!r} must be {kind}, "
                f"got {type(value).__name__}",
                key=key,
                tool_name=self.name,
            )
        return value

    @overload
    def get_string(self, key: str) -> str: ...
    @overload
    def get_string(self, key: str, default: _T) -> str | _T: ...
    def get_string(self, key: str, default: Any = _MISSING) -> Any:
        """The string argument ``key`` (or ``default`` when given and the key is absent)."""
        return self._get(key, "a string", lambda v: isinstance(v, str), default)

    @overload
    def get_int(self, key: str) -> int: ...
    @overload
    def get_int(self, key: str, default: _T) -> int | _T: ...
    def get_int(self, key: str, default: Any = _MISSING) -> Any:
        """The integer argument ``key``; booleans and fractional numbers are refused."""

        def is_int(v: Any) -> bool:
            if isinstance(v, bool):
                return False
            return isinstance(v, int) or (isinstance(v, float) and v.is_integer())

        value = self._get(key, "an integer", is_int, default)
        return int(value) if isinstance(value, float) else value

    @overload
    def get_number(self, key: str) -> float: ...
    @overload
    def get_number(self, key: str, default: _T) -> float | _T: ...
    def get_number(self, key: str, default: Any = _MISSING) -> Any:
        """The numeric argument ``key`` as a float."""
        value = self._get(
            key,
            "a number",
            lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            default,
        )
        return float(value) if isinstance(value, int) else value

    @overload
    def get_bool(self, key: str) -> bool: ...
    @overload
    def get_bool(self, key: str, default: _T) -> bool | _T: ...
    def get_bool(self, key: str, default: Any = _MISSING) -> Any:
        """The boolean argument ``key``."""
        return self._get(key, "a boolean", lambda v: isinstance(v, bool), default)


@dataclass(slots=True, frozen=True)
class ToolCallDelta:
    """A fragment of a streamed tool call.

    Fragments with the same ``index`` belong to one call; ``id`` and ``name`` usually arrive
    only on the first fragment and ``arguments_delta`` pieces concatenate to the JSON text.
    A plain slotted dataclass because one is created per streamed event.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments_delta: str = ""


class ToolResultContent(ValidatedModel):
    """What a tool returned: text and, for providers that accept them, images."""

    parts: list[TextPart | ImagePart] = Field(default_factory=list)

    @classmethod
    def text(cls, text: str) -> ToolResultContent:
        return cls(parts=[TextPart(text=text)])

    def as_text(self) -> str:
        """The text parts joined; images are left out."""
        return "".join(part.text for part in self.parts if isinstance(part, TextPart))


_ToolResultInput = str | ToolResultContent | Sequence[TextPart | ImagePart]


def _to_content(content: _ToolResultInput) -> ToolResultContent:
    if isinstance(content, ToolResultContent):
        return content
    if isinstance(content, str):
        return ToolResultContent.text(content)
    return ToolResultContent(parts=list(content))


class _SuccessAccessor:
    """``ToolResult.success(...)`` builds a result; ``result.success`` reads the flag.

    SPEC names both, so this descriptor acts as a constructor on the class and as the
    (derived) boolean on an instance.
    """

    @overload
    def __get__(
        self, instance: None, owner: type[ToolResult]
    ) -> Callable[[str, str, _ToolResultInput], ToolResult]: ...
    @overload
    def __get__(self, instance: ToolResult, owner: type[ToolResult]) -> bool: ...
    def __get__(self, instance: ToolResult | None, owner: type[ToolResult]) -> Any:
        if instance is None:
            return owner._make_success
        return not instance.is_error


class ToolResult(ValidatedModel):
    """The answer to a ``ToolCall``, sent back to the model in a ``Message.tool_result``.

    Examples:
        >>> result = ToolResult.success("call_1", "read_file", "file contents")
        >>> result.success, result.content.as_text()
        (True, 'file contents')
    """

    model_config = ConfigDict(ignored_types=(_SuccessAccessor,))

    type: Literal["tool_result"] = "tool_result"
    call_id: str
    name: str
    content: ToolResultContent
    is_error: bool = False

    success: ClassVar[_SuccessAccessor] = _SuccessAccessor()

    @classmethod
    def _make_success(cls, call_id: str, name: str, content: _ToolResultInput) -> ToolResult:
        return cls(call_id=call_id, name=name, content=_to_content(content))

    @classmethod
    def error(cls, call_id: str, name: str, message: str) -> ToolResult:
        """A failed tool run; the model sees ``message`` and that it is an error."""
        return cls(call_id=call_id, name=name, content=_to_content(message), is_error=True)


class ToolChoice(ValidatedModel):
    """Whether and which tool the model should call.

    ``ToolChoice.auto()`` (model decides), ``none()`` (no tools), ``required()`` (some tool),
    ``tool("name")`` (that tool).
    """

    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None

    @model_validator(mode="after")
    def _name_iff_tool(self) -> ToolChoice:
        if (self.mode == "tool") != (self.name is not None):
            raise ValueError("name is given exactly when mode is 'tool'")
        return self

    @classmethod
    def auto(cls) -> ToolChoice:
        return cls(mode="auto")

    @classmethod
    def none(cls) -> ToolChoice:
        return cls(mode="none")

    @classmethod
    def required(cls) -> ToolChoice:
        return cls(mode="required")

    @classmethod
    def tool(cls, name: str) -> ToolChoice:
        return cls(mode="tool", name=name)
