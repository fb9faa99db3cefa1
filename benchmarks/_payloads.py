"""What the server answers and what each client asks, per wire format, precomputed.

Each wire format is one of our plugins' (Anthropic SSE: claude, OpenAI SSE: openai,
Ollama NDJSON: ollama), and its bytes are the plugin's own scripting helpers', the ones
its tests are built on. A streamed answer's size travels in the model name
(``bench-20000``: 20 000 text deltas of 8 characters), so the server needs no state: it
builds each answer once and serves the same bytes again.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tachikoma_backends_core import Usage
from tachikoma_backends_core.http.wire_server import response

#: The text of every streamed delta (8 characters, the harnesses' piece size).
DELTA = "lorem ip"
#: The text of a non-streamed answer.
ANSWER = "Hello! How can I help you today?"
PROMPT = "Say hello."
_SIZE = re.compile(r"bench-(\d+)")


@dataclass(frozen=True)
class WireFormat:
    """One provider's wire format: the plugin speaking it and the SDK that also does.

    Attributes:
        plugin: our plugin's name (``registry.create(plugin)``).
        label: how the report names the format.
        sdk: the official SDK's import name.
        base_path: what the plugin's ``base_url`` adds to the server's address.
        path: where completions are posted, under ``base_path``.
        sse: whether the stream is SSE (else NDJSON).
        stream_type: the content type of a streamed answer.
    """

    plugin: str
    label: str
    sdk: str
    base_path: str
    path: str
    sse: bool
    stream_type: str

    def url(self, server: str) -> str:
        return server + self.base_path + self.path

    def request_body(self, deltas: int | None) -> bytes:
        """The least request the floor sends (``deltas``: a stream of that many)."""
        body: dict[str, Any] = {
            "model": model_name(deltas),
            "messages": [{"role": "user", "content": PROMPT}],
        }
        if self.plugin == "claude":
            body["max_tokens"] = 1024
        if deltas is not None or self.plugin == "ollama":
            body["stream"] = deltas is not None
        return json.dumps(body).encode()

    def answer(self, deltas: int | None) -> bytes:
        """The whole HTTP response: a stream of ``deltas`` deltas, or (``None``) one answer."""
        return _answer(self, deltas)


FORMATS = {
    "claude": WireFormat(
        "claude", "Anthropic SSE", "anthropic", "", "/v1/messages", True, "text/event-stream"
    ),
    "openai": WireFormat(
        "openai", "OpenAI SSE", "openai", "/v1", "/chat/completions", True, "text/event-stream"
    ),
    "ollama": WireFormat(
        "ollama", "Ollama NDJSON", "ollama", "", "/api/chat", False, "application/x-ndjson"
    ),
}


def model_name(deltas: int | None) -> str:
    return "bench-answer" if deltas is None else f"bench-{deltas}"


def deltas_asked(body: dict[str, Any]) -> int | None:
    """The stream size a request asks for (``None``: a non-streamed answer)."""
    if not body.get("stream"):
        return None
    found = _SIZE.fullmatch(str(body.get("model", "")))
    return int(found.group(1)) if found else 1


@functools.lru_cache(maxsize=64)
def _answer(wire: WireFormat, deltas: int | None) -> bytes:
    build = _BUILDERS[wire.plugin]
    usage = Usage(10, deltas or 9)
    model = model_name(deltas)
    if deltas is None:
        body = json.dumps(build[0](model=model, text=ANSWER, usage=usage)).encode()
        return response(200, {"content-type": "application/json"}, body)
    body = build[1](model=model, text=DELTA * deltas, usage=usage)
    return response(200, {"content-type": wire.stream_type}, body)


def _claude() -> tuple[Callable[..., Any], Callable[..., bytes]]:
    from tachikoma_backend_claude._scripting import message_body, message_events, sse_bytes

    return message_body, lambda **answer: sse_bytes(message_events(**answer))


def _openai() -> tuple[Callable[..., Any], Callable[..., bytes]]:
    from tachikoma_backend_openai._scripting import completion_body, sse_bytes, stream_chunks

    return completion_body, lambda **answer: sse_bytes(stream_chunks(**answer))


def _ollama() -> tuple[Callable[..., Any], Callable[..., bytes]]:
    from tachikoma_backend_ollama._scripting import chat_answer, chat_lines, ndjson_bytes

    return chat_answer, lambda **answer: ndjson_bytes(chat_lines(**answer))


_BUILDERS = {"claude": _claude(), "openai": _openai(), "ollama": _ollama()}
