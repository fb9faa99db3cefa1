"""The kit's error helpers: Retry-After in every form, error bodies of every shape, mapping."""

from __future__ import annotations

import json
from email.utils import formatdate

import httpx
import pytest

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
from tachikoma_backends_core.errors import register_secret
from tachikoma_backends_core.http import (
    ErrorBody,
    build_error,
    error_class_for_status,
    error_from_response,
    excerpt,
    parse_retry_after,
    request_id_from_headers,
    should_retry,
)

SECRET = "sk-kit-errors-SECRET-0123456789abcdefghij"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "whenever"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after-ms": "nan", "retry-after": "2"}, 2.0),
        ({"retry-after": " 3 "}, 3.0),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_retry_after_as_an_http_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after({"retry-after": formatdate(now + 30, usegmt=True)}, now=now) == 30.0
    assert parse_retry_after({"retry-after": formatdate(now - 30, usegmt=True)}, now=now) == 0.0


def test_header_names_are_case_insensitive_with_httpx_headers() -> None:
    headers = httpx.Headers({"Retry-After": "4", "X-Should-Retry": "False", "X-Request-ID": "r9"})
    assert parse_retry_after(headers) == 4.0
    assert should_retry(headers) is False
    assert request_id_from_headers(headers) == "r9"


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), (" TRUE ", True), ("false", False), ("maybe", None)]
)
def test_should_retry(value: str, expected: bool | None) -> None:
    assert should_retry({"x-should-retry": value}) is expected


def test_request_id_prefers_the_first_header_named() -> None:
    both = {"request-id": "anthropic", "x-request-id": "openai"}
    assert request_id_from_headers(both) == "anthropic"
    assert request_id_from_headers(both, ("x-request-id",)) == "openai"
    assert request_id_from_headers({}) is None


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, InvalidRequestError),
        (401, AuthenticationError),
        (402, PermissionDeniedError),
        (403, PermissionDeniedError),
        (404, ModelNotFoundError),
        (408, BackendTimeoutError),
        (409, InvalidRequestError),
        (418, InvalidRequestError),
        (429, RateLimitError),
        (500, ServerError),
        (504, BackendTimeoutError),
        (529, OverloadedError),
        (599, ServerError),
    ],
)
def test_the_status_table(status: int, expected: type[BackendError]) -> None:
    assert error_class_for_status(status) is expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"error": {"type": "invalid_request_error", "code": "c", "message": "m", "param": "p"}},
            ErrorBody("invalid_request_error", "c", "m", "p", None, structured=True),
        ),
        (
            {"type": "error", "error": {"type": "t", "message": "m"}, "request_id": "r"},
            ErrorBody("t", None, "m", None, "r", structured=True),
        ),
        (
            {"error": "model 'x' not found"},
            ErrorBody(message="model 'x' not found", structured=True),
        ),
        ({"message": "Forbidden"}, ErrorBody(message="Forbidden", structured=True)),
        ({"detail": "Not Found"}, ErrorBody(message="Not Found", structured=True)),
        ({"error": {"message": None, "type": 5}}, ErrorBody(structured=True)),
    ],
    ids=["openai", "anthropic", "ollama", "message", "detail", "odd-types"],
)
def test_error_bodies_of_every_usual_shape(body: object, expected: ErrorBody) -> None:
    assert ErrorBody.parse(json.dumps(body).encode()) == expected


@pytest.mark.parametrize(
    "raw", [b"", b"   ", b"<html>502 Bad Gateway</html>", b"[1, 2]", b"\xff\xfe", b"null"]
)
def test_bodies_that_are_no_error_object_are_quoted(raw: bytes) -> None:
    parsed = ErrorBody.parse(raw)
    assert parsed.structured is False
    assert parsed.error_type is None
    assert (parsed.message == "") is (raw.strip() == b"")


def test_a_long_body_is_redacted_before_it_is_shortened() -> None:
    register_secret(SECRET)
    # The key straddles the cut at 300 characters: shortening first would show its start.
    raw = ("x" * 290 + SECRET + "y" * 5000).encode()
    message = ErrorBody.parse(raw).message
    for start in range(len(SECRET) - 8):
        assert SECRET[start : start + 8] not in message
    assert len(message) < 400
    assert "5,331 characters" in message


def test_excerpt_shows_short_text_whole_and_says_how_long_long_text_was() -> None:
    assert excerpt("short", 10) == "'short'"
    assert excerpt("a" * 50, 10) == "'aaaaaaaaaa...' (50 characters)"


def test_build_error_passes_each_fact_where_the_class_takes_it() -> None:
    limited = build_error(RateLimitError, "slow", provider="p", retry_after=2.5, status_code=429)
    assert isinstance(limited, RateLimitError)
    assert limited.retry_after == 2.5
    invalid = build_error(InvalidRequestError, "bad", provider="p", field="max_tokens")
    assert isinstance(invalid, InvalidRequestError)
    assert invalid.field == "max_tokens"
    server = build_error(ServerError, "down", provider="p", retryable=False, request_id="r")
    assert (server.retryable, server.request_id, server.provider) == (False, "r", "p")


def answer(status: int, body: object, **headers: str) -> BackendError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return error_from_response(
        status,
        headers,
        raw,
        provider="acme",
        error_types={
            "context_length_exceeded": ContextLengthExceededError,
            "rate_limited": RateLimitError,
            "overloaded": OverloadedError,
        },
        hints={AuthenticationError: "check ACME_API_KEY"},
    )


def test_the_generic_mapping_reads_status_body_and_headers() -> None:
    error = answer(
        429,
        {"error": {"type": "rate_limited", "message": "slow down"}},
        **{"retry-after": "3", "x-request-id": "req_7"},
    )
    assert isinstance(error, RateLimitError)
    assert (error.retry_after, error.request_id, error.provider_error_type) == (
        3.0,
        "req_7",
        "rate_limited",
    )
    assert (error.status_code, error.provider, error.retryable) == (429, "acme", True)


def test_a_type_refines_its_status_but_never_contradicts_it() -> None:
    context = {"error": {"code": "context_length_exceeded", "message": "too long", "param": "m"}}
    refined = answer(400, context)
    assert type(refined) is ContextLengthExceededError
    assert refined.field == "m"
    assert type(answer(503, {"error": {"type": "overloaded", "message": "busy"}})) is (
        OverloadedError
    )
    # A 401 stays an authentication error whatever type the body claims.
    assert type(answer(401, {"error": {"type": "rate_limited", "message": "?"}})) is (
        AuthenticationError
    )
    # An undocumented client status: the type decides.
    assert type(answer(420, {"error": {"type": "rate_limited", "message": "calm"}})) is (
        RateLimitError
    )


def test_hints_say_what_to_do() -> None:
    assert answer(401, {"error": {"message": "bad key"}}).message == "bad key (check ACME_API_KEY)"


def test_a_404_that_is_no_error_object_points_at_base_url() -> None:
    error = answer(404, b"<html>Not Found</html>")
    assert type(error) is InvalidRequestError
    assert "check base_url" in error.message
    assert type(answer(404, {"error": {"message": "model 'x' not found"}})) is ModelNotFoundError


def test_retryable_follows_the_kind_409_and_x_should_retry() -> None:
    assert answer(409, {"error": {"message": "conflict"}}).retryable is True
    assert answer(500, {}, **{"x-should-retry": "false"}).retryable is False
    assert answer(400, {}, **{"x-should-retry": "true"}).retryable is True
    assert answer(400, {}).retryable is False


def test_an_empty_body_still_says_what_failed() -> None:
    error = answer(502, b"")
    assert type(error) is ServerError
    assert error.message == "HTTP 502 with an empty body"
