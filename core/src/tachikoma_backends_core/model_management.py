"""Managing the models a backend serves: list them, pull one with progress.

Only some providers let a client manage models (a local server such as Ollama does;
OpenAI does not). A backend that can implements `ModelManager`; the ``tachikoma models``
and ``tachikoma pull`` commands work with any backend that does, and say so plainly for
one that does not.

Examples:
    >>> progress = PullProgress("pulling 8eeb52dfb3bb", digest="sha256:8eeb", completed=512,
    ...                         total=2048)
    >>> progress.fraction, progress.done
    (0.25, False)
    >>> PullProgress("success").done
    True
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["ModelManager", "ModelSummary", "PullProgress"]


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """A model a backend has, as its listing describes it.

    Attributes:
        name: the name to pass as ``model`` (``"llama3.2:latest"``).
        size: bytes on disk, when the provider says.
        digest: the provider's content digest, when it gives one.
        modified_at: when it was last changed (the provider's timestamp text).
        details: whatever else the provider tells (family, parameter size, quantisation).
    """

    name: str
    size: int | None = None
    digest: str | None = None
    modified_at: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PullProgress:
    """One step of pulling a model: a status, and for a download its bytes so far.

    Attributes:
        status: what is happening (``"pulling manifest"``, ``"pulling 8eeb52dfb3bb"``,
            ``"verifying sha256 digest"``, ``"success"``).
        digest: the layer being downloaded, if any.
        completed: bytes of that layer downloaded so far.
        total: the layer's size in bytes.
    """

    status: str
    digest: str | None = None
    completed: int | None = None
    total: int | None = None

    @property
    def fraction(self) -> float | None:
        """How much of the layer is down (0 to 1), when the sizes are known."""
        if not self.total or self.completed is None:
            return None
        return min(self.completed / self.total, 1.0)

    @property
    def done(self) -> bool:
        """The pull finished (Ollama's last status is ``"success"``)."""
        return self.status == "success"


@runtime_checkable
class ModelManager(Protocol):
    """What a backend that manages its models offers (checked at run time)."""

    async def list_models(self) -> list[ModelSummary]:
        """The models the backend has now."""
        ...

    def pull_model(self, name: str) -> AsyncIterator[PullProgress]:
        """Fetch model ``name``, yielding progress until it is there (or raising why not)."""
        ...

    async def delete_model(self, name: str) -> None:
        """Remove model ``name``; `ModelNotFoundError` if there is none."""
        ...
