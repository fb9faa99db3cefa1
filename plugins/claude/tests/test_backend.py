"""ClaudeBackend over httpx (scripted with pytest-httpx): the contract, end to end."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from pytest_httpx import HTTPXMock

from tachikoma_backend_claude import ClaudeBackend, ClaudeBackendConfig, plugin
from tachikoma_backends_core import (
    BackendTimeoutError,
    CompletionRequest,
    ConfigurationError,
    FinishReason,
    InvalidRequestError,
    Message,
    NetworkError,
    OverloadedError,
    RateLimitError,
    StreamProtocolError,
    Usage,
)

pytestmark = pytest.mark.anyio

BASE = "http://claude.example"
MESSAGES = f"{BASE}/v1/messages"
TRANSCRIPTS = Path(__file__).parent / "transcripts"
REQUEST = CompletionRequest(messages=[Message.system("Be brief."), Message.user("Hi")])


def backend(**settings: Any) -> ClaudeBackend:
    return ClaudeBackend(
        ClaudeBackendConfig(api_key=SecretStr("sk-ant-backend-test"), base_url=BASE, **settings)
    )


class RecordingStream(httpx.AsyncByteStream):
    """A response body that records whether it was closed, and can fail half-way."""

    def __init__(self, pieces: list[bytes], error: Exception | None = None) -> None:
        self.pieces = pieces
        self.error = error
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece
        if self.error is not None:
            raise self.error

    async def aclose(self) -> None:
        self.closed = True


async def test_complete_sends_the_wire_request_and_decodes_the_answer(
    httpx_mock: HTTPXMock,
) -> None:
    httpx_mock.add_response(
        url=MESSAGES, method="POST", content=(TRANSCRIPTS / "text_message.json").read_bytes()
    )
    async with backend(extra_headers={"anthropic-beta": "some-beta"}) as claude:
        response = await claude.complete(REQUEST)
    assert response.text.startswith("Bonjour!")
    assert response.model == "claude-sonnet-4-5-20250929"
    sent = httpx_mock.get_request()
    assert sent is not None
    assert sent.headers["x-api-key"] == "sk-ant-backend-test"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["anthropic-beta"] == "some-beta"
    body = json.loads(sent.content)
    assert body["system"] == "Be brief."
    assert body["max_tokens"] == 4096
    assert body["model"] == "claude-sonnet-5-5"
    assert "stream" not in body


async def test_stream_yields_chunks_names_the_answering_model_and_closes(
    httpx_mock: HTTPXMock,
) -> None:
    body = RecordingStream([(TRANSCRIPTS / "tool_use_stream.sse").read_bytes()])
    httpx_mock.add_response(url=MESSAGES, stream=body)
    async with backend() as claude:
        stream = await claude.complete_stream(REQUEST)
        async with stream:
            response = await stream.collect()
    assert stream.model == "claude-sonnet-4-5-20250929", "the model from message_start"
    assert [c.name for c in response.tool_calls] == ["get_weather", "get_time"]
    assert json.loads(httpx_mock.get_request().content)["stream"] is True  # type: ignore[union-attr]
    assert body.closed


async def test_leaving_a_stream_early_closes_the_http_response(httpx_mock: HTTPXMock) -> None:
    raw = (TRANSCRIPTS / "text_stream.sse").read_bytes()
    body = RecordingStream([raw[:400], raw[400:]])
    httpx_mock.add_response(url=MESSAGES, stream=body)
    async with backend() as claude:
        async with await claude.complete_stream(REQUEST) as stream:
            async for _chunk in stream:
                break
        assert body.closed


async def test_a_stream_left_early_reports_the_usage_message_start_gave(
    httpx_mock: HTTPXMock,
) -> None:
    httpx_mock.add_response(
        url=MESSAGES, content=(TRANSCRIPTS / "tool_use_stream.sse").read_bytes()
    )
    async with backend() as claude, await claude.complete_stream(REQUEST) as stream:
        assert stream.usage is not None, "known from message_start, before any chunk"
        await stream.__anext__()
    assert stream.usage == Usage(
        472, 2, cache_creation_input_tokens=1024, cache_read_input_tokens=2048
    )


async def test_request_errors_raise_from_the_await_of_a_stream(httpx_mock: HTTPXMock) -> None:
    error = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    httpx_mock.add_response(url=MESSAGES, status_code=429, headers={"retry-after": "3"}, json=error)
    async with backend() as claude:
        with pytest.raises(RateLimitError) as raised:
            await claude.complete_stream(REQUEST)
    assert raised.value.retry_after == 3.0


async def test_an_error_event_instead_of_message_start_fails_the_await(
    httpx_mock: HTTPXMock,
) -> None:
    event = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    body = RecordingStream([f"event: error\ndata: {json.dumps(event)}\n\n".encode()])
    httpx_mock.add_response(url=MESSAGES, stream=body)
    async with backend() as claude:
        with pytest.raises(OverloadedError):
            await claude.complete_stream(REQUEST)
    assert body.closed


async def test_a_mid_stream_error_event_comes_after_the_chunks_before_it(
    httpx_mock: HTTPXMock,
) -> None:
    httpx_mock.add_response(
        url=MESSAGES, content=(TRANSCRIPTS / "overloaded_midstream.sse").read_bytes()
    )
    async with backend() as claude:
        stream = await claude.complete_stream(REQUEST)
        first = await stream.__anext__()
        with pytest.raises(OverloadedError):
            await stream.__anext__()
    assert first.delta == "Once upon"
    assert stream.closed


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (httpx.ReadError("connection reset"), NetworkError),
        (httpx.ReadTimeout("slow"), BackendTimeoutError),
        (httpx.RemoteProtocolError("peer closed"), NetworkError),
    ],
)
async def test_a_connection_failing_mid_stream_is_typed(
    httpx_mock: HTTPXMock, error: Exception, expected: type[Exception]
) -> None:
    raw = (TRANSCRIPTS / "text_stream.sse").read_bytes()
    body = RecordingStream([raw[:500]], error=error)
    httpx_mock.add_response(url=MESSAGES, stream=body)
    async with backend() as claude:
        stream = await claude.complete_stream(REQUEST)
        with pytest.raises(expected):
            await stream.collect()
    assert body.closed


async def test_a_cut_stream_is_a_protocol_error(httpx_mock: HTTPXMock) -> None:
    raw = (TRANSCRIPTS / "text_stream.sse").read_bytes()
    httpx_mock.add_response(url=MESSAGES, content=raw[: raw.index(b"event: message_stop")])
    async with backend() as claude:
        stream = await claude.complete_stream(REQUEST)
        with pytest.raises(StreamProtocolError):
            await stream.collect()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (httpx.ConnectError("refused"), NetworkError),
        (httpx.ConnectTimeout("slow"), BackendTimeoutError),
        (httpx.ReadTimeout("slow"), BackendTimeoutError),
        (httpx.RemoteProtocolError("bad"), NetworkError),
    ],
)
async def test_transport_errors_are_typed(
    httpx_mock: HTTPXMock, error: Exception, expected: type[Exception]
) -> None:
    httpx_mock.add_exception(error, url=MESSAGES)
    async with backend() as claude:
        with pytest.raises(expected) as raised:
            await claude.complete(REQUEST)
    assert raised.value.retryable is True  # type: ignore[attr-defined]


async def test_the_backend_never_retries(httpx_mock: HTTPXMock) -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    httpx_mock.add_response(url=MESSAGES, status_code=529, json=error, is_reusable=True)
    async with backend() as claude:
        with pytest.raises(OverloadedError):
            await claude.complete(REQUEST)
    async with plugin.create(api_key="sk-ant-backend-test", base_url=BASE, max_retries=0) as made:
        with pytest.raises(OverloadedError):
            await made.complete(REQUEST)
    assert len(httpx_mock.get_requests()) == 2, "one attempt per call"


async def test_max_tokens_above_the_model_limit_sends_nothing() -> None:
    async with backend(model="claude-haiku-4-5") as claude:
        with pytest.raises(InvalidRequestError) as raised:
            await claude.complete(REQUEST.with_max_tokens(64_001))
    assert raised.value.field == "max_tokens"


async def test_health_check(httpx_mock: HTTPXMock) -> None:
    models = f"{BASE}/v1/models?limit=1"
    httpx_mock.add_response(url=models, json={"data": []})
    httpx_mock.add_response(url=models, status_code=529, json={"type": "error"})
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=models)
    async with backend() as claude:
        assert [await claude.health_check() for _ in range(3)] == [True, False, False]
    assert httpx_mock.get_requests()[0].headers["x-api-key"] == "sk-ant-backend-test"


async def test_aclose_is_idempotent_and_a_closed_backend_says_so() -> None:
    claude = backend()
    await claude.aclose()
    await claude.aclose()
    with pytest.raises(ConfigurationError, match="closed"):
        await claude.complete(REQUEST)
    assert await claude.health_check() is False


def test_info_uses_the_documented_limits_of_the_configured_model() -> None:
    info = backend(model="claude-opus-4-1").info
    assert (info.name, info.default_model) == ("claude", "claude-opus-4-1")
    assert (info.capabilities.max_context_tokens, info.capabilities.max_output_tokens) == (
        200_000,
        32_000,
    )
    caps = info.capabilities
    assert (caps.streaming, caps.tool_calling, caps.vision, caps.json_mode) == (
        True,
        True,
        True,
        False,
    )
    assert "claude-sonnet-4-5" in info.available_models


def test_a_missing_key_fails_at_creation_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY") as raised:
        plugin.create()
    assert raised.value.field == "api_key"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env-000")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "https://proxy.example/")
    config = plugin.configure()
    assert config.api_key is not None
    assert config.api_key.get_secret_value() == "sk-ant-from-env-000"
    assert config.base_url == "https://proxy.example"
    assert (
        plugin.configure(base_url="http://explicit.example").base_url == "http://explicit.example"
    )


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"base_url": "api.anthropic.com"}, "base_url"),
        ({"extra_headers": {"X-Api-Key": "sk-ant-smuggled"}}, "extra_headers"),
        ({"max_retries": -1}, "max_retries"),
        ({"timeout": 0}, "timeout"),
        ({"modle": "typo"}, "modle"),
    ],
)
def test_invalid_settings_name_the_field(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        ClaudeBackendConfig(api_key=SecretStr("sk-ant-backend-test"), **settings)
    assert raised.value.field == field
    assert "sk-ant-smuggled" not in str(raised.value)


async def test_created_backends_stream_whatever_wraps_them(httpx_mock: HTTPXMock) -> None:
    # plugin.create may wrap the backend (the core's retry loop): only the contract counts.
    httpx_mock.add_response(url=MESSAGES, content=(TRANSCRIPTS / "text_stream.sse").read_bytes())
    async with plugin.create(api_key="sk-ant-backend-test", base_url=BASE) as made:
        response = await (await made.complete_stream(REQUEST)).collect()
    assert response.finish_reason is FinishReason.STOP
    assert response.usage.output_tokens == 15
