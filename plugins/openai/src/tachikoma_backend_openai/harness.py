"""OpenAI's conformance harness: Chat Completions bodies, on the core's `HttpxHarness`.

Every answer is a real OpenAI-shaped HTTP response (a ``chat.completion`` body, a chunk
stream ending in a usage-only chunk and ``[DONE]``, or a status with an error body), so
the suite exercises the plugin's real encoding, parsing and error mapping; only the
network is missing. Parallel tool calls stream with their fragments interleaved, as
OpenAI sends them. The scripting itself is the kit's.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import httpx

from tachikoma_backends_core.completion import FinishReason
from tachikoma_backends_core.conformance.harness import (
    ErrorKind,
    ScriptedFailure,
    ScriptedReply,
    SentRequest,
)
from tachikoma_backends_core.http import DEFAULT_ERROR_STATUSES, HttpxHarness

from ._plugin import plugin
from ._scripting import (
    FINISH_REASON_FOR,
    completion_body,
    decode_sent_request,
    error_body,
    error_event,
    sse_bytes,
    stream_chunks,
)

__all__ = ["OpenAIHarness"]

REQUEST_ID = "req_tachikoma_conformance"

# OpenAI's error type and code for each request-level failure
# (https://platform.openai.com/docs/guides/error-codes).
_ERRORS: dict[ErrorKind, tuple[str, str | None]] = {
    ErrorKind.RATE_LIMIT: ("requests", "rate_limit_exceeded"),
    ErrorKind.AUTHENTICATION: ("invalid_request_error", "invalid_api_key"),
    ErrorKind.PERMISSION_DENIED: ("invalid_request_error", None),
    ErrorKind.INVALID_REQUEST: ("invalid_request_error", None),
    ErrorKind.CONTEXT_LENGTH: ("invalid_request_error", "context_length_exceeded"),
    ErrorKind.MODEL_NOT_FOUND: ("invalid_request_error", "model_not_found"),
    ErrorKind.OVERLOADED: ("server_error", "server_is_overloaded"),
    ErrorKind.SERVER_ERROR: ("server_error", None),
}


def _finish_reason(reason: FinishReason) -> str:
    if reason not in FINISH_REASON_FOR:
        raise ValueError(f"Chat Completions has no finish_reason for FinishReason.{reason.name}")
    return FINISH_REASON_FOR[reason]


class OpenAIHarness(HttpxHarness):
    """Scripts ``POST /v1/chat/completions`` and ``GET /v1/models`` with pytest-httpx.

    Backends are built through the plugin (``plugin.create``) with a test key, the base
    URL ``http://openai.test/v1`` and ``max_retries=0`` (a trait may pass another).

    Examples:
        ```console
        $ pytest --plugin=openai -q              # offline, scripted
        $ OPENAI_API_KEY=sk-... pytest --plugin=openai --live -rs
        ```
    """

    backend_plugin = plugin
    base_url = "http://openai.test/v1"
    completion_path = "/chat/completions"
    health_path = "/models"
    test_settings = MappingProxyType({"api_key": "sk-openai-conformance"})
    # A cheap current model keeps live runs cheap; the key comes from OPENAI_API_KEY.
    live_settings = MappingProxyType({"model": "gpt-5.4-nano"})
    # OpenAI's overload is a 503 ("server_is_overloaded"), not Anthropic's 529.
    error_statuses = MappingProxyType({**DEFAULT_ERROR_STATUSES, ErrorKind.OVERLOADED: 503})
    supports_live = True
    live_environment = ("OPENAI_API_KEY",)
    over_max_output_tokens = "reject"
    # Chat Completions has no finish reason of its own for a stop sequence: "stop" says it.
    finish_reasons = frozenset(FINISH_REASON_FOR)
    # prompt_tokens_details.cached_tokens and completion_tokens_details.reasoning_tokens;
    # OpenAI's prompt cache is written without a count of its own.
    usage_fields = frozenset(
        {"input_tokens", "output_tokens", "cache_read_input_tokens", "reasoning_tokens"}
    )

    def reply_response(self, reply: ScriptedReply, sent: Any) -> httpx.Response:
        answer: dict[str, Any] = {
            "model": sent["model"],
            "text": reply.text,
            "tool_calls": reply.tool_calls,
            "finish_reason": _finish_reason(reply.effective_finish_reason),
            "usage": reply.usage,
        }
        if sent.get("stream"):
            usage = bool((sent.get("stream_options") or {}).get("include_usage"))
            chunks = stream_chunks(**answer, interleave=True, include_usage=usage)
            return self.stream_response(sse_bytes(chunks))
        return httpx.Response(
            200, headers={"x-request-id": REQUEST_ID}, json=completion_body(**answer)
        )

    def error_body(self, failure: ScriptedFailure, sent: Any) -> Any:
        error_type, code = _ERRORS[failure.kind]
        message = failure.message
        if failure.kind is ErrorKind.MODEL_NOT_FOUND:
            message = f"The model `{sent['model']}` does not exist or you do not have access to it."
        return error_body(message, error_type, code)

    def error_headers(self, failure: ScriptedFailure, status: int) -> dict[str, str]:
        return {**super().error_headers(failure, status), "x-request-id": REQUEST_ID}

    def stream_opening(self, sent: Any) -> bytes:
        # The role chunk and a first piece of text.
        return sse_bytes(stream_chunks(model=sent["model"], text="partial")[:2], done=False)

    def stream_error(self, failure: ScriptedFailure, sent: Any) -> bytes:
        # The same error object as the request-level answer, as a chunk of its own.
        error_type, code = _ERRORS[failure.kind]
        return error_event(failure.message, error_type, code)

    def decode_sent(self, sent: Any) -> SentRequest:
        return decode_sent_request(sent)

    def health_response(self, healthy: bool) -> httpx.Response:
        if healthy:
            model = {"id": "gpt-5.4-mini", "object": "model", "created": 0, "owned_by": "openai"}
            return httpx.Response(200, json={"object": "list", "data": [model]})
        return httpx.Response(503, json=error_body("overloaded", "server_error"))
