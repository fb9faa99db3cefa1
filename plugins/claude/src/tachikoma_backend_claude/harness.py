"""Claude's conformance harness: the Messages API's bodies, on the core's `HttpxHarness`.

Every answer is a real Anthropic-shaped HTTP response (a ``message`` body, an SSE
stream, or a status with an error body and headers), so the suite exercises the
plugin's real encoding, parsing and error mapping; only the network is missing. The
scripting itself (pytest-httpx, statuses, broken streams, counting) is the kit's.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import httpx

from tachikoma_backends_core.completion import FinishReason, Usage
from tachikoma_backends_core.conformance.harness import (
    ErrorKind,
    ScriptedFailure,
    ScriptedReply,
    SentRequest,
)
from tachikoma_backends_core.http import HttpxHarness

from ._plugin import plugin
from ._scripting import (
    STOP_REASON_FOR,
    decode_sent_request,
    error_body,
    error_event,
    message_body,
    message_events,
    sse_bytes,
)

__all__ = ["ClaudeHarness"]

REQUEST_ID = "req_011CTachikomaConformance"

# Anthropic's error type for each request-level failure
# (https://platform.claude.com/docs/en/api/errors); the statuses are the kit's table.
_ERROR_TYPES: dict[ErrorKind, str] = {
    ErrorKind.RATE_LIMIT: "rate_limit_error",
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.PERMISSION_DENIED: "permission_error",
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.CONTEXT_LENGTH: "invalid_request_error",
    ErrorKind.MODEL_NOT_FOUND: "not_found_error",
    ErrorKind.OVERLOADED: "overloaded_error",
    ErrorKind.SERVER_ERROR: "api_error",
}


def _stop_reason(reason: FinishReason) -> str:
    if reason not in STOP_REASON_FOR:
        raise ValueError(f"the Messages API has no stop_reason for FinishReason.{reason.name}")
    return STOP_REASON_FOR[reason]


class ClaudeHarness(HttpxHarness):
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

    backend_plugin = plugin
    base_url = "http://claude.test"
    completion_path = "/v1/messages"
    health_path = "/v1/models"
    test_settings = MappingProxyType({"api_key": "test-key"})
    # A cheap model keeps live runs cheap; the key comes from ANTHROPIC_API_KEY.
    live_settings = MappingProxyType({"model": "claude-haiku-5-5"})
    stream_headers = MappingProxyType(
        {"content-type": "text/event-stream", "request-id": REQUEST_ID}
    )
    malformed_event = b"event: content_block_delta\ndata: <html>502 Bad Gateway</html>\n\n"
    supports_live = True
    live_environment = ("ANTHROPIC_API_KEY",)
    over_max_output_tokens = "reject"
    finish_reasons = frozenset(STOP_REASON_FOR)
    usage_fields = frozenset(
        {
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        }
    )

    def reply_response(self, reply: ScriptedReply, sent: Any) -> httpx.Response:
        answer: dict[str, Any] = {
            "model": sent["model"],
            "text": reply.text,
            "tool_calls": reply.tool_calls,
            "stop_reason": _stop_reason(reply.effective_finish_reason),
            "usage": reply.usage,
        }
        if sent.get("stream"):
            return self.stream_response(sse_bytes(message_events(**answer)))
        return httpx.Response(200, headers={"request-id": REQUEST_ID}, json=message_body(**answer))

    def error_body(self, failure: ScriptedFailure, sent: Any) -> Any:
        message = failure.message
        if failure.kind is ErrorKind.CONTEXT_LENGTH:
            message = "prompt is too long: 200109 tokens > 200000 maximum"
        elif failure.kind is ErrorKind.MODEL_NOT_FOUND:
            message = f"model: {sent['model']}"
        return error_body(_ERROR_TYPES[failure.kind], message, REQUEST_ID)

    def error_headers(self, failure: ScriptedFailure, status: int) -> dict[str, str]:
        headers = {**super().error_headers(failure, status), "request-id": REQUEST_ID}
        if status >= 500:
            headers["x-should-retry"] = "true"
        return headers

    def stream_opening(self, sent: Any) -> bytes:
        # message_start, ping, a text block and its first delta.
        return sse_bytes(message_events(model=sent["model"], text="partial")[:4])

    def stream_error(self, failure: ScriptedFailure, sent: Any) -> bytes:
        return error_event(_ERROR_TYPES[failure.kind], failure.message)

    def decode_sent(self, sent: Any) -> SentRequest:
        return decode_sent_request(sent)

    def health_response(self, healthy: bool) -> httpx.Response:
        if healthy:
            model = {
                "type": "model",
                "id": "claude-sonnet-5-5",
                "display_name": "Claude Sonnet 5.5",
            }
            return httpx.Response(200, json={"data": [model], "has_more": False})
        return httpx.Response(529, json=error_body("overloaded_error", "Overloaded", REQUEST_ID))

    def partial_usage(self, reply: ScriptedReply) -> Usage:
        # What message_start reports, before any text: the input side and a first token.
        return Usage(
            reply.usage.input_tokens,
            min(reply.usage.output_tokens, 1),
            cache_creation_input_tokens=reply.usage.cache_creation_input_tokens,
            cache_read_input_tokens=reply.usage.cache_read_input_tokens,
        )
