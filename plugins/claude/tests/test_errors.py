"""Error mapping: every documented status and type, headers, and bodies of any shape."""

from __future__ import annotations

import json

import pytest

from tachikoma_backend_claude._wire.errors import error_from_event, error_from_response
from tachikoma_backends_core import (
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


def body(error_type: str, message: str = "something") -> bytes:
    return json.dumps(
        {"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_b"}
    ).encode()


# (status, error type, expected class, retryable): https://platform.claude.com/docs/en/api/errors
TABLE = [
    (400, "invalid_request_error", InvalidRequestError, False),
    (401, "authentication_error", AuthenticationError, False),
    (402, "billing_error", PermissionDeniedError, False),
    (403, "permission_error", PermissionDeniedError, False),
    (404, "not_found_error", ModelNotFoundError, False),
    (408, "timeout_error", BackendTimeoutError, True),
    (409, "conflict_error", InvalidRequestError, True),
    (413, "request_too_large", InvalidRequestError, False),
    (429, "rate_limit_error", RateLimitError, True),
    (500, "api_error", ServerError, True),
    (502, "api_error", ServerError, True),
    (503, "api_error", ServerError, True),
    (504, "timeout_error", BackendTimeoutError, True),
    (529, "overloaded_error", OverloadedError, True),
    (422, "some_future_error", InvalidRequestError, False),
    (418, "rate_limit_error", RateLimitError, True),
    (599, "some_future_error", ServerError, True),
]


@pytest.mark.parametrize(
    ("status", "error_type", "expected", "retryable"),
    TABLE,
    ids=[f"{s}-{t}" for s, t, _, _ in TABLE],
)
def test_status_and_type_map_to_the_error_tree(
    status: int, error_type: str, expected: type[BackendError], retryable: bool
) -> None:
    error = error_from_response(status, {"request-id": "req_h"}, body(error_type, "it broke"))
    assert type(error) is expected
    assert error.retryable is retryable
    assert error.status_code == status
    assert error.provider == "claude"
    assert error.provider_error_type == error_type
    assert error.request_id == "req_h", "the request-id header wins"
    assert "it broke" in error.message


@pytest.mark.parametrize(
    "message",
    [
        "prompt is too long: 208310 tokens > 200000 maximum",
        "input length and `max_tokens` exceed context limit: 188240 + 21333 > 200000, "
        "decrease input length or `max_tokens` and try again",
    ],
)
def test_context_overflow_is_its_own_error(message: str) -> None:
    error = error_from_response(400, {}, body("invalid_request_error", message))
    assert isinstance(error, ContextLengthExceededError)
    assert error.retryable is False


def test_validation_messages_name_the_field() -> None:
    message = "max_tokens: 100000 > 64000, which is the maximum allowed number of output tokens"
    error = error_from_response(400, {}, body("invalid_request_error", message))
    assert isinstance(error, InvalidRequestError)
    assert error.field == "max_tokens"


def test_request_id_falls_back_to_the_body() -> None:
    assert error_from_response(500, {}, body("api_error")).request_id == "req_b"


def test_rate_limit_retry_after() -> None:
    error = error_from_response(429, {"retry-after": "2"}, body("rate_limit_error"))
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 2.0
    no_header = error_from_response(429, {}, body("rate_limit_error"))
    assert isinstance(no_header, RateLimitError)
    assert no_header.retry_after is None


@pytest.mark.parametrize(("header", "retryable"), [("true", True), ("false", False)])
def test_x_should_retry_overrides_the_default(header: str, retryable: bool) -> None:
    assert error_from_response(400, {"x-should-retry": header}, b"").retryable is retryable
    assert error_from_response(529, {"x-should-retry": header}, b"").retryable is retryable


@pytest.mark.parametrize(
    ("status", "raw", "expected"),
    [
        (502, b"<html><body>502 Bad Gateway</body></html>", ServerError),
        (503, b"", ServerError),
        (400, b'{"error": "plain string"}', InvalidRequestError),
        (401, b"[1, 2]", AuthenticationError),
        (500, b"\xff\xfe", ServerError),
    ],
    ids=["html", "empty", "string-error", "json-list", "not-utf8"],
)
def test_bodies_that_are_not_anthropic_errors(
    status: int, raw: bytes, expected: type[BackendError]
) -> None:
    error = error_from_response(status, {}, raw)
    assert type(error) is expected
    assert error.provider_error_type is None
    assert error.message


def test_long_non_json_bodies_are_shortened() -> None:
    error = error_from_response(502, {}, b"x" * 5000)
    assert len(error.message) < 500


def test_a_404_that_is_not_about_a_model_points_at_base_url() -> None:
    error = error_from_response(404, {}, b"<html>Not Found</html>")
    assert type(error) is InvalidRequestError
    assert "base_url" in error.message


def test_every_error_says_what_to_do() -> None:
    assert "ANTHROPIC_API_KEY" in error_from_response(401, {}, body("authentication_error")).message
    assert "retry" in error_from_response(529, {}, body("overloaded_error")).message


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            OverloadedError,
        ),
        ({"type": "error", "error": {"type": "api_error", "message": "x"}}, ServerError),
        ({"type": "error", "error": {"type": "rate_limit_error", "message": "x"}}, RateLimitError),
        ({"type": "error", "error": {"type": "brand_new_error", "message": "x"}}, ServerError),
        ({"type": "error"}, ServerError),
        ("not even an object", ServerError),
    ],
    ids=["overloaded", "api", "rate-limit", "unknown", "no-error-object", "not-an-object"],
)
def test_stream_error_events(payload: object, expected: type[BackendError]) -> None:
    error = error_from_event(payload)
    assert type(error) is expected
    assert error.status_code is None
    assert error.retryable is True
