"""The mock's conformance harness: the first implementation of the harness contract.

The mock has no wire format, so scripting it means queueing replies and failures on the
backend itself; failures of each kind become the error a well-behaved provider plugin
raises for it, with the HTTP status it would carry.
"""

from __future__ import annotations

from typing import Any

from tachikoma_backends_core import (
    AuthenticationError,
    BackendError,
    BackendTimeoutError,
    ContextLengthExceededError,
    FinishReason,
    InvalidRequestError,
    ModelNotFoundError,
    NetworkError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StreamProtocolError,
    Usage,
)
from tachikoma_backends_core.conformance.harness import (
    ConformanceHarness,
    ErrorKind,
    ScriptedFailure,
    ScriptedReply,
    SentRequest,
    StallPoint,
)
from tachikoma_backends_core.managed import ManagedBackend

from ._backend import MockBackend, MockResponse
from ._plugin import plugin

__all__ = ["MockHarness"]

_REQUEST_ERRORS: dict[ErrorKind, tuple[type[BackendError], int | None]] = {
    ErrorKind.AUTHENTICATION: (AuthenticationError, 401),
    ErrorKind.PERMISSION_DENIED: (PermissionDeniedError, 403),
    ErrorKind.INVALID_REQUEST: (InvalidRequestError, 400),
    ErrorKind.CONTEXT_LENGTH: (ContextLengthExceededError, 400),
    ErrorKind.MODEL_NOT_FOUND: (ModelNotFoundError, 404),
    ErrorKind.OVERLOADED: (OverloadedError, 529),
    ErrorKind.SERVER_ERROR: (ServerError, 500),
    ErrorKind.NETWORK: (NetworkError, None),
    ErrorKind.TIMEOUT: (BackendTimeoutError, None),
}


def _request_error(failure: ScriptedFailure) -> BackendError:
    """The error a well-behaved plugin raises for a request-level ``failure``."""
    if failure.kind is ErrorKind.RATE_LIMIT:
        return RateLimitError(
            failure.message, retry_after=failure.retry_after, provider="mock", status_code=429
        )
    error_type, status = _REQUEST_ERRORS[failure.kind]
    return error_type(failure.message, provider="mock", status_code=status)


class MockHarness(ConformanceHarness):
    """Scripts a `MockBackend` directly. It has no wire: a reply's `Delivery` changes
    nothing, and what it was sent is the request itself."""

    backend: MockBackend | None = None
    finish_reasons = frozenset(FinishReason) - {FinishReason.ERROR}
    usage_fields = frozenset(
        {
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "reasoning_tokens",
        }
    )

    def create_backend(self, **config: Any) -> ManagedBackend[MockBackend]:
        managed: ManagedBackend[MockBackend] = plugin.create(**config)
        self.backend = managed.inner
        return managed

    def _backend(self) -> MockBackend:
        if self.backend is None:
            raise RuntimeError("MockHarness: create_backend() must come before scripting")
        return self.backend

    def script_reply(self, reply: ScriptedReply) -> None:
        self._backend().queue_response(
            MockResponse(
                content=reply.text,
                tool_calls=tuple(reply.tool_calls),
                usage=reply.usage,
                finish_reason=reply.finish_reason,
            )
        )

    def script_failure(self, failure: ScriptedFailure) -> None:
        backend = self._backend()
        if failure.kind is ErrorKind.MALFORMED_STREAM:
            broken = StreamProtocolError("malformed event in the mock's stream", provider="mock")
            backend.queue_response(MockResponse.text("partial").with_stream_failure(broken))
        elif failure.kind is ErrorKind.STREAM_CUT:
            backend.queue_response(MockResponse.text("partial").with_stream_failure(None))
        elif failure.after_first_chunk:
            late = _request_error(failure)
            backend.queue_response(MockResponse.text("partial").with_stream_failure(late))
        else:
            backend.queue_failure(_request_error(failure))

    def sent_requests(self) -> list[SentRequest]:
        return [
            SentRequest(
                messages=call.request.messages,
                tools=[tool.name for tool in call.request.tools],
                max_tokens=call.request.max_tokens,
                model=call.request.model,
                stream=call.streamed,
                json_mode=call.request.json_mode,
                sampling={
                    name: value
                    for name in ("temperature", "top_p")
                    if (value := getattr(call.request, name)) is not None
                },
                stop=call.request.stop,
                tool_choice=call.request.tool_choice,
                metadata=call.request.metadata,
                tool_definitions=call.request.tools,
            )
            for call in self._backend().get_calls()
        ]

    def script_unhealthy(self) -> None:
        self._backend().set_failure(
            ServerError("scripted outage", provider="mock", status_code=503)
        )

    def script_stall(self, point: StallPoint) -> None:
        backend = self._backend()
        if point is StallPoint.HEALTH_CHECK:
            backend.stall_health_checks()
        else:
            never_whole = MockResponse.text("never whole")
            backend.queue_response(
                never_whole.with_stall("before_response")
                if point is StallPoint.BEFORE_RESPONSE
                else never_whole.with_stall("mid_body")
            )

    def transport_closed(self) -> bool:
        return self._backend().closed

    def attempts(self) -> int:
        return self._backend().attempts

    def open_responses(self) -> int:
        return self._backend().open_streams

    def partial_usage(self, reply: ScriptedReply) -> Usage:
        return Usage(reply.usage.input_tokens, 0)
