"""Conversation messages: who said what.

``Message`` content is plain text or a list of parts (text, images, tool results).
Assistant messages may carry the tool calls the model made; tool messages answer one call
and name it with ``tool_call_id``.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Annotated

from pydantic import Field, model_validator

from ._validation import ValidatedModel
from .content import ImagePart, TextPart
from .tool_calls import ToolCall, ToolResult

__all__ = ["ContentPart", "Message", "Role"]


class Role(str, Enum):
    """Who speaks a message."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


ContentPart = Annotated[TextPart | ImagePart | ToolResult, Field(discriminator="type")]


class Message(ValidatedModel):
    """One turn of a conversation.

    Examples:
        >>> Message.user("Hi").text
        'Hi'
    """

    role: Role
    content: str | list[ContentPart] = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _role_rules(self) -> Message:
        if self.tool_calls and self.role is not Role.ASSISTANT:
            raise ValueError(
                f"tool_calls: only assistant messages carry tool calls, not {self.role.value}"
            )
        if self.role is Role.TOOL and not self.tool_call_id:
            raise ValueError("tool_call_id: a tool message names the call it answers")
        return self

    @classmethod
    def system(cls, text: str) -> Message:
        return cls(role=Role.SYSTEM, content=text)

    @classmethod
    def user(cls, content: str | Sequence[TextPart | ImagePart]) -> Message:
        return cls(role=Role.USER, content=content if isinstance(content, str) else list(content))

    @classmethod
    def assistant(cls, text: str = "", tool_calls: Sequence[ToolCall] = ()) -> Message:
        return cls(role=Role.ASSISTANT, content=text, tool_calls=list(tool_calls))

    @classmethod
    def tool_result(cls, result: ToolResult) -> Message:
        """The message that hands a tool's ``result`` back to the model."""
        return cls(role=Role.TOOL, content=[result], tool_call_id=result.call_id)

    @property
    def text(self) -> str:
        """All text in the message, concatenated (tool results included, images not)."""
        if isinstance(self.content, str):
            return self.content
        pieces = []
        for part in self.content:
            if isinstance(part, TextPart):
                pieces.append(part.text)
            elif isinstance(part, ToolResult):
                pieces.append(part.content.as_text())
        return "".join(pieces)
