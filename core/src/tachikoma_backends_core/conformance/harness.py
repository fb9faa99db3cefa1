"""The harness contract: how a provider plugin lets the conformance suite script it.

A plugin names its harness in its ``BackendPlugin`` (``harness="pkg.module:MyHarness"``).
The suite builds one harness per test and uses it to:

* build a backend wired to a scripted provider (``create_backend``);
* script the provider's next answer: a reply (``script_reply``) or a failure of a given
  kind (``script_failure``), request-level or mid-stream;
* read back what the backend sent, as request-level facts (``sent_requests``).

Contract 3 lets the suite see more, so that realistic bugs show: `SentRequest` carries
the sampling parameters, stop sequences, tool choice, metadata and whole tool
definitions; a `ScriptedReply` says how its bytes are delivered (`Delivery`: a byte per
read, CRLF framing, the connection kept open after the final event); a
`ScriptedFailure` of a request-level kind can come after the first chunk; the provider
can stall (`script_stall`); and the harness says whether the backend's transport was
closed (`transport_closed`).

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
from tachikoma_backends_core.tool_calls import ToolCall, ToolChoice
from tachikoma_backends_core.tools import ToolDefinition, ToolParameters

if TYPE_CHECKING:
    import pytest

__all__ = [
    "EXPECTED_ERRORS",
    "ConformanceHarness",
    "Delivery",
    "ErrorKind",
    "ExpectedError",
    "ScriptedFailure",
    "ScriptedReply",
    "SentRequest",
    "StallPoint",
    "sent_tool_definition",
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
class Delivery:
    """How a scripted answer's bytes reach the backend (contract 3).

    Harnesses without a wire (an in-memory backend) have nothing to deliver and ignore it.

    Attributes:
        read_size: bytes per network read (``1``: a byte at a time, so every event and
            every multibyte character is split across reads); ``None``: as the harness
            pleases.
        line_ending: the line ending of the provider's framing: ``"\\r\\n"`` is as valid
            in SSE and NDJSON as ``"\\n"``, and events must arrive as they come, not when
            the body ends.
        keep_open: the provider keeps the connection open after the answer's final event
            (a proxy that holds it): the call must end at the final event, not wait for
            the body to end.
    """

    read_size: int | None = None
    line_ending: Literal["\n", "\r\n"] = "\n"
    keep_open: bool = False


@dataclass(frozen=True)
class ScriptedReply:
    """The provider's next answer: text and/or tool calls, usage and finish reason.

    ``finish_reason`` ``None`` means the natural one: ``TOOL_CALLS`` when there are tool
    calls, else ``STOP``. Harnesses script the finish reasons in their
    ``finish_reasons`` and the usage fields in their ``usage_fields``. ``delivery`` says
    how the bytes arrive (contract 3).
    """

    text: str = ""
    tool_calls: Sequence[ToolCall] = ()
    usage: Usage = field(default_factory=lambda: Usage(12, 34))
    finish_reason: FinishReason | None = None
    delivery: Delivery = field(default_factory=Delivery)

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

    ``after_first_chunk`` (contract 3, request-level kinds the provider can report in a
    stream: ``RATE_LIMIT``, ``OVERLOADED``, ``SERVER_ERROR``): the stream starts with a
    first chunk, then the provider sends an error event of ``kind`` (Anthropic's
    ``event: error``, an OpenAI ``{"error": ...}`` chunk, an Ollama ``{"error": ...}``
    line). The stream must end with that error, not as if it had finished.
    """

    kind: ErrorKind
    retry_after: float | None = None
    message: str = "scripted failure"
    after_first_chunk: bool = False


class StallPoint(str, Enum):
    """Where a scripted provider stops answering and holds the connection (contract 3)."""

    #: the request was received; no status, no headers, ever
    BEFORE_RESPONSE = "before_response"
    #: the headers and part of the body came (a stream's first chunk, half a plain
    #: body); nothing more, ever
    MID_BODY = "mid_body"
    #: the health check's request gets no answer, from now on
    HEALTH_CHECK = "health_check"


@dataclass(frozen=True)
class SentRequest:
    """What a backend sent, in request-level terms, decoded by the harness.

    ``messages`` includes the system prompt as a leading system message, whatever the
    wire format, and the image parts that were sent; ``tools`` are the names of the tools
    offered. ``json_mode`` says whether the request asked the provider for JSON (``None``:
    the harness cannot tell). The capability traits use these to see that a capability
    was really passed on, not silently dropped.

    Contract 3 fields say what was sent, decoded back into the core's terms; each is
    ``None`` when the harness cannot tell (the wire format has no such field), and empty
    (``{}``, ``()``) when the wire format has it and nothing was sent:

    * ``sampling``: the sampling parameters sent, by the core's names (``temperature``,
      ``top_p``);
    * ``stop``: the stop sequences;
    * ``tool_choice``: what the provider was told about calling tools (the provider's
      default, ``ToolChoice.auto()``, when the field was left out);
    * ``metadata``: the request metadata the provider received (``user_id`` is the
      portable key);
    * ``tool_definitions``: the whole definitions of the tools offered (name,
      description, parameter schema with its ``required`` list).

    A plugin that declares ``tool_calling`` needs a harness that tells ``tool_choice``
    and ``tool_definitions``.
    """

    messages: Sequence[Message]
    tools: Sequence[str] = ()
    max_tokens: int | None = None
    model: str | None = None
    stream: bool = False
    json_mode: bool | None = None
    sampling: Mapping[str, float] | None = None
    stop: Sequence[str] | None = None
    tool_choice: ToolChoice | None = None
    metadata: Mapping[str, str] | None = None
    tool_definitions: Sequence[ToolDefinition] | None = None


def sent_tool_definition(
    name: str, description: str | None, schema: Mapping[str, Any] | None
) -> ToolDefinition:
    """A tool definition as a request carried it (name, description, JSON schema), back
    in the core's terms, for ``SentRequest.tool_definitions``."""
    schema = schema or {}
    parameters = ToolParameters(
        properties=dict(schema.get("properties") or {}),
        required=list(schema.get("required") or []),
        defs=dict(schema.get("$defs") or {}),
    )
    return ToolDefinition(name=name, description=description or "", parameters=parameters)


class ConformanceHarness(abc.ABC):
    """Base class of every plugin's harness. One instance per test.

    Attributes:
        request: the pytest ``FixtureRequest`` of the running test; use `fixture`
            to get fixtures such as ``httpx_mock``.
        supports_live: whether ``--live`` can run this plugin against a real service.
        live_environment: environment variables ``--live`` needs (all must be set).
        over_max_output_tokens: what the backend does with ``max_tokens`` above its
            declared ``max_output_tokens``: ``"reject"`` (``InvalidRequestError`` naming
            ``max_tokens``, nothing sent), ``"clamp"`` (sends the declared maximum), or
            ``"as_asked"`` (the declared limit is a guess, for a model the plugin does not
            know: sent unchanged, or refused naming ``max_tokens``; never changed).
        expected_failures: trait name -> why it is expected to fail for this plugin
            (e.g. ``{"test_parallel_tool_calls": "the API has no parallel calls"}``).
            Each becomes a strict xfail with that reason, shown in the summary and the
            report; an empty reason is refused.
        finish_reasons: the finish reasons the provider can report, so the harness can
            script them (contract 3). Every provider reports ``STOP``, ``TOOL_CALLS``
            and ``LENGTH``; add ``STOP_SEQUENCE`` and ``CONTENT_FILTER`` when its wire
            format tells them apart.
        usage_fields: the `Usage` fields the provider reports, so the harness can script
            them (contract 3): the cache counts where the provider has a prompt cache.
        requires_pytest_plugins: module -> requirement of the pytest plugins the harness
            scripts with (``{"pytest_httpx": "pytest-httpx>=0.34"}``); one missing fails
            the plugin once, at collection, with the install line.
    """

    supports_live: ClassVar[bool] = False
    live_environment: ClassVar[tuple[str, ...]] = ()
    over_max_output_tokens: ClassVar[Literal["reject", "clamp", "as_asked"]] = "reject"
    expected_failures: ClassVar[Mapping[str, str]] = {}
    finish_reasons: ClassVar[frozenset[FinishReason]] = frozenset(
        {FinishReason.STOP, FinishReason.TOOL_CALLS, FinishReason.LENGTH}
    )
    usage_fields: ClassVar[frozenset[str]] = frozenset({"input_tokens", "output_tokens"})
    requires_pytest_plugins: ClassVar[Mapping[str, str]] = {}

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
        """Scripted responses opened and not closed yet (contract 2; plain calls too
        from contract 3).

        HTTP harnesses count the response bodies they handed out whose ``aclose`` has
        not run, streamed or not. ``None`` means the harness cannot tell, which fails the
        traits that check a cancelled or abandoned call releases its connection.
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

    def script_stall(self, point: StallPoint) -> None:
        """Make the provider stop answering at ``point`` and hold the connection (contract 3).

        ``BEFORE_RESPONSE`` and ``MID_BODY`` apply to the next completion request;
        ``HEALTH_CHECK`` to health checks from now on. A stall lasts until the backend's
        own timeout ends the call (HTTP harnesses raise the transport's read timeout when
        the request's timeout passes, as a real connection would) or the call is
        cancelled; it never ends by itself.
        """
        raise NotImplementedError(
            f"{type(self).__name__}.script_stall: contract 3 harnesses script stalls"
        )

    def timeout_config(self, seconds: float) -> dict[str, Any]:
        """The config that gives a backend a timeout of ``seconds`` (contract 3): how long
        it may wait for any part of an answer. The default is the core's ``timeout``
        setting, which every HTTP plugin built on the kit has."""
        return {"timeout": seconds}

    def transport_closed(self) -> bool | None:
        """Whether the backend's transport (its HTTP client) is closed (contract 3).

        The suite asks after ``aclose``: a backend that never closes its client leaks
        its connection pool. ``None``: the harness cannot tell, which fails the trait.
        """
        return None

    def missing_live_environment(self) -> list[str]:
        """The ``live_environment`` variables that are not set."""
        return [name for name in self.live_environment if not os.environ.get(name)]

    def create_live_backend(self) -> Backend:
        """A backend talking to the real service (``--live``); set ``supports_live``."""
        raise ConfigurationError(f"{type(self).__name__} does not support --live")
