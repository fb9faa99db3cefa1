"""The contract every provider implements, and what a backend says about itself.

Applications program against `Backend` only; which provider sits behind it is a
matter of configuration. The contract is small on purpose: ``info``, ``complete``,
``complete_stream``, ``health_check`` and ``aclose``; since contract 4, ``check_health``
says why a backend is unhealthy (with a default, so older backends still fit).
"""

from __future__ import annotations

import abc
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from pydantic import Field, PositiveInt

from ._validation import ValidatedModel

if TYPE_CHECKING:
    from .completion import CompletionRequest, CompletionResponse
    from .health import HealthReport
    from .streaming import CompletionStream

__all__ = ["Backend", "BackendCapabilities", "BackendInfo"]

_B = TypeVar("_B", bound="Backend")


class BackendCapabilities(ValidatedModel):
    """What a backend (for its default model) can do. The conformance suite checks it."""

    streaming: bool = True
    tool_calling: bool = False
    vision: bool = False
    json_mode: bool = False
    max_context_tokens: PositiveInt
    max_output_tokens: PositiveInt


class BackendInfo(ValidatedModel):
    """A backend's name, version, models and capabilities."""

    name: str
    version: str
    default_model: str
    available_models: list[str] = Field(default_factory=list)
    capabilities: BackendCapabilities


class Backend(abc.ABC):
    """An LLM provider behind one async interface.

    Implementations raise only ``BackendError`` subclasses from every method but
    ``health_check``, which answers ``False`` for provider trouble instead of raising.
    Backends are async context managers; leaving the block calls `aclose`.

    Examples:
        >>> async def ask(backend: Backend) -> str:
        ...     async with backend:
        ...         request = CompletionRequest(messages=[Message.user("Hi")])
        ...         return (await backend.complete(request)).text
    """

    @property
    @abc.abstractmethod
    def info(self) -> BackendInfo:
        """Name, version, models and capabilities; cheap, no I/O."""

    @abc.abstractmethod
    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        """Run ``request`` to completion and return the whole response."""

    @abc.abstractmethod
    async def complete_stream(self, request: CompletionRequest) -> CompletionStream:
        """Start ``request`` and return its stream of chunks.

        Request-level failures (authentication, rate limit, invalid request) raise here,
        before any chunk; failures after the stream started raise from its iteration.
        """

    @abc.abstractmethod
    async def health_check(self) -> bool:
        """``True`` when the provider answers; ``False`` (never an exception) otherwise."""

    async def check_health(self) -> HealthReport:
        """`health_check` with its reason: the typed error the probe met, when unhealthy.

        Never raises for provider trouble (cancellation propagates). This default wraps
        `health_check` and so knows no reason; a backend at contract 4 overrides it (the
        HTTP kit's ``HttpConnection.health`` returns one) and answers ``health_check``
        from it, so that the two always agree.
        """
        from .health import HealthReport

        return HealthReport.from_bool(await self.health_check())

    async def aclose(self) -> None:  # noqa: B027 - a no-op default is the point
        """Release connections and other resources. Safe to call more than once."""

    async def __aenter__(self: _B) -> _B:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        # Deliberately built from ``info`` only: configuration (and its secrets) stays out.
        info = self.info
        return f"<{type(self).__name__} name={info.name!r} model={info.default_model!r}>"
