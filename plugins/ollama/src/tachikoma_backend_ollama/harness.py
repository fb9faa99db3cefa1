"""Ollama's conformance harness: native API answers, on the core's `HttpxHarness`.

Every answer is a real Ollama-shaped HTTP response (a whole ``/api/chat`` answer, NDJSON
lines ending in a ``done`` line with the counts, or a status with ``{"error": ...}``), so
the suite exercises the plugin's real encoding, parsing and error mapping; only the
network is missing. Tool calls stream on a line of their own, as Ollama sends them; an
error after the stream started is an ``{"error": ...}`` line, its message all it says.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import httpx

from tachikoma_backends_core.backend import Backend
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
    DONE_REASON_FOR,
    chat_answer,
    chat_lines,
    decode_sent_request,
    error_line,
    ndjson_bytes,
)

__all__ = ["OllamaHarness"]

# Ollama's error messages (server/routes.go, server/sched.go).
_MESSAGES: dict[ErrorKind, str] = {
    ErrorKind.CONTEXT_LENGTH: "the input length exceeds the context length",
    ErrorKind.OVERLOADED: "server busy, please try again.  maximum pending requests exceeded",
}

# What an ``{"error": ...}`` line after the first chunk says for each kind Ollama can
# report there. The line has no status (streamResponse drops it once a line was
# written), so the message is what tells the kinds apart: the scheduler's queue-full
# message for an overload, the runner's failure (llm/llama_server.go) for a server
# error. Ollama has no rate limit to report.
_STREAM_MESSAGES: dict[ErrorKind, str] = {
    ErrorKind.OVERLOADED: _MESSAGES[ErrorKind.OVERLOADED],
    ErrorKind.SERVER_ERROR: "an error was encountered while running the model: {message}",
}


def _done_reason(reason: FinishReason) -> str:
    if reason not in DONE_REASON_FOR:
        raise ValueError(f"Ollama has no done_reason for FinishReason.{reason.name}")
    return DONE_REASON_FOR[reason]


class OllamaHarness(HttpxHarness):
    """Scripts ``POST /api/chat`` and ``GET /api/version`` with pytest-httpx.

    Backends are built through the plugin (``plugin.create``) with the base URL
    ``http://ollama.test:11434`` and ``max_retries=0`` (a trait may pass another).
    ``--live`` talks to the Ollama at ``OLLAMA_HOST`` (or ``127.0.0.1:11434``) with the
    model ``OLLAMA_TEST_MODEL`` names, and skips when none answers.

    Examples:
        ```console
        $ pytest --plugin=ollama -q                      # offline, scripted
        $ OLLAMA_TEST_MODEL=llama3.2 pytest --plugin=ollama --live -rs
        ```
    """

    backend_plugin = plugin
    base_url = "http://ollama.test:11434"
    completion_path = "/api/chat"
    health_path = "/api/version"
    stream_headers = MappingProxyType({"content-type": "application/x-ndjson"})
    malformed_event = b"<html><body>502 Bad Gateway</body></html>\n"
    # Ollama's queue-full answer is a 503.
    error_statuses = MappingProxyType({**DEFAULT_ERROR_STATUSES, ErrorKind.OVERLOADED: 503})
    supports_live = True
    live_environment = ("OLLAMA_TEST_MODEL",)
    over_max_output_tokens = "reject"
    # done_reason is "stop" or "length" (a stop sequence reads as "stop"; no content
    # filter); the counts are prompt_eval_count and eval_count, with no cache counts.
    finish_reasons = frozenset(DONE_REASON_FOR)
    usage_fields = frozenset({"input_tokens", "output_tokens"})

    def create_live_backend(self) -> Backend:
        import os

        import anyio

        from ._backend import OllamaBackend
        from ._host import OllamaServerConfig
        from ._plugin import OllamaBackendConfig

        config = OllamaBackendConfig(model=os.environ["OLLAMA_TEST_MODEL"])

        async def answering() -> OllamaBackend:
            return await OllamaBackend.create(OllamaServerConfig(), config)

        try:
            backend = anyio.run(answering)
        except Exception as error:
            import pytest

            pytest.skip(f"--live needs a running Ollama: {error}")
        anyio.run(backend.aclose)
        return self.backend_plugin.create(model=config.model, base_url=config.base_url)

    def reply_response(self, reply: ScriptedReply, sent: Any) -> httpx.Response:
        answer: dict[str, Any] = {
            "model": sent["model"],
            "text": reply.text,
            "tool_calls": reply.tool_calls,
            "done_reason": _done_reason(reply.effective_finish_reason),
            "usage": reply.usage,
        }
        if sent.get("stream", True):
            return self.stream_response(ndjson_bytes(chat_lines(**answer)))
        return httpx.Response(200, json=chat_answer(**answer))

    def error_body(self, failure: ScriptedFailure, sent: Any) -> Any:
        message = _MESSAGES.get(failure.kind, failure.message)
        if failure.kind is ErrorKind.MODEL_NOT_FOUND:
            message = f"model '{sent['model']}' not found"
        return {"error": message}

    def stream_opening(self, sent: Any) -> bytes:
        # A first line of text.
        return ndjson_bytes(chat_lines(model=sent["model"], text="partial")[:1])

    def script_failure(self, failure: ScriptedFailure) -> None:
        # Refused here, not when the request comes: the trait asked for the impossible.
        if failure.after_first_chunk and failure.kind not in _STREAM_MESSAGES:
            raise ValueError(
                f"Ollama cannot report {failure.kind.value} after its stream started: the "
                "error line has only a message, and Ollama has none for it"
            )
        super().script_failure(failure)

    def stream_error(self, failure: ScriptedFailure, sent: Any) -> bytes:
        return error_line(_STREAM_MESSAGES[failure.kind].format(message=failure.message))

    def decode_sent(self, sent: Any) -> SentRequest:
        return decode_sent_request(sent)

    def health_response(self, healthy: bool) -> httpx.Response:
        if healthy:
            return httpx.Response(200, json={"version": "0.32.15"})
        return httpx.Response(503, json={"error": "server busy, please try again."})
