"""Reading an HTTP error answer the same way for every provider.

What every HTTP provider needs, written once: the status -> error type table, the
``Retry-After`` header in each of its forms, ``x-should-retry``, the request id, the
usual shapes of an error body, and building the right `BackendError` from all that.
A provider's own mapping (``_wire/errors.py``) composes these and adds only what is its
own: error types, hints, special cases.

| Status | Error | Retryable |
|---|---|---|
| 400, 409, 413, 422, other 4xx | ``InvalidRequestError`` | 409 only (a conflict may clear) |
| 401 | ``AuthenticationError`` | no |
| 402, 403 | ``PermissionDeniedError`` | no |
| 404 | ``ModelNotFoundError`` | no |
| 408, 504 | ``BackendTimeoutError`` | yes |
| 429 | ``RateLimitError`` | yes |
| 500, 502, 503, other 5xx | ``ServerError`` | yes |
| 529 | ``OverloadedError`` | yes |

An ``x-should-retry: true|false`` header (sent by Anthropic and OpenAI) overrides the
"retryable" column. A ``retry-after`` header sets ``retry_after`` on whatever error the
answer is (a 503 or 529 may carry one as well as a 429): the retry loop waits that long.

Examples:
    >>> parse_retry_after({"retry-after-ms": "1500"})
    1.5
    >>> error = error_from_response(
    ...     429, {"retry-after": "7", "x-request-id": "req_1"},
    ...     b'{"error": {"type": "rate_limited", "message": "slow down"}}', provider="acme")
    >>> type(error).__name__, error.retry_after, error.request_id, error.provider_error_type
    ('RateLimitError', 7.0, 'req_1', 'rate_limited')
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import Any

from tachikoma_backends_core.errors import (
    AuthenticationError,
    BackendError,
    BackendTimeoutError,
    InvalidRequestError,
    ModelNotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    _FieldError,
)

from ._excerpt import excerpt

__all__ = [
    "REQUEST_ID_HEADERS",
    "STATUS_ERRORS",
    "ErrorBody",
    "build_error",
    "error_class_for_status",
    "error_from_response",
    "parse_retry_after",
    "request_id_from_headers",
    "should_retry",
]

#: The error type for each HTTP status providers document (see the module's table).
STATUS_ERRORS: Mapping[int, type[BackendError]] = MappingProxyType(
    {
        400: InvalidRequestError,
        401: AuthenticationError,
        402: PermissionDeniedError,
        403: PermissionDeniedError,
        404: ModelNotFoundError,
        408: BackendTimeoutError,
        409: InvalidRequestError,
        413: InvalidRequestError,
        422: InvalidRequestError,
        429: RateLimitError,
        500: ServerError,
        502: ServerError,
        503: ServerError,
        504: BackendTimeoutError,
        529: OverloadedError,
    }
)

#: Where providers put the request id: Anthropic ``request-id``, OpenAI ``x-request-id``.
REQUEST_ID_HEADERS = ("request-id", "x-request-id")

# A body that is not a JSON error (a proxy's HTML page) is quoted up to this length.
_QUOTED = 300


def error_class_for_status(status: int) -> type[BackendError]:
    """The table's error type for ``status``; other 5xx are server errors, the rest invalid."""
    known = STATUS_ERRORS.get(status)
    if known is not None:
        return known
    return ServerError if status >= 500 else InvalidRequestError


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, or ``retry-after`` (seconds or HTTP date).

    ``headers`` is case-insensitive (``httpx.Headers``) or has lower-case keys. A value
    that cannot be read gives ``None``; one in the past gives ``0.0``.
    """
    milliseconds = _number(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return max(milliseconds / 1000.0, 0.0)
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    seconds = _number(value)
    if seconds is not None:
        return max(seconds, 0.0)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(when - (time.time() if now is None else now), 0.0)


def _number(text: str | None) -> float | None:
    """``text`` as a finite number; ``None`` for nothing, words, NaN or infinity."""
    try:
        value = float(text or "nan")
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def should_retry(headers: Mapping[str, str]) -> bool | None:
    """The provider's ``x-should-retry`` advice, or ``None`` when it gave none."""
    advice = (headers.get("x-should-retry") or "").strip().lower()
    return advice == "true" if advice in ("true", "false") else None


def request_id_from_headers(
    headers: Mapping[str, str], names: tuple[str, ...] = REQUEST_ID_HEADERS
) -> str | None:
    """The first of ``names`` present in ``headers``."""
    for name in names:
        value = headers.get(name)
        if value:
            return value
    return None


@dataclass(frozen=True)
class ErrorBody:
    """What an error body says, whatever its shape.

    Understood: ``{"error": {"type", "code", "message", "param"}}`` (Anthropic, OpenAI and
    their imitators), ``{"error": "text"}`` (Ollama), ``{"message": ...}`` or
    ``{"detail": ...}`` (many proxies and frameworks), each with an optional top-level
    ``request_id``. Anything else is quoted as text, redacted then shortened.

    Attributes:
        error_type: the error object's ``type``, if it is a string.
        code: its ``code``, if it is a string (OpenAI: ``"context_length_exceeded"``).
        message: the message, or the quoted body; ``""`` for an empty body.
        param: the request field at fault, if the provider named it.
        request_id: the body's ``request_id``, if any.
        structured: whether the body was a JSON error object (not a proxy's page).
    """

    error_type: str | None = None
    code: str | None = None
    message: str = ""
    param: str | None = None
    request_id: str | None = None
    structured: bool = False

    @classmethod
    def parse(cls, body: bytes) -> ErrorBody:
        try:
            decoded = json.loads(body) if body.strip() else None
        except (ValueError, RecursionError):  # UnicodeDecodeError included
            decoded = None
        if isinstance(decoded, dict):
            request_id = _string(decoded.get("request_id"))
            error = decoded.get("error")
            if isinstance(error, dict):
                return cls(
                    error_type=_string(error.get("type")),
                    code=_string(error.get("code")),
                    message=str(error.get("message") or ""),
                    param=_string(error.get("param")),
                    request_id=request_id,
                    structured=True,
                )
            for key in ("error", "message", "detail"):
                if isinstance(decoded.get(key), str):
                    return cls(message=decoded[key], request_id=request_id, structured=True)
        text = body.decode("utf-8", errors="replace").strip()
        return cls(message=excerpt(text, _QUOTED) if text else "")


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def build_error(
    error_class: type[BackendError],
    message: str,
    *,
    provider: str,
    status_code: int | None = None,
    error_type: str | None = None,
    request_id: str | None = None,
    retry_after: float | None = None,
    retryable: bool | None = None,
    field: str | None = None,
) -> BackendError:
    """An instance of ``error_class``, passing each fact where that class takes it.

    ``field`` goes to the errors that name a field (`InvalidRequestError` and its kind);
    ``retryable`` ``None`` keeps the class's default. ``retry_after`` goes to every class:
    providers send it with 503s and 529s too, and the retry loop waits what it says.
    """
    common: dict[str, Any] = {
        "provider": provider,
        "status_code": status_code,
        "provider_error_type": error_type,
        "request_id": request_id,
        "retryable": retryable,
        "retry_after": retry_after,
    }
    if issubclass(error_class, _FieldError):
        return error_class(message, field=field, **common)
    return error_class(message, **common)


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    provider: str,
    error_types: Mapping[str, type[BackendError]] | None = None,
    hints: Mapping[type[BackendError], str] | None = None,
    now: float | None = None,
) -> BackendError:
    """The error for an HTTP error answer, for providers with the usual body shapes.

    Args:
        status, headers, body: the answer (the body as read, possibly capped).
        provider: the plugin's name, carried by the error.
        error_types: the provider's error ``code``/``type`` -> error type. It decides
            for a status outside the table, and refines a known status when it names a
            kind of that status's error (``context_length_exceeded`` on a 400 ->
            `ContextLengthExceededError`).
        hints: what to do about each kind, appended to the message.
        now: the clock for an HTTP-date ``retry-after`` (tests).
    """
    parsed = ErrorBody.parse(body)
    error_class = error_class_for_status(status)
    for name in (parsed.code, parsed.error_type):
        refined = (error_types or {}).get(name or "")
        if refined is not None:
            unknown_client_status = status not in STATUS_ERRORS and status < 500
            if unknown_client_status or issubclass(refined, error_class):
                error_class = refined
            break
    message = parsed.message or f"HTTP {status} with an empty body"
    if status == 404 and not parsed.structured:
        # Not the provider's answer about a model: nothing lives at this URL.
        error_class = InvalidRequestError
        message += " (nothing at this URL: check base_url)"
    advice = should_retry(headers)
    hint = (hints or {}).get(error_class)
    return build_error(
        error_class,
        f"{message} ({hint})" if hint else message,
        provider=provider,
        status_code=status,
        error_type=parsed.code or parsed.error_type,
        request_id=request_id_from_headers(headers) or parsed.request_id,
        retry_after=parse_retry_after(headers, now),
        retryable=advice if advice is not None else (True if status == 409 else None),
        field=parsed.param,
    )
