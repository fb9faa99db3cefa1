"""Claude's conformance harness: scripts the Messages API at the HTTP level (pytest-httpx).

Every answer is a real Anthropic-shaped HTTP response (a ``message`` body, an SSE
stream, or a status with an error body and headers), so the suite exercises the
plugin's real encoding, parsing and error mapping; only the network is missing.
Everything is registered with ``is_optional=True``: some traits script a reply the
backend must never ask for, and pytest-httpx would otherwise fail them at teardown.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import httpx

from tachikoma_backends_core.backend import Backend
from tachikoma_backends_core.completion import FinishReason, Usage
from tachikoma_backends_core.conformance.harness import (
    ConformanceHarness,
    ErrorKind,
    ScriptedFailure,
    ScriptedReply,
    SentRequest,
)

from ._plugin import plugin
from ._scripting import (
    STOP_REASON_FOR,
    decode_sent_request,
    error_body,
    message_body,
    message_events,
    sse_bytes,
)

if TYPE_CHECKING:
    import pytest
    from pytest_httpx import HTTPXMock

__all__ = ["ClaudeHarness"]

BASE_URL = "http://claude.test"
MESSAGES_URL = f"{BASE_URL}/v1/messages"
MODELS_URL = re.compile(rf"^{re.escape(BASE_URL)}/v1/models(\?.*)?$")
TEST_KEY = "test-key"
REQUEST_ID = "req_011CTachikomaConformance"
SSE_HEADERS = {"content-type": "text/event-stream", "request-id": REQUEST_ID}

# What Anthropic answers for each request-level failure: status and error type
# (https://platform.claude.com/docs/en/api/errors).
_ERROR_ANSWERS: dict[ErrorKind, tuple[int, str]] = {
    ErrorKind.RATE_LIMIT: (429, "rate_limit_error"),
    ErrorKind.AUTHENTICATION: (401, "authentication_error"),
    ErrorKind.PERMISSION_DENIED: (403, "permission_error"),
    ErrorKind.INVALID_REQUEST: (400, "invalid_request_error"),
    ErrorKind.CONTEXT_LENGTH: (400, "invalid_request_error"),
    ErrorKind.MODEL_NOT_FOUND: (404, "not_found_error"),
    ErrorKind.OVERLOADED: (529, "overloaded_error"),
    ErrorKind.SERVER_ERROR: (500, "api_error"),
}


def _stop_reason(reason: FinishReason) -> str:
    if reason not in STOP_REASON_FOR:
        raise ValueError(f"the Messages API has no stop_reason for FinishReason.{reason.name}")
    return STOP_REASON_FOR[reason]


def _first_events(model: str) -> list[tuple[str, dict[str, Any]]]:
    """The opening of a streamed answer: message_start, a text block, one delta."""
    return message_events(model=model, text="partial")[:4]  # start, ping, block, delta


class ClaudeHarness(ConformanceHarness):
    """Scripts ``POST /v1/messages`` and ``GET /v1/models`` with pytest-httpx.

    Backends are built through the plugin (``plugin.create``) with a test key, the base
    URL ``http://claude.test`` and ``max_retries=0`` (a trait may pass another), so each
    scripted failure reaches the trait as the one attempt it was.

    Examples:
        ```console
        $ pytest --plugin=claude -q              # offline, scripted
        $ ANTHROPIC_API_KEY=sk-ant-... pytest --plugin=claude --live -rs
        ```
    """

    supports_live = True
    live_environment = ("ANTHROPIC_API_KEY",)
    over_max_output_tokens = "reject"

    def __init__(self, request: pytest.FixtureRequest) -> None:
        super().__init__(request)
        self.healthy = True
        self.streamed: list[httpx.Response] = []  # every SSE response handed out

    @property
    def httpx_mock(self) -> HTTPXMock:
        # Fetched on first use only: under --live nothing may intercept the network.
        mock: HTTPXMock = self.fixture("httpx_mock")
        return mock

    def create_backend(self, **config: Any) -> Backend:
        self.httpx_mock.add_callback(
            self._models, method="GET", url=MODELS_URL, is_optional=True, is_reusable=True
        )
        settings = {"api_key": TEST_KEY, "base_url": BASE_URL, "max_retries": 0, **config}
        return plugin.create(**settings)

    def create_live_backend(self) -> Backend:
        # ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL) from the environment, as users do;
        # a cheap model keeps live runs cheap.
        return plugin.create(model="claude-haiku-5-5")

    def script_reply(self, reply: ScriptedReply) -> None:
        stop_reason = _stop_reason(reply.effective_finish_reason)

        def respond(request: httpx.Request) -> httpx.Response:
            body = json.loads(request.content)
            answer: dict[str, Any] = {
                "model": body["model"],
                "text": reply.text,
                "tool_calls": reply.tool_calls,
                "stop_reason": stop_reason,
                "usage": reply.usage,
            }
            if body.get("stream"):
                return self._sse_response(sse_bytes(message_events(**answer)))
            return httpx.Response(
                200, headers={"request-id": REQUEST_ID}, json=message_body(**answer)
            )

        # One reply, plain or streamed: the request's "stream" field decides.
        self.httpx_mock.add_callback(respond, method="POST", url=MESSAGES_URL, is_optional=True)

    def script_failure(self, failure: ScriptedFailure) -> None:
        match: dict[str, Any] = {"method": "POST", "url": MESSAGES_URL, "is_optional": True}
        kind = failure.kind
        if kind is ErrorKind.NETWORK:
            self.httpx_mock.add_exception(httpx.ConnectError(failure.message), **match)
        elif kind is ErrorKind.TIMEOUT:
            self.httpx_mock.add_exception(httpx.ReadTimeout(failure.message), **match)
        elif kind.mid_stream:
            self.httpx_mock.add_callback(self._broken_stream(kind), **match)
        else:
            self.httpx_mock.add_callback(self._error_answer(failure), **match)

    def sent_requests(self) -> list[SentRequest]:
        # Every attempt the mock received, failed ones included: retries are visible.
        requests = self.httpx_mock.get_requests(method="POST", url=MESSAGES_URL)
        return [decode_sent_request(json.loads(request.content)) for request in requests]

    def script_unhealthy(self) -> None:
        self.healthy = False

    def open_responses(self) -> int:
        # pytest-httpx hands the backend these very objects; aclose() marks them closed.
        return sum(not response.is_closed for response in self.streamed)

    def partial_usage(self, reply: ScriptedReply) -> Usage:
        # What message_start reports, before any text: the input side and a first token.
        return Usage(
            reply.usage.input_tokens,
            min(reply.usage.output_tokens, 1),
            cache_creation_input_tokens=reply.usage.cache_creation_input_tokens,
            cache_read_input_tokens=reply.usage.cache_read_input_tokens,
        )

    def _sse_response(self, body: bytes) -> httpx.Response:
        response = httpx.Response(200, headers=SSE_HEADERS, content=body)
        self.streamed.append(response)
        return response

    def _models(self, request: httpx.Request) -> httpx.Response:
        if self.healthy:
            model = {
                "type": "model",
                "id": "claude-sonnet-5-5",
                "display_name": "Claude Sonnet 5.5",
            }
            return httpx.Response(200, json={"data": [model], "has_more": False})
        body = error_body("overloaded_error", "Overloaded", REQUEST_ID)
        return httpx.Response(529, json=body)

    def _broken_stream(self, kind: ErrorKind) -> Any:
        def respond(request: httpx.Request) -> httpx.Response:
            opening = sse_bytes(_first_events(json.loads(request.content)["model"]))
            if kind is ErrorKind.MALFORMED_STREAM:
                garbage = b"event: content_block_delta\ndata: <html>502 Bad Gateway</html>\n\n"
                return self._sse_response(opening + garbage)
            return self._sse_response(opening)  # ends without message_stop

        return respond

    @staticmethod
    def _error_answer(failure: ScriptedFailure) -> Any:
        status, error_type = _ERROR_ANSWERS[failure.kind]

        def respond(request: httpx.Request) -> httpx.Response:
            message = failure.message
            if failure.kind is ErrorKind.CONTEXT_LENGTH:
                message = "prompt is too long: 200109 tokens > 200000 maximum"
            elif failure.kind is ErrorKind.MODEL_NOT_FOUND:
                message = f"model: {json.loads(request.content)['model']}"
            headers = {"request-id": REQUEST_ID}
            if failure.retry_after is not None:
                headers["retry-after"] = f"{failure.retry_after:g}"  # whole seconds: "2"
            if status >= 500:
                headers["x-should-retry"] = "true"
            body = error_body(error_type, message, REQUEST_ID)
            return httpx.Response(status, headers=headers, json=body)

        return respond
