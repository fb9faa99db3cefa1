"""The harness contract: how a provider plugin lets the conformance suite script it.

A plugin names its harness in its ``BackendPlugin`` (``harness="pkg.module:MyHarness"``).
The suite builds one harness per test and uses it to:

* build a backend wired to a scripted provider (``create_backend``);
* script the provider's next answer: a reply (``script_reply``) or a failure of a given
  kind (``script_failure``), request-level or mid-stream;
* read back what the backend sent, as request-level facts (``sent_requests``).

HTTP plugins implement it at the wire level (pytest-httpx's ``httpx_mock`` fixture, fetched
with ``self.fixture("httpx_mock")``), so the real request encoding and response parsing are
what the suite tests. ``--live`` runs the same traits against the real service:
``create_live_backend`` reads credentials from ``live_environment`` and the traits that need
scripting are skipped.

Examples:
    A harness for an in-memory backend (the mock's, abridged):

    ```python
    class MockHarness(ConformanceHarness):
        def create_backend(self, **config):
            self.backend = MockBackend(**config)
            return self.backend

        def script_reply(self, reply):
            self.backend.queue_response(MockResponse(content=reply.text, ...))
        ...
    ```
"""

from __future__ import annotations

import abc
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from tachikoma_backends_core.backend import Backend
from tachikoma_backends_core.completion import FinishReason, Usage
from tachikoma_backends_core.errors import (
    AuthenticationError,
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
    ContextLengthExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    NetworkError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StreamProtocolError,
)
from tachikoma_backends_core.messages import Message
from tachikoma_backends_core.tool_calls import ToolCall

if TYPE_CHECKING:
    import pytest

__all__ = [
    "EXPECTED_ERRORS",
    "ConformanceHarness",
    "ErrorKind",
    "ExpectedError",
    "ScriptedFailure",
    "ScriptedReply",
    "SentRequest",
]


class ErrorKind(str, Enum):
    """Every failure a harness must be able to script."""

    RATE_LIMIT = "rate_limit"
    AUTHENTICATION = "authentication"
    PERMISSION_DENIED = "permission_denied"
    INVALID_REQUEST = "invalid_request"
    CONTEXT_LENGTH = "context_length"
    MODEL_NOT_FOUND = "model_not_found"
    OVERLOADED = "overloaded"
    SERVER_ERROR = "server_error"
    NETWORK = "network"
    TIMEOUT = "timeout"
    MALFORMED_STREAM = "malformed_stream"
    STREAM_CUT = "stream_cut"

    @property
    def mid_stream(self) -> bool:
        """Whether this failure happens after a stream started (vs. on the request)."""
        return self in (ErrorKind.MALFORMED_STREAM, ErrorKind.STREAM_CUT)


@dataclass(frozen=True)
class ExpectedError:
    """What the backend must raise for a scripted failure."""

    error_type: type[BackendError]
    retryable: bool


EXPECTED_ERRORS: dict[ErrorKind, ExpectedError] = {
    ErrorKind.RATE_LIMIT: ExpectedError(RateLimitError, retryable=True),
    ErrorKind.AUTHENTICATION: ExpectedError(AuthenticationError, retryable=False),
    ErrorKind.PERMISSION_DENIED: ExpectedError(PermissionDeniedError, retryable=False),
    ErrorKind.INVALID_REQUEST: ExpectedError(InvalidRequestError, retryable=False),
    ErrorKind.CONTEXT_LENGTH: ExpectedError(ContextLengthExceededError, retryable=False),
    ErrorKind.MODEL_NOT_FOUND: ExpectedError(ModelNotFoundError, retryable=False),
    ErrorKind.OVERLOADED: ExpectedError(OverloadedError, retryable=True),
    ErrorKind.SERVER_ERROR: ExpectedError(ServerError, retryable=True),
    ErrorKind.NETWORK: ExpectedError(NetworkError, retryable=True),
    ErrorKind.TIMEOUT: ExpectedError(BackendTimeoutError, retryable=True),
    ErrorKind.MALFORMED_STREAM: ExpectedError(StreamProtocolError, retryable=False),
    ErrorKind.STREAM_CUT: ExpectedError(StreamProtocolError, retryable=False),
}


@dataclass(frozen=True)
class ScriptedReply:
    """The provider's next answer: text and/or tool calls, usage and finish reason.

    ``finish_reason`` ``None`` means the natural one: ``TOOL_CALLS`` when there are tool
    calls, else ``STOP``.
    """

    text: str = ""
    tool_calls: Sequence[ToolCall] = ()
    usage: Usage = field(default_factory=lambda: Usage(12, 34))
    finish_reason: FinishReason | None = None

    @property
    def effective_finish_reason(self) -> FinishReason:
        return self.finish_reason or FinishReason.natural(bool(self.tool_calls))


@dataclass(frozen=True)
class ScriptedFailure:
    """The provider's next answer is a failure of ``kind``.

    Request-level kinds fail the request (HTTP status and error body, or a transport
    error); ``MALFORMED_STREAM`` sends a first chunk then garbage; ``STREAM_CUT`` sends a
    first chunk then ends the stream before it finished. ``retry_after`` (seconds) goes
    with ``RATE_LIMIT`` (e.g. as a ``retry-after`` header).
    """

    kind: ErrorKind
    retry_after: float | None = None
    message: str = "scripted failure"


@dataclass(frozen=True)
class SentRequest:
    """What a backend sent, in request-level terms, decoded by the harness.

    ``messages`` includes the system prompt as a leading system message, whatever the
    wire format, and the image parts that were sent; ``tools`` are the names of the tools
    offered. ``json_mode`` says whether the request asked the provider for JSON (``None``:
    the harness cannot tell). The capability traits use these to see that a capability
    was really passed on, not silently dropped.
    """

    messages: Sequence[Message]
    tools: Sequence[str] = ()
    max_tokens: int | None = None
    model: str | None = None
    stream: bool = False
    json_mode: bool | None = None


class ConformanceHarness(abc.ABC):
    """Base class of every plugin's harness. One instance per test.

    Attributes:
        request: the pytest ``FixtureRequest`` of the running test; use `fixture`
            to get fixtures such as ``httpx_mock``.
        supports_live: whether ``--live`` can run this plugin against a real service.
        live_environment: environment variables ``--live`` needs (all must be set).
        over_max_output_tokens: what the backend does with ``max_tokens`` above its
            declared ``max_output_tokens``: ``"reject"`` (``InvalidRequestError`` naming
            ``max_tokens``, nothing sent) or ``"clamp"`` (sends the declared maximum).
        expected_failures: trait name -> why it is expected to fail for this plugin
            (e.g. ``{"test_parallel_tool_calls": "the API has no parallel calls"}``).
            Each becomes a strict xfail with that reason, shown in the summary and the
            report; an empty reason is refused.
    """

    supports_live: ClassVar[bool] = False
    live_environment: ClassVar[tuple[str, ...]] = ()
    over_max_output_tokens: ClassVar[Literal["reject", "clamp"]] = "reject"
    expected_failures: ClassVar[Mapping[str, str]] = {}

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.request = request

    def fixture(self, name: str) -> Any:
        """A pytest fixture's value, e.g. ``self.fixture("httpx_mock")``."""
        return self.request.getfixturevalue(name)

    @abc.abstractmethod
    def create_backend(self, **config: Any) -> Backend:
        """A backend wired to the scripted provider (no network). ``config`` overrides."""

    @abc.abstractmethod
    def script_reply(self, reply: ScriptedReply) -> None:
        """Make the provider answer the next request with ``reply`` (streamed or not)."""

    @abc.abstractmethod
    def script_failure(self, failure: ScriptedFailure) -> None:
        """Make the provider answer the next request with ``failure``."""

    @abc.abstractmethod
    def sent_requests(self) -> list[SentRequest]:
        """Every request the backend sent so far, oldest first."""

    @abc.abstractmethod
    def script_unhealthy(self) -> None:
        """Make the provider fail health checks from now on."""

    def attempts(self) -> int:
        """Requests that reached the scripted provider, failed ones included.

        The suite calls a backend with retries disabled and checks this is one per call:
        retrying is the core's job (one loop, sized by ``max_retries``), never the
        plugin's. The default counts `sent_requests`, which must then include failures.
        """
        return len(self.sent_requests())

    def open_responses(self) -> int | None:
        """Scripted streamed responses opened and not closed yet (contract 2).

        HTTP harnesses count the response bodies they handed out whose ``aclose`` has
        not run. ``None`` means the harness cannot tell, which fails the contract 2
        trait that checks a cancelled stream releases its connection.
        """
        return None

    def partial_usage(self, reply: ScriptedReply) -> Usage | None:
        """The usage the provider reports for ``reply`` before its final usage.

        For example Anthropic sends the input tokens in ``message_start``, before any
        text: ``Usage(reply.usage.input_tokens, 0)``. ``None`` (the default) for
        providers that report usage only at the end. A stream cancelled after its
        first chunk must report exactly this as ``stream.usage``.
        """
        return None

    def missing_live_environment(self) -> list[str]:
        """The ``live_environment`` variables that are not set."""
        return [name for name in self.live_environment if not os.environ.get(name)]

    def create_live_backend(self) -> Backend:
        """A backend talking to the real service (``--live``); set ``supports_live``."""
        raise ConfigurationError(f"{type(self).__name__} does not support --live")
