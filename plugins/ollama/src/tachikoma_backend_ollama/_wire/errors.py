"""Map Ollama's error answers onto the Tachikoma error tree.

Ollama answers an error with a status and ``{"error": "<message>"}`` (its own 404 and 405
for an unknown path are plain text, and a proxy's page may be HTML). The status decides,
the message refines:

| Status | Message | Raised |
|---|---|---|
| 404 | ``model 'X' not found`` | ``ModelNotFoundError``, saying ``tachikoma pull X`` |
| 404 | plain text (``404 page not found``) | ``InvalidRequestError``: check ``base_url`` |
| 400 | ``... does not support tools`` | ``InvalidRequestError`` naming ``tools`` |
| 400 | ``... does not support thinking`` | ``InvalidRequestError`` naming ``reasoning_effort`` |
| 400, 500 | ``... exceeds the context length`` | ``ContextLengthExceededError`` |
| 400 | anything else | ``InvalidRequestError`` |
| 401, 403 | | ``AuthenticationError``, ``PermissionDeniedError`` (a proxy, or ollama.com) |
| 429 | | ``RateLimitError`` |
| 503 | ``server busy`` (the request queue is full) | ``OverloadedError`` |
| 500, other 5xx | | ``ServerError`` |

An ``{"error": ...}`` line in a stream (after the ``200``) is mapped by its message alone
(`error_from_message`); so is a failed pull, whose ``pull model manifest: file does not
exist`` means no such model in the registry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from tachikoma_backends_core.errors import (
    BackendError,
    ContextLengthExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    OverloadedError,
    ServerError,
)
from tachikoma_backends_core.http import (
    ErrorBody,
    build_error,
    error_class_for_status,
    parse_retry_after,
    request_id_from_headers,
)

from . import PROVIDER

__all__ = ["error_from_message", "error_from_response", "pull_hint"]

_MODEL_NOT_FOUND = re.compile(r"""model ['"](?P<name>[^'"]+)['"] not found""")
_CONTEXT = re.compile(r"context length|context size|exceeds the available context", re.I)
_UNSUPPORTED = re.compile(r"does not support (?P<what>tools|thinking)")
_FIELD_FOR = {"tools": "tools", "thinking": "reasoning_effort"}


def pull_hint(model: str) -> str:
    """What to do about a model that is not there."""
    return f"pull it first: tachikoma pull {model} (or: ollama pull {model})"


def error_from_response(
    status: int, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> BackendError:
    """The error for an HTTP error answer of the native API."""
    parsed = ErrorBody.parse(body)
    message = parsed.message or f"HTTP {status} with an empty body"
    if status == 404 and not parsed.structured:
        error_class: type[BackendError] = InvalidRequestError
        message += " (nothing at this URL: check base_url, or OLLAMA_HOST)"
    else:
        error_class = _refine(error_class_for_status(status), message)
    field, message = _field_and_hint(error_class, message)
    return build_error(
        error_class,
        message,
        provider=PROVIDER,
        status_code=status,
        request_id=request_id_from_headers(headers),
        retry_after=parse_retry_after(headers, now),
        field=field,
    )


def error_from_message(message: str, *, pulling: str | None = None) -> BackendError:
    """The error for an ``{"error": message}`` line after the ``200`` (a stream, a pull)."""
    if pulling is not None and "file does not exist" in message:
        return ModelNotFoundError(
            f"{message} (there is no model {pulling!r} in the registry: check its name at "
            "https://ollama.com/library)",
            provider=PROVIDER,
        )
    error_class = _refine(ServerError, message)
    field, text = _field_and_hint(error_class, message)
    return build_error(error_class, text, provider=PROVIDER, field=field)


def _refine(by_status: type[BackendError], message: str) -> type[BackendError]:
    if _MODEL_NOT_FOUND.search(message):
        return ModelNotFoundError
    if "server busy" in message:
        return OverloadedError
    if _CONTEXT.search(message):
        return ContextLengthExceededError
    if _UNSUPPORTED.search(message):
        return InvalidRequestError
    return by_status


def _field_and_hint(error_class: type[BackendError], message: str) -> tuple[str | None, str]:
    """The field at fault, if the message names one, and the message with what to do."""
    if error_class is ModelNotFoundError:
        found = _MODEL_NOT_FOUND.search(message)
        model = found["name"] if found else "MODEL"
        return None, f"{message.removesuffix(', try pulling it first')} ({pull_hint(model)})"
    unsupported = _UNSUPPORTED.search(message)
    if unsupported:
        what = unsupported["what"]
        return _FIELD_FOR[what], f"{message} (choose a model that supports {what})"
    if error_class is OverloadedError:
        return None, f"{message} (the server's request queue is full; retry later)"
    return None, message
