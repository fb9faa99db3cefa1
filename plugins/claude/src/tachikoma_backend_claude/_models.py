"""The Claude models this plugin knows, with their documented limits.

Numbers from Anthropic's models overview and model pages,
https://platform.claude.com/docs/en/about-claude/models/overview (context window and
maximum output tokens of the synchronous Messages API; the Batch API's larger outputs and
betas such as Sonnet 4.5's 1M-token context header are not counted). Newest first;
retired models are left out. A model missing here still works: the API decides, and
`ClaudeModel.lookup` returns ``None`` so the plugin enforces no limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DEFAULT_MODEL", "ClaudeModel"]

#: The model a backend uses when neither the config nor the request names one.
DEFAULT_MODEL = "claude-sonnet-5-5"

# Snapshot ids end with their release date: "claude-haiku-4-5-20251001".
_DATE_SUFFIX = re.compile(r"-\d{8}$")


@dataclass(frozen=True, slots=True)
class ClaudeModel:
    """A Claude model: its id, dated snapshot, and documented token limits.

    Attributes:
        id: the id to pass as ``model`` (Anthropic's alias, e.g. ``"claude-haiku-4-5"``).
        snapshot: the dated id the alias points to, when Anthropic publishes one.
        display_name: the name Anthropic uses for it.
        context_window: input plus output tokens the model can attend to.
        max_output_tokens: the most ``max_tokens`` a request may ask for.

    Examples:
        >>> model = ClaudeModel.lookup("claude-haiku-4-5-20251001")
        >>> model.id, model.context_window, model.max_output_tokens
        ('claude-haiku-4-5', 200000, 64000)
        >>> ClaudeModel.lookup("claude-from-the-future") is None
        True
    """

    id: str
    snapshot: str | None
    display_name: str
    context_window: int
    max_output_tokens: int

    @classmethod
    def known(cls) -> tuple[ClaudeModel, ...]:
        """Every model in the registry, newest first."""
        return _KNOWN

    @classmethod
    def lookup(cls, name: str) -> ClaudeModel | None:
        """The model ``name`` denotes (an id, a snapshot, or a dated variant of an id)."""
        found = _BY_NAME.get(name)
        if found is None:
            found = _BY_NAME.get(_DATE_SUFFIX.sub("", name))
        return found


_KNOWN: tuple[ClaudeModel, ...] = (
    # The current lineup.
    ClaudeModel("claude-fable-5-2", None, "Claude Fable 5.2", 1_000_000, 128_000),
    ClaudeModel("claude-fable-5-1", None, "Claude Fable 5.1", 1_000_000, 128_000),
    ClaudeModel("claude-opus-5-5", None, "Claude Opus 5.5", 1_000_000, 128_000),
    ClaudeModel("claude-sonnet-5-5", None, "Claude Sonnet 5.5", 1_000_000, 128_000),
    ClaudeModel("claude-haiku-5-5", None, "Claude Haiku 5.5", 1_000_000, 128_000),
    # Legacy models, still served.
    ClaudeModel("claude-opus-5", None, "Claude Opus 5", 1_000_000, 128_000),
    ClaudeModel("claude-sonnet-5", None, "Claude Sonnet 5", 1_000_000, 128_000),
    ClaudeModel("claude-opus-4-8", None, "Claude Opus 4.8", 1_000_000, 128_000),
    ClaudeModel("claude-opus-4-7", None, "Claude Opus 4.7", 1_000_000, 128_000),
    ClaudeModel("claude-opus-4-6", None, "Claude Opus 4.6", 1_000_000, 128_000),
    ClaudeModel("claude-sonnet-4-6", None, "Claude Sonnet 4.6", 1_000_000, 64_000),
    ClaudeModel(
        "claude-haiku-4-5", "claude-haiku-4-5-20251001", "Claude Haiku 4.5", 200_000, 64_000
    ),
    ClaudeModel("claude-opus-4-5", "claude-opus-4-5-20251101", "Claude Opus 4.5", 200_000, 64_000),
    ClaudeModel(
        "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", 200_000, 64_000
    ),
    ClaudeModel("claude-opus-4-1", "claude-opus-4-1-20250805", "Claude Opus 4.1", 200_000, 32_000),
)
_BY_NAME: dict[str, ClaudeModel] = {
    name: model for model in _KNOWN for name in (model.id, model.snapshot) if name is not None
}
