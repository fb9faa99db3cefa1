"""Error mapping: OpenAI's statuses and codes, its imitators' variants, headers, secrets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tachikoma_backend_openai._wire.decode import decode_completion
from tachikoma_backend_openai._wire.errors import error_from_payload, error_from_response
from tachikoma_backends_core import (
    AuthenticationError,
    BackendError,
    BackendTimeoutError,
    ContentFilteredError,
    ContextLengthExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from tachikoma_backends_core.errors import register_secret

HEADERS = {"x-request-id": "req_8c3a0f"}


def body(
    message: str,
    error_type: str | None = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> bytes:
    """An error body as https://platform.openai.com/docs/guides/error-codes shows it."""
    error = {"message": message, "type": error_type, "param": param, "code": code}
    return json.dumps({"error": error}).encode()


CONTEXT = (
    "This model's maximum context length is 128000 tokens. However, your messages resulted "
    "in 130412 tokens. Please reduce the length of the messages."
)
DEEPSEEK_CONTEXT = (
    "This model's maximum context length is 65536 tokens. However, you requested 70215 tokens "
    "(66119 in the messages, 4096 in the completion). Please reduce the length of the messages "
    "or completion."
)
AZURE_FILTER = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management "
    "policy. Please modify your prompt and retry."
)
QUOTA = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors."
)

# (id, status, body, expected class, retryable, field)
TABLE: list[tuple[str, int, bytes, type[BackendError], bool, str | None]] = [
    (
        "400-invalid-request",
        400,
        body("Invalid type for 'messages[0].content'.", param="messages[0].content"),
        InvalidRequestError,
        False,
        "messages[0].content",
    ),
    (
        "400-unsupported-parameter",
        400,
        body(
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
            "'max_completion_tokens' instead.",
            code="unsupported_parameter",
            param="max_tokens",
        ),
        InvalidRequestError,
        False,
        "max_tokens",
    ),
    (
        "400-context-length-exceeded",
        400,
        body(CONTEXT, code="context_length_exceeded", param="messages"),
        ContextLengthExceededError,
        False,
        "messages",
    ),
    (
        "400-deepseek-context",
        400,
        body(DEEPSEEK_CONTEXT, code="invalid_request_error"),
        ContextLengthExceededError,
        False,
        None,
    ),
    (
        "400-azure-content-filter",
        400,
        body(AZURE_FILTER, error_type=None, code="content_filter", param="prompt"),
        ContentFilteredError,
        False,
        None,
    ),
    (
        "401-invalid-api-key",
        401,
        body("Incorrect API key provided: sk-proj-****abcd.", code="invalid_api_key"),
        AuthenticationError,
        False,
        None,
    ),
    (
        "401-no-code",
        401,
        body("You didn't provide an API key."),
        AuthenticationError,
        False,
        None,
    ),
    (
        "403-no-model-access",
        403,
        body("Project `proj_abc` does not have access to model `gpt-5.4`"),
        PermissionDeniedError,
        False,
        None,
    ),
    (
        "404-model-not-found",
        404,
        body(
            "The model `gpt-9` does not exist or you do not have access to it.",
            code="model_not_found",
        ),
        ModelNotFoundError,
        False,
        None,
    ),
    ("409-conflict", 409, body("Conflict", error_type="conflict"), InvalidRequestError, True, None),
    (
        "422-unprocessable",
        422,
        body("Unprocessable entity", param="tools"),
        InvalidRequestError,
        False,
        "tools",
    ),
    (
        "429-rate-limit",
        429,
        body("Rate limit reached for gpt-4o.", error_type="tokens", code="rate_limit_exceeded"),
        RateLimitError,
        True,
        None,
    ),
    (
        "429-insufficient-quota-type-and-code",
        429,
        body(QUOTA, error_type="insufficient_quota", code="insufficient_quota"),
        RateLimitError,
        False,
        None,
    ),
    (
        "429-insufficient-quota-type",
        429,
        body(QUOTA, error_type="insufficient_quota"),
        RateLimitError,
        False,
        None,
    ),
    (
        "429-insufficient-quota-code",
        429,
        body(QUOTA, error_type=None, code="insufficient_quota"),
        RateLimitError,
        False,
        None,
    ),
    *[
        (
            f"429-{code}",
            429,
            body("You are over your spend limit.", error_type=None, code=code),
            RateLimitError,
            False,
            None,
        )
        for code in (
            "credit_balance_exhausted",
            "organization_spend_limit_exceeded",
            "project_spend_limit_exceeded",
            "organization_usage_limit_exceeded",
        )
    ],
    (
        "500-server-error",
        500,
        body("The server had an error while processing your request.", error_type="server_error"),
        ServerError,
        True,
        None,
    ),
    (
        "502-html",
        502,
        b"<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>",
        ServerError,
        True,
        None,
    ),
    (
        "503-server-is-overloaded",
        503,
        body(
            "The server is overloaded. Please try again later.",
            error_type="server_error",
            code="server_is_overloaded",
        ),
        OverloadedError,
        True,
        None,
    ),
    (
        "503-slow-down",
        503,
        body("Please reduce your request rate.", error_type="server_error", code="slow_down"),
        OverloadedError,
        True,
        None,
    ),
    (
        "503-plain",
        503,
        body("Service Unavailable", error_type="server_error"),
        ServerError,
        True,
        None,
    ),
    (
        "504-timeout",
        504,
        body("Gateway timeout", error_type="server_error"),
        BackendTimeoutError,
        True,
        None,
    ),
]


@pytest.mark.parametrize(
    ("status", "raw", "expected", "retryable", "field"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_status_and_code_map_to_the_error_tree(
    status: int,
    raw: bytes,
    expected: type[BackendError],
    retryable: bool,
    field: str | None,
) -> None:
    error = error_from_response(status, HEADERS, raw)
    assert type(error) is expected
    assert error.retryable is retryable
    assert error.status_code == status
    assert error.provider == "openai"
    assert error.request_id == "req_8c3a0f"
    assert getattr(error, "field", None) == field
    if raw.startswith(b"{"):
        sent = json.loads(raw)["error"]
        assert sent["message"] in error.message
        assert error.provider_error_type == (sent["code"] or sent["type"])
    else:
        assert "502 Bad Gateway" in error.message
        assert error.provider_error_type is None


def test_every_spend_limit_and_quota_error_says_retrying_will_not_help() -> None:
    for row in TABLE:
        if row[0].startswith("429-") and row[0] != "429-rate-limit":
            message = error_from_response(429, {}, row[2]).message
            assert "billing" in message
            assert "retrying will not help" in message


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after-ms": "250", "retry-after": "1"}, 0.25),
        ({}, None),
        ({"retry-after": "soon"}, None),
    ],
    ids=["ms", "seconds", "ms-wins", "none", "unreadable"],
)
def test_rate_limit_retry_after(headers: dict[str, str], retry_after: float | None) -> None:
    raw = body("Rate limit reached", error_type="requests", code="rate_limit_exceeded")
    error = error_from_response(429, headers, raw)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == retry_after
    assert error.retryable is True


def test_a_quota_error_keeps_its_retry_after_but_is_not_retryable() -> None:
    raw = body(QUOTA, error_type="insufficient_quota", code="insufficient_quota")
    error = error_from_response(429, {"retry-after": "20"}, raw)
    assert isinstance(error, RateLimitError)
    assert (error.retry_after, error.retryable) == (20.0, False)


@pytest.mark.parametrize(
    ("status", "header", "retryable"),
    [
        (500, "false", False),
        (503, "false", False),
        (429, "false", False),
        (400, "true", True),
        (500, "TRUE", True),
        (500, "maybe", True),  # not advice: the default stands
    ],
)
def test_x_should_retry_overrides_the_default(status: int, header: str, retryable: bool) -> None:
    raw = body("x", error_type="server_error" if status >= 500 else "invalid_request_error")
    assert error_from_response(status, {"x-should-retry": header}, raw).retryable is retryable


def test_no_request_id_header_gives_none() -> None:
    assert error_from_response(500, {}, body("x", error_type="server_error")).request_id is None


@pytest.mark.parametrize(
    "raw",
    [b"<html><body><h1>404 Not Found</h1></body></html>", b"", b"Not Found"],
    ids=["html", "empty", "text"],
)
def test_a_404_that_is_not_a_json_error_points_at_base_url(raw: bytes) -> None:
    error = error_from_response(404, HEADERS, raw)
    assert type(error) is InvalidRequestError
    assert "base_url" in error.message
    assert error.status_code == 404


def test_openais_own_invalid_url_404_points_at_base_url() -> None:
    # OpenAI answers a path it does not serve (a base_url without /v1, say) with a JSON
    # 404 that has no code: not a model it does not know.
    raw = body("Invalid URL (POST /chat/completions)")
    error = error_from_response(404, HEADERS, raw)
    assert type(error) is InvalidRequestError
    assert "base_url" in error.message


@pytest.mark.parametrize(
    ("status", "expected"),
    [(500, ServerError), (400, InvalidRequestError), (401, AuthenticationError)],
)
def test_an_empty_body_still_says_what_happened(status: int, expected: type[BackendError]) -> None:
    error = error_from_response(status, {}, b"")
    assert type(error) is expected
    assert f"HTTP {status}" in error.message


def test_long_non_json_bodies_are_shortened() -> None:
    error = error_from_response(502, {}, b"x" * 5000)
    assert type(error) is ServerError
    assert len(error.message) < 500


def test_hints_say_what_to_do() -> None:
    auth = error_from_response(401, {}, body("Incorrect API key", code="invalid_api_key"))
    assert "OPENAI_API_KEY" in auth.message
    missing = error_from_response(
        404, {}, body("The model `x` does not exist", code="model_not_found")
    )
    assert "model" in missing.message
    context = error_from_response(400, {}, body(CONTEXT, code="context_length_exceeded"))
    assert "max_tokens" in context.message
    assert "retry" in error_from_response(503, {}, body("x", "server_error", "slow_down")).message


# --- errors sent with a 200 -------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected", "status", "retryable"),
    [
        (  # OpenAI, mid-stream
            {
                "error": {
                    "message": "The server experienced an error while processing your request.",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            },
            ServerError,
            None,
            True,
        ),
        (  # OpenRouter: the code is an HTTP status
            {"error": {"code": 429, "message": "Rate limit exceeded: free-models-per-min."}},
            RateLimitError,
            429,
            True,
        ),
        (
            {"error": {"code": 402, "message": "Insufficient credits. Add more using /credits"}},
            PermissionDeniedError,
            402,
            False,
        ),
        (
            {"error": {"code": 502, "message": "Provider returned error", "metadata": {}}},
            ServerError,
            502,
            True,
        ),
        (
            {"error": {"code": 400, "message": DEEPSEEK_CONTEXT}},
            ContextLengthExceededError,
            400,
            False,
        ),
        (
            {"error": {"message": "over", "type": "server_error", "code": "server_is_overloaded"}},
            OverloadedError,
            None,
            True,
        ),
        (
            {"error": {"message": CONTEXT, "type": "invalid_request_error"}},
            ContextLengthExceededError,
            None,
            False,
        ),
        (
            {"error": {"message": QUOTA, "type": "insufficient_quota"}},
            RateLimitError,
            None,
            False,
        ),
        ({"error": "plain string"}, ServerError, None, True),  # nativ, TGI
        ({"error": {"code": 3280, "message": "Tool call id was call_1"}}, ServerError, None, True),
    ],
    ids=[
        "openai-server-error",
        "openrouter-429",
        "openrouter-402",
        "openrouter-502",
        "openrouter-context",
        "overloaded",
        "context-by-message",
        "quota",
        "plain-string",
        "int-code-not-a-status",
    ],
)
def test_error_from_payload(
    payload: dict[str, Any],
    expected: type[BackendError],
    status: int | None,
    retryable: bool,
) -> None:
    error = error_from_payload(payload)
    assert type(error) is expected
    assert error.status_code == status
    assert error.retryable is retryable
    assert error.provider == "openai"
    error_object = payload["error"]
    message = error_object if isinstance(error_object, str) else error_object["message"]
    assert message in error.message


def test_an_integer_code_is_kept_as_the_error_type() -> None:
    error = error_from_payload({"error": {"code": 429, "message": "slow down"}})
    assert error.provider_error_type == "429"
    assert error_from_payload({"error": "plain string"}).provider_error_type is None


def test_an_error_without_a_message_still_says_something() -> None:
    assert error_from_payload({"error": {"type": "server_error"}}).message


# --- secrets ----------------------------------------------------------------------------

SECRET = "sk-openai-SECRET-abcdefghijklmnop"
ECHO = f"Incorrect API key provided: {SECRET}. You can find your API key at https://platform.openai.com/account/api-keys."


@pytest.fixture
def secret() -> str:
    register_secret(SECRET)
    return SECRET


def shown(error: BackendError) -> list[str]:
    return [str(error), repr(error), error.message, str(error.args)]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500, 503])
def test_an_error_body_echoing_the_key_never_shows_it(secret: str, status: int) -> None:
    raw = body(ECHO, code="invalid_api_key")
    error = error_from_response(status, {"x-request-id": secret}, raw)
    for text in shown(error):
        assert secret not in text
    assert "[REDACTED]" in error.message
    assert "Incorrect API key provided" in error.message


@pytest.mark.parametrize(
    "raw",
    [ECHO.encode(), ("<html>" + "x" * 250 + ECHO + "</html>").encode()],
    ids=["text", "cut-near-the-key"],
)
def test_a_non_json_body_echoing_the_key_never_shows_it(secret: str, raw: bytes) -> None:
    error = error_from_response(502, {}, raw)
    for text in shown(error):
        assert secret not in text
        assert secret[:12] not in text


def test_an_error_payload_echoing_the_key_never_shows_it(secret: str) -> None:
    for payload in (
        {"error": {"message": ECHO, "type": "invalid_request_error", "code": "invalid_api_key"}},
        {"error": {"code": 401, "message": ECHO}},
        {"error": ECHO},
    ):
        with pytest.raises(BackendError) as raised:
            decode_completion(json.dumps(payload).encode(), fallback_model="m")
        for text in shown(raised.value):
            assert secret not in text
