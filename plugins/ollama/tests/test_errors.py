"""Error mapping: Ollama's statuses and messages (its own, gin's plain-text 404 and 405, a
proxy's pages), errors after the 200 (a stream's ``{"error": ...}`` line, a failed pull).
"""

from __future__ import annotations

import json

import pytest

from tachikoma_backend_ollama._wire.errors import error_from_message, error_from_response, pull_hint
from tachikoma_backends_core import (
    AuthenticationError,
    BackendError,
    ContextLengthExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)


def body(message: str) -> bytes:
    """An error body as Ollama writes it (gin's c.JSON: compact, HTML characters escaped)."""
    return json.dumps({"error": message}, separators=(",", ":")).encode().replace(b"<", b"\\u003c")


BUSY = "server busy, please try again.  maximum pending requests exceeded"  # two spaces
RUNNER = (
    "model runner has unexpectedly stopped, this may be due to resource limitations or an "
    "internal error, check ollama server logs for details"
)
NGINX_401 = (
    b"<html>\r\n<head><title>401 Authorization Required</title></head>\r\n<body>\r\n"
    b"<center><h1>401 Authorization Required</h1></center>\r\n<hr><center>nginx/1.25.3"
    b"</center>\r\n</body>\r\n</html>\r\n"
)
NGINX_403 = b"<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>403</body></html>"
CLOUDFLARE_502 = b"<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"

# (id, status, body, class, retryable, field, words the message must contain)
TABLE: list[tuple[str, int, bytes, type[BackendError], bool, str | None, tuple[str, ...]]] = [
    (
        "404-model-not-found",
        404,
        body("model 'llama9' not found"),
        ModelNotFoundError,
        False,
        "model",
        ("model 'llama9' not found", "tachikoma pull llama9", "ollama pull llama9"),
    ),
    (
        "404-model-with-tag",
        404,
        body("model 'qwen3:0.6b' not found"),
        ModelNotFoundError,
        False,
        "model",
        ("tachikoma pull qwen3:0.6b", "ollama pull qwen3:0.6b"),
    ),
    (
        "404-try-pulling-it-first",
        404,
        body('model "llama3.2" not found, try pulling it first'),
        ModelNotFoundError,
        False,
        "model",
        ("tachikoma pull llama3.2", "ollama pull llama3.2"),
    ),
    (
        "404-gin-plain-text",
        404,
        b"404 page not found",
        InvalidRequestError,
        False,
        None,
        ("404 page not found", "base_url", "OLLAMA_HOST"),
    ),
    (
        "404-empty",
        404,
        b"",
        InvalidRequestError,
        False,
        None,
        ("base_url", "OLLAMA_HOST"),
    ),
    (
        "405-gin-plain-text",
        405,
        b"405 method not allowed",
        InvalidRequestError,
        False,
        None,
        ("405 method not allowed",),
    ),
    (
        "400-tools",
        400,
        body("registry.ollama.ai/library/smollm2:360m does not support tools"),
        InvalidRequestError,
        False,
        "tools",
        ("smollm2:360m does not support tools",),
    ),
    (
        "400-thinking",
        400,
        body('"llama3.2" does not support thinking'),
        InvalidRequestError,
        False,
        "reasoning_effort",
        ('"llama3.2" does not support thinking',),
    ),
    (
        "400-thinking-before-0.12.5",
        400,
        body("registry.ollama.ai/library/llama3.2:latest does not support thinking"),
        InvalidRequestError,
        False,
        "reasoning_effort",
        ("does not support thinking",),
    ),
    (
        "400-model-is-required",
        400,
        body("model is required"),
        InvalidRequestError,
        False,
        None,
        ("model is required",),
    ),
    (
        "400-invalid-think",
        400,
        body('invalid think value: "x" (must be "high", "medium", "low", "max", true, or false)'),
        InvalidRequestError,
        False,
        None,
        ("invalid think value",),
    ),
    (
        "400-keep-alive-without-unit",
        400,
        body('time: missing unit in duration "300"'),
        InvalidRequestError,
        False,
        None,
        ("missing unit",),
    ),
    (
        "400-bad-image",
        400,
        body("illegal base64 data at input byte 5"),
        InvalidRequestError,
        False,
        None,
        ("illegal base64",),
    ),
    (
        "400-does-not-support-chat",
        400,
        body('"nomic-embed-text" does not support chat'),
        InvalidRequestError,
        False,
        None,
        ("does not support chat",),
    ),
    (
        "400-context-length",
        400,
        body("the input length exceeds the context length"),
        ContextLengthExceededError,
        False,
        None,
        ("exceeds the context length",),
    ),
    (
        "400-llama-server-context-size",
        400,
        body("the request exceeds the available context size, try increasing it"),
        ContextLengthExceededError,
        False,
        None,
        ("context size",),
    ),
    (
        "500-context-length",
        500,
        body("the input length exceeds the context length"),
        ContextLengthExceededError,
        False,
        None,
        ("exceeds the context length",),
    ),
    (
        "401-cloud-unauthorized",
        401,
        b'{"error":"unauthorized","signin_url":"https://ollama.com/connect?name=box&key=abc"}',
        AuthenticationError,
        False,
        None,
        ("unauthorized",),
    ),
    (
        "401-nginx-html",
        401,
        NGINX_401,
        AuthenticationError,
        False,
        None,
        ("401 Authorization Required",),
    ),
    ("401-empty", 401, b"", AuthenticationError, False, None, ("401",)),
    (
        "403-host-header-rejected-empty",
        403,
        b"",
        PermissionDeniedError,
        False,
        None,
        ("403", "empty"),
    ),
    ("403-proxy-html", 403, NGINX_403, PermissionDeniedError, False, None, ("403 Forbidden",)),
    ("429-too-many", 429, body("too many requests"), RateLimitError, True, None, ("too many",)),
    (
        "503-server-busy",
        503,
        body(BUSY),
        OverloadedError,
        True,
        None,
        ("server busy", "maximum pending requests exceeded"),
    ),
    (
        "503-proxy",
        503,
        b"Service Unavailable",
        ServerError,
        True,
        None,
        ("Service Unavailable",),
    ),
    ("500-runner-stopped", 500, body(RUNNER), ServerError, True, None, ("unexpectedly stopped",)),
    ("500-empty", 500, b"", ServerError, True, None, ("500", "empty")),
    ("502-cloudflare-html", 502, CLOUDFLARE_502, ServerError, True, None, ("502 Bad Gateway",)),
]


@pytest.mark.parametrize(
    ("status", "raw", "expected", "retryable", "field", "words"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_error_from_response(
    status: int,
    raw: bytes,
    expected: type[BackendError],
    retryable: bool,
    field: str | None,
    words: tuple[str, ...],
) -> None:
    error = error_from_response(status, {}, raw)
    assert type(error) is expected
    assert error.provider == "ollama"
    assert error.status_code == status
    assert error.retryable is retryable
    if expected is not ModelNotFoundError:  # its field: the test below
        assert getattr(error, "field", None) == field
    for word in words:
        assert word in error.message


def test_model_not_found_says_how_to_pull_the_model_once() -> None:
    # ModelNotFoundError names no field (it is not a field error); its message names the
    # model and how to pull it, once, even where Ollama already says "try pulling it".
    for message in ("model 'llama9' not found", 'model "llama9" not found, try pulling it first'):
        error = error_from_response(404, {}, body(message))
        assert isinstance(error, ModelNotFoundError)
        assert "tachikoma pull llama9" in error.message, message
        assert "try pulling" not in error.message, error.message
        assert error.message.count("ollama pull llama9") == 1, error.message


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ({"retry-after": "30"}, 30.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after": "Thu, 01 Jan 2026 00:01:00 GMT"}, 60.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_429_carries_retry_after(headers: dict[str, str], retry_after: float | None) -> None:
    now = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    error = error_from_response(429, headers, body("too many requests"), now=now)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == retry_after
    assert (error.retryable, error.status_code, error.provider) == (True, 429, "ollama")


def test_the_request_id_header_is_kept() -> None:
    error = error_from_response(500, {"x-request-id": "req_8c3a0f"}, body(RUNNER))
    assert error.request_id == "req_8c3a0f"


def test_a_proxys_long_page_is_quoted_short() -> None:
    page = b"<html>" + b"x" * 5000 + b"</html>"
    error = error_from_response(502, {}, page)
    assert isinstance(error, ServerError)
    assert len(error.message) < 1000


def test_the_busy_message_says_to_retry_later() -> None:
    error = error_from_response(503, {"retry-after": "5"}, body(BUSY))
    assert isinstance(error, OverloadedError)
    assert "retry" in error.message.split(BUSY, 1)[1]


# --- after the 200: a stream's error line, a pull's ----------------------------------------


@pytest.mark.parametrize(
    ("message", "expected", "retryable", "field", "words"),
    [
        (
            "an error was encountered while running the model",
            ServerError,
            True,
            None,
            ("an error was encountered while running the model",),
        ),
        (RUNNER, ServerError, True, None, ("unexpectedly stopped",)),
        (BUSY, OverloadedError, True, None, ("server busy",)),
        (
            "the input length exceeds the context length",
            ContextLengthExceededError,
            False,
            None,
            ("context length",),
        ),
        (
            "registry.ollama.ai/library/smollm2:360m does not support tools",
            InvalidRequestError,
            False,
            "tools",
            ("does not support tools",),
        ),
        (
            '"qwen2.5" does not support thinking',
            InvalidRequestError,
            False,
            "reasoning_effort",
            ("does not support thinking",),
        ),
        (
            "model 'llama9' not found",
            ModelNotFoundError,
            False,
            None,
            ("tachikoma pull llama9", "ollama pull llama9"),
        ),
        (
            "pull model manifest: file does not exist",
            ServerError,
            True,
            None,
            ("file does not exist",),
        ),
    ],
)
def test_error_from_message(
    message: str,
    expected: type[BackendError],
    retryable: bool,
    field: str | None,
    words: tuple[str, ...],
) -> None:
    error = error_from_message(message)
    assert type(error) is expected
    assert (error.provider, error.status_code, error.retryable) == ("ollama", None, retryable)
    if field is not None:
        assert getattr(error, "field", None) == field
    for word in words:
        assert word in error.message


@pytest.mark.parametrize("model", ["llama9", "qwen3:0.6b", "someone/custom:tag"])
def test_a_pull_of_a_model_the_registry_lacks_is_model_not_found(model: str) -> None:
    error = error_from_message("pull model manifest: file does not exist", pulling=model)
    assert type(error) is ModelNotFoundError
    assert "pull model manifest: file does not exist" in error.message
    assert repr(model) in error.message
    assert "https://ollama.com/library" in error.message
    assert (error.provider, error.retryable) == ("ollama", False)


def test_a_pull_that_cannot_reach_the_registry_is_a_retryable_server_error() -> None:
    message = (
        'pull model manifest: Get "https://registry.ollama.ai/v2/library/qwen3/manifests/0.6b":'
        " dial tcp 104.21.75.227:443: i/o timeout"
    )
    error = error_from_message(message, pulling="qwen3:0.6b")
    assert type(error) is ServerError
    assert error.retryable is True
    assert "i/o timeout" in error.message


@pytest.mark.parametrize("model", ["llama9", "qwen3:0.6b"])
def test_pull_hint(model: str) -> None:
    hint = pull_hint(model)
    assert hint == f"pull it first: tachikoma pull {model} (or: ollama pull {model})"
