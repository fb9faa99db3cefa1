"""Map Anthropic's error answers onto the Tachikoma error tree.

Anthropic documents its errors at https://platform.claude.com/docs/en/api/errors: an HTTP
status, a body ``{"type": "error", "error": {"type": ..., "message": ...}}`` and a
``request-id`` header. The same ``error`` object also arrives as an ``error`` event in
the middle of a stream, after the ``200`` was sent, so the type alone must be enough.

| Status | ``error.type`` | Raised |
|---|---|---|
| 400 | ``invalid_request_error`` | ``InvalidRequestError``; ``ContextLengthExceededError`` (1) |
| 401 | ``authentication_error`` | ``AuthenticationError`` |
| 402 | ``billing_error`` | ``PermissionDeniedError`` |
| 403 | ``permission_error`` | ``PermissionDeniedError`` |
| 404 | ``not_found_error`` | ``ModelNotFoundError`` (all ``/v1/messages`` looks up is the model) |
| 408, 504 | ``timeout_error`` | ``BackendTimeoutError`` |
| 409 | ``conflict_error`` | ``InvalidRequestError``, retryable (as the official SDKs treat it) |
| 413 | ``request_too_large`` | ``InvalidRequestError`` |
| 429 | ``rate_limit_error`` | ``RateLimitError`` with ``retry_after`` |
| 500, other 5xx | ``api_error`` | ``ServerError`` |
| 529 | ``overloaded_error`` | ``OverloadedError`` |

(1) when the message says the prompt is too long or exceeds the context window.

``retryable`` follows the error's kind unless Anthropic's ``x-should-retry`` header says
otherwise. Bodies that are not JSON (a proxy's HTML page) are quoted, redacted then
shortened. What is not Anthropic's own (the status table, ``retry-after``, reading the
body) is the core HTTP kit's (`tachikoma_backends_core.http`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tachikoma_backends_core.errors import (
    AuthenticationError,
    BackendError,
    BackendTimeoutError,
    ContextLengthExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from tachikoma_backends_core.http import (
    STATUS_ERRORS,
    ErrorBody,
    build_error,
    parse_retry_after,
    request_id_from_headers,
    should_retry,
)

from . import PROVIDER

__all__ = ["error_from_event", "error_from_response"]

_BY_TYPE: dict[str, type[BackendError]] = {
    "invalid_request_error": InvalidRequestError,
    "authentication_error": AuthenticationError,
    "billing_error": PermissionDeniedError,
    "permission_error": PermissionDeniedError,
    "not_found_error": ModelNotFoundError,
    "conflict_error": InvalidRequestError,
    "request_too_large": InvalidRequestError,
    "rate_limit_error": RateLimitError,
    "api_error": ServerError,
    "timeout_error": BackendTimeoutError,
    "overloaded_error": OverloadedError,
}

# What to do about each kind, appended to the provider's message.
_HINTS: dict[type[BackendError], str] = {
    AuthenticationError: "check the API key (api_key or ANTHROPIC_API_KEY)",
    PermissionDeniedError: "check the key's workspace, access and billing in the Claude Console",
    ModelNotFoundError: "check the model id; ClaudeModel.known() lists the documented ones",
    RateLimitError: "slow down, or retry after the delay the API gave",
    OverloadedError: "Anthropic's API is overloaded for everyone; retry later",
    ServerError: "an error on Anthropic's side; retrying may succeed",
    BackendTimeoutError: "the request took too long on Anthropic's side; retry or stream it",
    ContextLengthExceededError: "shorten the conversation or lower max_tokens",
}

# "prompt is too long: 208310 tokens > 200000 maximum", and "input length and `max_tokens`
# exceed context limit: 188240 + 21333 > 200000, ..." both mean the context window.
_CONTEXT_MESSAGE = re.compile(
    r"prompt is too long|exceeds? (?:the )?context (?:limit|window)", re.IGNORECASE
)
# Validation messages name the field first: "max_tokens: 100000 > 64000, which is ...".
_FIELD_PREFIX = re.compile(r"^([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*): ")


def error_from_response(
    status: int, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> BackendError:
    """The error for an HTTP error answer of the Messages or Models API."""
    parsed = ErrorBody.parse(body)
    error_type, message = parsed.error_type, parsed.message
    if error_type is None and not message:
        message = f"HTTP {status} with an empty body"
    error_class = STATUS_ERRORS.get(status)
    if error_class is None:
        fallback = InvalidRequestError if 400 <= status < 500 else ServerError
        error_class = ServerError if status >= 500 else _BY_TYPE.get(error_type or "", fallback)
    retryable: bool | None = None
    if status == 404 and error_type != "not_found_error":
        # Not Anthropic's answer about a model: the URL itself is wrong.
        error_class = InvalidRequestError
        message += " (nothing at this URL: check base_url)"
    elif status == 409:
        retryable = True
    advice = should_retry(headers)
    return _build(
        error_class,
        message,
        status_code=status,
        error_type=error_type,
        request_id=request_id_from_headers(headers, ("request-id",)) or parsed.request_id,
        retry_after=parse_retry_after(headers, now),
        retryable=retryable if advice is None else advice,
    )


def error_from_event(payload: Any) -> BackendError:
    """The error for a mid-stream ``error`` event (``payload`` is its decoded data)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        error = {}
    error_type = error.get("type") if isinstance(error.get("type"), str) else None
    message = str(error.get("message") or "the stream reported an error without a message")
    request_id = payload.get("request_id") if isinstance(payload, dict) else None
    error_class = _BY_TYPE.get(error_type or "", ServerError)
    return _build(
        error_class,
        f"mid-stream: {message}",
        status_code=None,
        error_type=error_type,
        request_id=request_id if isinstance(request_id, str) else None,
        retry_after=None,
        retryable=True if error_type == "conflict_error" else None,
    )


def _build(
    error_class: type[BackendError],
    message: str,
    *,
    status_code: int | None,
    error_type: str | None,
    request_id: str | None,
    retry_after: float | None,
    retryable: bool | None,
) -> BackendError:
    """Anthropic's refinements: the context window, the hint, the field a message names."""
    if error_class is InvalidRequestError and _CONTEXT_MESSAGE.search(message):
        error_class = ContextLengthExceededError
    hint = _HINTS.get(error_class)
    field = _FIELD_PREFIX.match(message)
    return build_error(
        error_class,
        f"{message} ({hint})" if hint else message,
        provider=PROVIDER,
        status_code=status_code,
        error_type=error_type,
        request_id=request_id,
        retry_after=retry_after,
        retryable=retryable,
        field=field[1] if field else None,
    )
