"""Every failure a backend can report, as one tree you can catch at any level.

```text
BackendError                      base: message, provider, status_code, retryable, ...
├── RateLimitError                retryable; retry_after (seconds), as any error, if said
├── NetworkError                  retryable; connection refused, reset, DNS, TLS
├── BackendTimeoutError           retryable; connect/read/total timeout elapsed
├── ServerError                   retryable; provider-side 5xx
│   └── OverloadedError           retryable; provider at capacity (e.g. Anthropic 529)
├── AuthenticationError           missing, invalid or revoked credentials (401)
├── PermissionDeniedError         credentials valid, access refused (403)
├── InvalidRequestError           the request is malformed; ``field`` names the culprit
│   ├── ContextLengthExceededError    prompt + output exceed the model's context window
│   └── ToolArgumentError             a tool call's arguments are missing/mistyped; ``key``
├── ModelNotFoundError            the model id is unknown to the provider (404)
├── ContentFilteredError          the provider refused or filtered the content
├── StreamProtocolError           a stream was malformed or ended before it finished
├── ConfigurationError            a backend's configuration is invalid or incomplete
└── PluginLoadError               a provider plugin could not be discovered or loaded
```

Why a tree: callers decide what to do from the *kind* of failure (retry it, fix the
request, ask for a key), never from a provider's message text. ``retryable`` and
``retry_after`` are data set by the code that saw the failure, so a retry policy never
guesses.

No error ever shows a secret: every message goes through `redact`, which masks any
value registered as a secret (configuration models register their ``SecretStr`` fields).
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

__all__ = [
    "AuthenticationError",
    "BackendError",
    "BackendTimeoutError",
    "ConfigurationError",
    "ContentFilteredError",
    "ContextLengthExceededError",
    "InvalidRequestError",
    "ModelNotFoundError",
    "NetworkError",
    "OverloadedError",
    "PermissionDeniedError",
    "PluginLoadError",
    "RateLimitError",
    "RateLimiterUnavailableError",
    "ServerError",
    "StreamProtocolError",
    "ToolArgumentError",
    "redact",
    "register_secret",
]

_REDACTED = "[REDACTED]"
# Short values (e.g. "x" in a test) would mask ordinary words; real keys are long.
_MIN_SECRET_LENGTH = 6
_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Remember ``value`` so that `redact` masks it wherever it appears.

    Configuration models call this for each ``SecretStr`` they hold, so a provider
    that echoes the key back in an error body cannot leak it through our errors.
    """
    if len(value) >= _MIN_SECRET_LENGTH:
        with _secrets_lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """Return ``text`` with every registered secret replaced by ``[REDACTED]``."""
    if not _secrets:
        return text
    for secret in tuple(_secrets):
        if secret in text:
            text = text.replace(secret, _REDACTED)
    return text


class BackendError(Exception):
    """Base of every error a backend raises.

    Attributes:
        message: what failed, in words meant for a person (already redacted).
        provider: the backend's name (``"claude"``, ``"mock"``) when known.
        status_code: the HTTP status, for errors that came from an HTTP response.
        retryable: whether trying the same request again may succeed.
        provider_error_type: the provider's own error type (``"overloaded_error"``).
        request_id: the provider's request id, to quote in a support ticket.
        retry_after: the seconds the provider asked us to wait before trying again, if
            it said (a ``retry-after`` header comes with 429s, but also 503s and 529s).
    """

    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        retryable: bool | None = None,
        provider_error_type: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        message = redact(str(message))
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status_code = status_code
        self.retryable = self.default_retryable if retryable is None else retryable
        # Provider-supplied strings too: a provider may echo anything back in a header.
        self.provider_error_type = (
            None if provider_error_type is None else redact(provider_error_type)
        )
        self.request_id = None if request_id is None else redact(request_id)
        self.retry_after = None if retry_after is None else float(retry_after)

    def _details(self) -> dict[str, Any]:
        """Extra facts shown in ``str``/``repr``; subclasses add their own."""
        return {
            "provider": self.provider,
            "status_code": self.status_code,
            "provider_error_type": self.provider_error_type,
            "request_id": self.request_id,
            "retry_after": self.retry_after,
        }

    def __str__(self) -> str:
        facts = ", ".join(f"{k}={v}" for k, v in self._details().items() if v is not None)
        return f"{self.message} ({facts})" if facts else self.message

    def __repr__(self) -> str:
        fields = {"message": self.message, **self._details(), "retryable": self.retryable}
        shown = ", ".join(f"{k}={v!r}" for k, v in fields.items() if v is not None)
        return f"{type(self).__name__}({shown})"


class RateLimitError(BackendError):
    """The provider refused the request for now (HTTP 429).

    ``retry_after`` is the number of seconds the provider asked us to wait, if it said
    (every error carries it; here it may also be given by position).
    """

    default_retryable = True

    def __init__(self, message: str, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, retry_after=retry_after, **kwargs)


class NetworkError(BackendError):
    """The provider could not be reached, or the connection broke."""

    default_retryable = True


class BackendTimeoutError(BackendError):
    """A connect, read or total timeout elapsed before the provider answered."""

    default_retryable = True


class ServerError(BackendError):
    """The provider failed on its side (HTTP 5xx)."""

    default_retryable = True


class OverloadedError(ServerError):
    """The provider is at capacity (Anthropic's 529, OpenAI's 503 "overloaded")."""


class AuthenticationError(BackendError):
    """Credentials are missing, invalid or revoked (HTTP 401). Check the API key."""


class PermissionDeniedError(BackendError):
    """Credentials are valid but not allowed to do this (HTTP 403)."""


class _FieldError(BackendError):
    """Shared by the errors that can point at the field (or fields) at fault."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        problems: list[tuple[str, str]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        # A field name may come from the wire (a provider's "param"): redacted as well.
        self.field = None if field is None else redact(field)
        self.problems = [(redact(name), redact(text)) for name, text in problems or []] or (
            [(self.field, self.message)] if self.field else []
        )

    def _details(self) -> dict[str, Any]:
        return {"field": self.field, **super()._details()}


class InvalidRequestError(_FieldError, ValueError):
    """The request is malformed. ``field`` names the (first) offending field when known.

    ``problems`` lists every ``(field, message)`` found, so one error reports them all.
    Also a ``ValueError``, so code that validates input generically still catches it.
    """


class ContextLengthExceededError(InvalidRequestError):
    """The prompt plus requested output do not fit the model's context window."""


class ToolArgumentError(InvalidRequestError):
    """A tool call's arguments are not valid JSON, or ``key`` is missing or mistyped."""

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        tool_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, field=key, **kwargs)
        self.key = key
        self.tool_name = tool_name

    def _details(self) -> dict[str, Any]:
        details = super()._details()
        details.pop("field")
        return {"tool_name": self.tool_name, "key": self.key, **details}


class ModelNotFoundError(BackendError):
    """The provider does not know the requested model (or this key cannot use it)."""


class ContentFilteredError(BackendError):
    """The provider refused to produce, or filtered, the content."""


class RateLimiterUnavailableError(BackendError):
    """A shared rate limiter's store (Redis) could not be reached within its timeout.

    Raised instead of sending a request the shared quota could not admit (the limiter
    fails closed); retryable, since the store may be back by the next attempt.
    """

    default_retryable = True


class StreamProtocolError(BackendError):
    """A stream was malformed, or ended before the provider said it was finished."""


class ConfigurationError(_FieldError):
    """A backend's configuration is invalid or incomplete; ``field`` names the culprit.

    ``problems`` lists every ``(field, message)`` found, as for ``InvalidRequestError``.
    """


class PluginLoadError(BackendError):
    """A provider plugin could not be found, imported, or is not a ``BackendPlugin``."""

    def __init__(
        self,
        message: str,
        *,
        plugin: str | None = None,
        distribution: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.plugin = plugin
        self.distribution = distribution

    def _details(self) -> dict[str, Any]:
        return {"plugin": self.plugin, "distribution": self.distribution, **super()._details()}
