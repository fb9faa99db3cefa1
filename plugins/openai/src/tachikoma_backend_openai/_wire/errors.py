"""Map OpenAI's error answers (and its imitators') onto the Tachikoma error tree.

OpenAI documents its errors at https://platform.openai.com/docs/guides/error-codes: an
HTTP status and ``{"error": {"message", "type", "param", "code"}}``, with ``x-request-id``.
The status decides; the ``code`` (or ``type``) refines it:

| Status | ``code`` / ``type`` | Raised |
|---|---|---|
| 400 | ``context_length_exceeded`` (or the message says so) | ``ContextLengthExceededError`` |
| 400 | ``content_filter`` (Azure) | ``ContentFilteredError`` |
| 400, 422 | anything else | ``InvalidRequestError`` (``field`` from ``param``) |
| 401 | | ``AuthenticationError`` |
| 403 | | ``PermissionDeniedError`` |
| 404 | ``model_not_found`` (any JSON error) | ``ModelNotFoundError``; not JSON: the URL is wrong |
| 409 | | ``InvalidRequestError``, retryable (as the official SDK treats it) |
| 429 | ``rate_limit_exceeded`` | ``RateLimitError`` with ``retry_after`` |
| 429 | ``insufficient_quota`` and the spend-limit codes | ``RateLimitError``, **not** retryable |
| 500, 502 | | ``ServerError`` |
| 503 | ``server_is_overloaded``, ``slow_down`` | ``OverloadedError``; else ``ServerError`` |
| 504 | | ``BackendTimeoutError`` |

``x-should-retry`` overrides ``retryable``; ``retry-after-ms`` / ``retry-after`` give
``retry_after``. The same error object arrives inside a ``200`` (a stream's
``data: {"error": ...}``, or a body): `error_from_payload` maps it by its code, where an
integer code (OpenRouter's) is read as a status.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any

from tachikoma_backends_core.errors import (
    AuthenticationError,
    BackendError,
    ContentFilteredError,
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
    error_class_for_status,
    parse_retry_after,
    request_id_from_headers,
    should_retry,
)

from . import PROVIDER

__all__ = ["error_from_payload", "error_from_response"]

# What a code or type means where the status alone does not say it all.
_BY_CODE: dict[str, type[BackendError]] = {
    "context_length_exceeded": ContextLengthExceededError,
    "model_not_found": ModelNotFoundError,
    "invalid_api_key": AuthenticationError,
    "rate_limit_exceeded": RateLimitError,
    "server_is_overloaded": OverloadedError,
    "slow_down": OverloadedError,
    "content_filter": ContentFilteredError,
    "invalid_prompt": ContentFilteredError,  # "flagged as potentially violating our usage policy"
    "validation": InvalidRequestError,  # TGI's error_type
    "server_error": ServerError,
    "invalid_request_error": InvalidRequestError,
}
# Out of credit or over a spend limit: a 429 that waiting does not cure.
_QUOTA_CODES = frozenset(
    {
        "insufficient_quota",
        "credit_balance_exhausted",
        "organization_spend_limit_exceeded",
        "project_spend_limit_exceeded",
        "organization_usage_limit_exceeded",
    }
)
# "This model's maximum context length is 128000 tokens. However, ..." (OpenAI, DeepSeek,
# vLLM): the message says it where the code does not.
_CONTEXT_MESSAGE = re.compile(r"maximum context length|context length|context window", re.I)

_HINTS: dict[type[BackendError], str] = {
    AuthenticationError: "check the API key (api_key or OPENAI_API_KEY)",
    PermissionDeniedError: "check the key's organization, project and model access",
    ModelNotFoundError: "check the model id (on Azure: the deployment name)",
    RateLimitError: "slow down, or retry after the delay the API gave",
    OverloadedError: "the service is overloaded; retry later",
    ServerError: "an error on the server's side; retrying may succeed",
    ContextLengthExceededError: "shorten the conversation or lower max_tokens",
    ContentFilteredError: "the content was filtered by the provider's policy",
}
_QUOTA_HINT = "out of credit or over a spend limit: check billing; retrying will not help"


def error_from_response(
    status: int, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> BackendError:
    """The error for an HTTP error answer of the Chat Completions or Models API."""
    parsed = ErrorBody.parse(body)
    message = parsed.message or f"HTTP {status} with an empty body"
    error_class, retryable, hint = _classify(status, parsed)
    if status == 404 and (not parsed.structured or _wrong_path(parsed)):
        error_class, hint = InvalidRequestError, "nothing at this URL: check base_url"
    elif status == 409:
        retryable = True
    advice = should_retry(headers)
    return build_error(
        error_class,
        f"{message} ({hint})" if hint else message,
        provider=PROVIDER,
        status_code=status,
        error_type=parsed.code or parsed.error_type,
        request_id=request_id_from_headers(headers) or parsed.request_id,
        retry_after=parse_retry_after(headers, now),
        retryable=advice if advice is not None else retryable,
        field=parsed.param,
    )


def error_from_payload(payload: Any) -> BackendError:
    """The error for an ``{"error": ...}`` object sent with a ``200`` (mid-stream, say)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if code is None and isinstance(payload, dict) and isinstance(payload.get("error_type"), str):
        code = payload["error_type"]  # TGI: {"error": "...", "error_type": "validation"}
    status = code if isinstance(code, int) and 400 <= code < 600 else None
    try:
        parsed = ErrorBody.parse(json.dumps(payload).encode())
    except (TypeError, ValueError):
        parsed = ErrorBody(message=str(error))
    if isinstance(code, str) and parsed.code is None:
        parsed = dataclasses.replace(parsed, code=code)
    error_class, retryable, hint = _classify(status, parsed)
    message = parsed.message or "the server reported an error without a message"
    return build_error(
        error_class,
        f"{message} ({hint})" if hint else message,
        provider=PROVIDER,
        status_code=status,
        error_type=parsed.code or parsed.error_type or (str(code) if code else None),
        request_id=parsed.request_id,
        retryable=retryable,
        field=parsed.param,
    )


def _wrong_path(parsed: ErrorBody) -> bool:
    # OpenAI's answer for a path it does not serve ("Invalid URL (POST /chat/completions)",
    # a base_url without /v1, say): JSON, but not about a model.
    return parsed.code != "model_not_found" and parsed.message.startswith("Invalid URL")


def _classify(status: int | None, parsed: ErrorBody) -> tuple[type[BackendError], bool | None, str]:
    """``(error type, retryable or None for its default, hint)`` for an error answer."""
    codes = {parsed.code, parsed.error_type} - {None}
    if codes & _QUOTA_CODES:
        return RateLimitError, False, _QUOTA_HINT
    by_status = error_class_for_status(status) if status is not None else ServerError
    error_class = by_status
    for code in (parsed.code, parsed.error_type):
        refined = _BY_CODE.get(code or "")
        if refined is None:
            continue
        undocumented = status is None or (status not in STATUS_ERRORS and status < 500)
        if undocumented or issubclass(refined, by_status) or refined is ContentFilteredError:
            error_class = refined
        break
    if error_class is InvalidRequestError and _CONTEXT_MESSAGE.search(parsed.message):
        error_class = ContextLengthExceededError
    return error_class, None, _HINTS.get(error_class, "")
