"""A key anywhere in what a provider sends never shows, whole or in part (issue 13, defect 3).

Error bodies that are not JSON were cut to 300 characters, and bad stream data to 80,
before redaction: a key straddling the cut no longer matched and its first characters
showed in ``str(exc)`` and ``repr(exc)``. Here a registered key slides across every cut
point of everything that quotes provider text (the kit's and each plugin's error
mapping, the stream parsers, ``excerpt``), and no 8-character piece of it may appear.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tachikoma_backend_claude._wire import errors as claude_errors
from tachikoma_backend_ollama._wire import errors as ollama_errors
from tachikoma_backend_openai._wire import errors as openai_errors
from tachikoma_backends_core import BackendError
from tachikoma_backends_core.errors import register_secret
from tachikoma_backends_core.http import (
    NDJSONParser,
    SSEParser,
    decode_json,
    error_from_response,
    excerpt,
)

KEY = "sk-sliding-SECRET-9f8e7d6c5b4a39281706"
PIECES = [KEY[start : start + 8] for start in range(len(KEY) - 7)]
# Past the longest cut any of them makes (300 characters of a body), key and all.
OFFSETS = range(420)
TAIL = "y" * 5000


def _raised(action: Callable[[], object]) -> BackendError:
    try:
        action()
    except BackendError as error:
        return error
    raise AssertionError("expected a BackendError")


def _html_200(text: str) -> str:
    return excerpt(text, 200)


PRODUCERS: dict[str, Callable[[str], object]] = {
    "kit error body": lambda text: error_from_response(500, {}, text.encode(), provider="kit"),
    "claude error body": lambda text: claude_errors.error_from_response(500, {}, text.encode()),
    "openai error body": lambda text: openai_errors.error_from_response(502, {}, text.encode()),
    "ollama error body": lambda text: ollama_errors.error_from_response(500, {}, text.encode()),
    "claude error event": lambda text: claude_errors.error_from_event({"error": {"message": text}}),
    "openai error payload": lambda text: openai_errors.error_from_payload(
        {"error": {"message": text}}
    ),
    "ollama error line": lambda text: ollama_errors.error_from_message(text),
    "stream payload that is not JSON": lambda text: _raised(
        lambda: decode_json(text, what="the stream's event")
    ),
    "NDJSON line that is not JSON": lambda text: _raised(
        lambda: NDJSONParser(provider="kit").feed(text.encode() + b"\n")
    ),
    "NDJSON line over the cap": lambda text: _raised(
        lambda: NDJSONParser(max_line_size=300, provider="kit").feed(text.encode())
    ),
    "SSE event over the cap": lambda text: _raised(
        lambda: SSEParser(max_event_size=300, provider="kit").feed(b"data: " + text.encode())
    ),
    "an HTML page quoted": _html_200,
}


@pytest.fixture(scope="module", autouse=True)
def _registered_key() -> None:
    register_secret(KEY)


@pytest.mark.parametrize("producer", list(PRODUCERS))
def test_a_key_at_any_offset_never_shows(producer: str) -> None:
    produce = PRODUCERS[producer]
    for offset in OFFSETS:
        result = produce("x" * offset + KEY + TAIL)
        shown = f"{result}\n{result!r}"
        if isinstance(result, BackendError):
            shown += "\n" + "\n".join(str(value) for value in vars(result).values())
        leaked = [piece for piece in PIECES if piece in shown]
        assert not leaked, f"{producer}: key at offset {offset} shows {leaked[0]!r}"
