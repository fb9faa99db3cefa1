"""The error tree: kinds, retryability, copies, and what errors show."""

from __future__ import annotations

import copy
import pickle

import pytest

from tachikoma_backends_core import (
    AuthenticationError,
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
    ContentFilteredError,
    ContextLengthExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    NetworkError,
    OverloadedError,
    PermissionDeniedError,
    PluginLoadError,
    RateLimitError,
    ServerError,
    StreamProtocolError,
    ToolArgumentError,
)
from tachikoma_backends_core.errors import redact, register_secret

RETRYABLE = [RateLimitError, NetworkError, BackendTimeoutError, ServerError, OverloadedError]
NOT_RETRYABLE = [
    AuthenticationError,
    PermissionDeniedError,
    InvalidRequestError,
    ContextLengthExceededError,
    ToolArgumentError,
    ModelNotFoundError,
    ContentFilteredError,
    StreamProtocolError,
    ConfigurationError,
    PluginLoadError,
]


@pytest.mark.parametrize("error_type", RETRYABLE + NOT_RETRYABLE)
def test_every_error_is_a_backend_error_with_common_attributes(
    error_type: type[BackendError],
) -> None:
    error = error_type("it failed", provider="acme", status_code=418, request_id="req_1")
    assert isinstance(error, BackendError)
    assert (error.message, error.provider, error.status_code, error.request_id) == (
        "it failed",
        "acme",
        418,
        "req_1",
    )
    assert error.retryable is (error_type in RETRYABLE)


def test_retryable_can_be_overridden_by_the_code_that_saw_the_failure() -> None:
    assert ServerError("not implemented", status_code=501, retryable=False).retryable is False


def test_rate_limit_carries_retry_after_in_seconds() -> None:
    error = RateLimitError("slow down", retry_after=2, provider="acme", status_code=429)
    assert error.retry_after == 2.0
    assert isinstance(error.retry_after, float)
    assert "retry_after=2.0" in str(error)
    assert repr(error).startswith("RateLimitError(message='slow down'")


def test_specific_kinds_are_catchable_at_a_coarser_level() -> None:
    assert issubclass(OverloadedError, ServerError)
    assert issubclass(ContextLengthExceededError, InvalidRequestError)
    assert issubclass(ToolArgumentError, InvalidRequestError)
    assert issubclass(InvalidRequestError, ValueError)


def test_str_names_the_field_and_provider_facts() -> None:
    error = InvalidRequestError("max_tokens must be positive", field="max_tokens", provider="x")
    assert str(error) == "max_tokens must be positive (field=max_tokens, provider=x)"


@pytest.mark.parametrize(
    "error",
    [
        RateLimitError("slow", retry_after=3.5, provider="p", status_code=429),
        ToolArgumentError("bad", key="path", tool_name="read_file"),
        PluginLoadError("broken", plugin="x", distribution="x-dist"),
    ],
    ids=["rate-limit", "tool-argument", "plugin-load"],
)
def test_copies_and_pickles_keep_every_attribute(error: BackendError) -> None:
    for clone in (copy.copy(error), pickle.loads(pickle.dumps(error))):
        assert type(clone) is type(error)
        assert vars(clone) == vars(error)


def test_registered_secrets_never_appear_in_errors() -> None:
    sentinel = "sk-test-SENTINEL-errors-0123456789"
    register_secret(sentinel)
    error = AuthenticationError(f"Incorrect API key provided: {sentinel}", status_code=401)
    for shown in (str(error), repr(error), error.message, str(error.args)):
        assert sentinel not in shown
        assert "[REDACTED]" in shown
    assert redact(f"a {sentinel} b") == "a [REDACTED] b"


def test_short_values_are_not_treated_as_secrets() -> None:
    register_secret("abc")
    assert redact("abc") == "abc"
