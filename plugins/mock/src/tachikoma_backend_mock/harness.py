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


class MockHarness(ConformanceHarness):
    """Scripts a `MockBackend` directly."""

    backend: MockBackend | None = None

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
        if failure.kind is ErrorKind.RATE_LIMIT:
            backend.queue_failure(
                RateLimitError(
                    failure.message,
                    retry_after=failure.retry_after,
                    provider="mock",
                    status_code=429,
                )
            )
        elif failure.kind is ErrorKind.MALFORMED_STREAM:
            broken = StreamProtocolError("malformed event in the mock's stream", provider="mock")
            backend.queue_response(MockResponse.text("partial").with_stream_failure(broken))
        elif failure.kind is ErrorKind.STREAM_CUT:
            backend.queue_response(MockResponse.text("partial").with_stream_failure(None))
        else:
            error_type, status = _REQUEST_ERRORS[failure.kind]
            backend.queue_failure(error_type(failure.message, provider="mock", status_code=status))

    def sent_requests(self) -> list[SentRequest]:
        return [
            SentRequest(
                messages=call.request.messages,
                tools=[tool.name for tool in call.request.tools],
                max_tokens=call.request.max_tokens,
                model=call.request.model,
                stream=call.streamed,
                json_mode=call.request.json_mode,
            )
            for call in self._backend().get_calls()
        ]

    def script_unhealthy(self) -> None:
        self._backend().set_failure(
            ServerError("scripted outage", provider="mock", status_code=503)
        )

    def attempts(self) -> int:
        return self._backend().attempts

    def open_responses(self) -> int:
        return self._backend().open_streams

    def partial_usage(self, reply: ScriptedReply) -> Usage:
        return Usage(reply.usage.input_tokens, 0)
