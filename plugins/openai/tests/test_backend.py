"""OpenAIBackend over httpx (scripted with pytest-httpx): the contract, end to end.

OpenAI itself, another OpenAI-compatible server, and Azure OpenAI (its v1 API and its
dated, per-deployment API): where each request goes, how it authenticates, and how its
answer, stream, errors and health come back.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from pytest_httpx import HTTPXMock

from tachikoma_backend_openai import OpenAIBackend, OpenAIBackendConfig, plugin
from tachikoma_backend_openai._scripting import (
    completion_body,
    error_body,
    sse_bytes,
    stream_chunks,
)
from tachikoma_backends_core import (
    BackendTimeoutError,
    CompletionRequest,
    ConfigurationError,
    FinishReason,
    InvalidRequestError,
    Message,
    NetworkError,
    RateLimitError,
    ServerError,
    StreamProtocolError,
    ToolCall,
    Usage,
)
from tachikoma_backends_core.streaming import MissingUsageWarning

pytestmark = pytest.mark.anyio

KEY = "sk-openai-backend-test"
OPENAI = "https://api.openai.com/v1"
CHAT = f"{OPENAI}/chat/completions"
MODELS = f"{OPENAI}/models"
SERVER = "http://127.0.0.1:8000/v1"  # a local OpenAI-compatible server (vLLM, say)
AZURE = "https://res.openai.azure.com"
AZURE_KEY = "azure-resource-key-0123456789"
ENTRA_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.entra-test-token"
API_VERSION = "2024-10-21"
ANSWERING = "gpt-5.4-mini-2026-03-17"  # the snapshot OpenAI names in its answers
REQUEST = CompletionRequest(messages=[Message.system("Be brief."), Message.user("Hi")])
USAGE = Usage(20, 9, cache_read_input_tokens=1024, reasoning_tokens=4)
SSE = {"content-type": "text/event-stream"}


@pytest.fixture(autouse=True)
def no_provider_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's OPENAI_* and AZURE_* variables must not steer these tests."""
    for variable in OpenAIBackendConfig.environment_variables().values():
        monkeypatch.delenv(variable, raising=False)


def backend(**settings: Any) -> OpenAIBackend:
    settings.setdefault("api_key", SecretStr(KEY))
    return OpenAIBackend(OpenAIBackendConfig(**settings))


def azure(**settings: Any) -> OpenAIBackend:
    settings.setdefault("azure_endpoint", AZURE)
    return OpenAIBackend(OpenAIBackendConfig(**settings))


def text_stream(text: str = "Hello there, how are you today?") -> bytes:
    return sse_bytes(stream_chunks(model=ANSWERING, text=text, usage=USAGE))


def sent_body(httpx_mock: HTTPXMock) -> dict[str, Any]:
    sent = httpx_mock.get_request()
    assert sent is not None
    body: dict[str, Any] = json.loads(sent.content)
    return body


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


# -- OpenAI: the request, the answer, the stream --------------------------------------


async def test_complete_sends_the_wire_request_and_decodes_the_answer(
    httpx_mock: HTTPXMock,
) -> None:
    httpx_mock.add_response(
        url=CHAT,
        method="POST",
        json=completion_body(model=ANSWERING, text="Bonjour!", usage=USAGE),
    )
    settings = {"organization": "org-test", "project": "proj_test"}
    async with backend(extra_headers={"x-team": "search"}, **settings) as openai:
        response = await openai.complete(REQUEST.with_max_tokens(256))
    assert response.text == "Bonjour!"
    assert response.model == ANSWERING
    assert response.finish_reason is FinishReason.STOP
    assert response.usage == USAGE
    sent = httpx_mock.get_request()
    assert sent is not None
    assert str(sent.url) == CHAT
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["openai-organization"] == "org-test"
    assert sent.headers["openai-project"] == "proj_test"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["x-team"] == "search"
    assert "api-key" not in sent.headers
    body = json.loads(sent.content)
    assert body["model"] == "gpt-5.4-mini", "the default model"
    assert body["messages"] == [
        {"role": "developer", "content": "Be brief."},  # a reasoning model
        {"role": "user", "content": "Hi"},
    ]
    assert body["max_completion_tokens"] == 256
    assert "max_tokens" not in body
    assert "stream" not in body
    assert "stream_options" not in body


async def test_no_organization_or_project_headers_unless_configured(
    httpx_mock: HTTPXMock,
) -> None:
    httpx_mock.add_response(url=CHAT, json=completion_body(model=ANSWERING, text="ok"))
    async with backend() as openai:
        await openai.complete(REQUEST)
    sent = httpx_mock.get_request()
    assert sent is not None
    assert "openai-organization" not in sent.headers
    assert "openai-project" not in sent.headers


async def test_stream_names_the_answering_model_and_ends_with_the_usage_chunk(
    httpx_mock: HTTPXMock,
) -> None:
    body = RecordingStream([text_stream()])
    httpx_mock.add_response(url=CHAT, headers=SSE, stream=body)
    async with backend() as openai:
        stream = await openai.complete_stream(REQUEST)
        async with stream:
            assert stream.model == ANSWERING, "the model of the first chunk"
            chunks = [chunk async for chunk in stream]
    assert "".join(c.delta for c in chunks) == "Hello there, how are you today?"
    assert [c.finish_reason for c in chunks if c.finish_reason] == [FinishReason.STOP]
    assert chunks[-1].usage == USAGE, "the usage-only chunk's usage, on the final chunk"
    assert stream.usage == USAGE
    sent = sent_body(httpx_mock)
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert body.closed


async def test_a_stream_of_parallel_tool_calls_collects_each_call(httpx_mock: HTTPXMock) -> None:
    calls = [
        ToolCall(id="call_paris", name="get_weather", arguments='{"city": "Paris"}'),
        ToolCall(id="call_tokyo", name="get_weather", arguments='{"city": "Tokyo"}'),
        ToolCall(id="call_clock", name="get_time", arguments='{"zone": "Europe/Paris"}'),
    ]
    chunks = stream_chunks(
        model=ANSWERING, tool_calls=calls, finish_reason="tool_calls", interleave=True
    )
    httpx_mock.add_response(url=CHAT, headers=SSE, content=sse_bytes(chunks))
    async with backend() as openai, await openai.complete_stream(REQUEST) as stream:
        response = await stream.collect()
    assert [(c.id, c.name, c.parsed_arguments()) for c in response.tool_calls] == [
        (call.id, call.name, call.parsed_arguments()) for call in calls
    ]
    assert response.finish_reason is FinishReason.TOOL_CALLS


async def test_a_stream_without_usage_ends_at_done(httpx_mock: HTTPXMock) -> None:
    chunks = stream_chunks(model=ANSWERING, text="Short.", include_usage=False)
    httpx_mock.add_response(url=CHAT, headers=SSE, content=sse_bytes(chunks))
    async with backend(stream_usage=False) as openai:
        stream = await openai.complete_stream(REQUEST)
        with pytest.warns(MissingUsageWarning, match="finished without reporting usage"):
            response = await stream.collect()
    assert response.usage == Usage(), "no usage came: zero, with the warning"
    assert response.text == "Short."
    assert response.finish_reason is FinishReason.STOP
    assert "stream_options" not in sent_body(httpx_mock)


async def test_leaving_a_stream_early_closes_the_http_response(httpx_mock: HTTPXMock) -> None:
    raw = text_stream("A long story that goes on and on and on, past where anyone stays.")
    body = RecordingStream([raw[:400], raw[400:]])
    httpx_mock.add_response(url=CHAT, headers=SSE, stream=body)
    async with backend() as openai:
        async with await openai.complete_stream(REQUEST) as stream:
            async for _chunk in stream:
                break
        assert body.closed


# -- errors -------------------------------------------------------------------------------


async def test_request_errors_raise_from_the_await_of_a_stream(httpx_mock: HTTPXMock) -> None:
    error = error_body("Rate limit reached for requests", "requests", "rate_limit_exceeded")
    httpx_mock.add_response(
        url=CHAT,
        status_code=429,
        headers={"retry-after": "3", "x-request-id": "req_rate"},
        json=error,
    )
    async with backend() as openai:
        with pytest.raises(RateLimitError) as raised:
            await openai.complete_stream(REQUEST)
    assert raised.value.retry_after == 3.0
    assert raised.value.request_id == "req_rate"
    assert raised.value.retryable is True


async def test_an_error_event_instead_of_the_first_chunk_fails_the_await(
    httpx_mock: HTTPXMock,
) -> None:
    event = error_body("The server had an error while processing your request.", "server_error")
    body = RecordingStream([f"data: {json.dumps(event)}\n\ndata: [DONE]\n\n".encode()])
    httpx_mock.add_response(url=CHAT, headers=SSE, stream=body)
    async with backend() as openai:
        with pytest.raises(ServerError, match="processing your request"):
            await openai.complete_stream(REQUEST)
    assert body.closed


async def test_a_mid_stream_error_comes_after_the_text_before_it(httpx_mock: HTTPXMock) -> None:
    opening = stream_chunks(model=ANSWERING, text="Once upon a time")[:3]  # role, two pieces
    event = error_body("The server had an error while processing your request.", "server_error")
    raw = sse_bytes(opening, done=False) + f"data: {json.dumps(event)}\n\ndata: [DONE]\n\n".encode()
    httpx_mock.add_response(url=CHAT, headers=SSE, content=raw)
    async with backend() as openai:
        stream = await openai.complete_stream(REQUEST)
        first = await stream.__anext__()
        second = await stream.__anext__()
        with pytest.raises(ServerError):
            await stream.__anext__()
    assert first.delta + second.delta == "Once upon a time"
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
    body = RecordingStream([text_stream()[:300]], error=error)
    httpx_mock.add_response(url=CHAT, headers=SSE, stream=body)
    async with backend() as openai:
        stream = await openai.complete_stream(REQUEST)
        with pytest.raises(expected):
            await stream.collect()
    assert body.closed


async def test_a_stream_cut_before_its_finish_is_a_protocol_error(httpx_mock: HTTPXMock) -> None:
    chunks = stream_chunks(model=ANSWERING, text="Once upon a time")[:-2]  # no finish, no usage
    httpx_mock.add_response(url=CHAT, headers=SSE, content=sse_bytes(chunks, done=False))
    async with backend() as openai:
        stream = await openai.complete_stream(REQUEST)
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
    httpx_mock.add_exception(error, url=CHAT)
    async with backend() as openai:
        with pytest.raises(expected) as raised:
            await openai.complete(REQUEST)
    assert raised.value.retryable is True  # type: ignore[attr-defined]
    assert raised.value.provider == "openai"  # type: ignore[attr-defined]


async def test_transport_errors_of_a_stream_are_typed(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=CHAT)
    async with backend() as openai:
        with pytest.raises(NetworkError):
            await openai.complete_stream(REQUEST)


async def test_the_backend_never_retries(httpx_mock: HTTPXMock) -> None:
    error = error_body("The server is overloaded.", "server_error", "server_error")
    httpx_mock.add_response(url=CHAT, status_code=500, json=error, is_reusable=True)
    async with backend() as openai:
        with pytest.raises(ServerError) as raised:
            await openai.complete(REQUEST)
    assert raised.value.retryable is True, "retryable, yet not retried here"
    async with plugin.create(api_key=KEY, max_retries=0) as made:
        with pytest.raises(ServerError):
            await made.complete(REQUEST)
    assert len(httpx_mock.get_requests()) == 2, "one attempt per call"


async def test_max_tokens_above_the_model_limit_sends_nothing() -> None:
    async with backend(model="gpt-4o") as openai:
        with pytest.raises(InvalidRequestError) as raised:
            await openai.complete(REQUEST.with_max_tokens(16_385))
    assert raised.value.field == "max_tokens"


# -- health, closing, info -------------------------------------------------------------


async def test_health_check(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=MODELS, method="GET", json={"object": "list", "data": []})
    httpx_mock.add_response(url=MODELS, method="GET", status_code=503, json=error_body("x", "y"))
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=MODELS, method="GET")
    async with backend() as openai:
        assert [await openai.health_check() for _ in range(3)] == [True, False, False]
    assert httpx_mock.get_requests()[0].headers["authorization"] == f"Bearer {KEY}"


async def test_aclose_is_idempotent_and_a_closed_backend_says_so() -> None:
    openai = backend()
    await openai.aclose()
    await openai.aclose()
    with pytest.raises(ConfigurationError, match="closed"):
        await openai.complete(REQUEST)
    with pytest.raises(ConfigurationError, match="closed"):
        await openai.complete_stream(REQUEST)
    assert await openai.health_check() is False


def test_info_uses_the_documented_limits_of_the_configured_model() -> None:
    info = backend().info
    assert (info.name, info.default_model) == ("openai", "gpt-5.4-mini")
    caps = info.capabilities
    assert (caps.max_context_tokens, caps.max_output_tokens) == (400_000, 128_000)
    assert (caps.streaming, caps.tool_calling, caps.vision, caps.json_mode) == (
        True,
        True,
        True,
        True,
    )
    assert "gpt-5.4-mini" in info.available_models
    assert "gpt-4o" in info.available_models


def test_info_falls_back_for_a_model_it_does_not_know() -> None:
    info = backend(base_url=SERVER, model="my-local-llama").info
    assert info.default_model == "my-local-llama"
    caps = info.capabilities
    assert (caps.max_context_tokens, caps.max_output_tokens) == (128_000, 16_384)
    assert (caps.streaming, caps.tool_calling, caps.vision, caps.json_mode) == (
        True,
        True,
        True,
        True,
    )
    assert info.available_models == ["my-local-llama"], "another server's models are unknown"


# -- settings --------------------------------------------------------------------------


def test_a_missing_key_for_openai_fails_at_creation_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY") as raised:
        plugin.create()
    assert raised.value.field == "api_key"
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        OpenAIBackend(OpenAIBackendConfig(api_key=SecretStr("")))


async def test_another_server_needs_no_key_and_gets_no_authorization_header(
    httpx_mock: HTTPXMock,
) -> None:
    httpx_mock.add_response(
        url=f"{SERVER}/chat/completions", json=completion_body(model="my-local-llama", text="hi")
    )
    async with plugin.create(base_url=SERVER, model="my-local-llama", max_retries=0) as local:
        response = await local.complete(REQUEST.with_max_tokens(64))
    assert response.text == "hi"
    sent = httpx_mock.get_request()
    assert sent is not None
    assert "authorization" not in sent.headers
    assert "api-key" not in sent.headers
    body = json.loads(sent.content)
    # Not OpenAI, an unknown model: the roles and fields every compatible server knows.
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["max_tokens"] == 64


async def test_another_server_given_a_key_gets_it_as_a_bearer_token(
    httpx_mock: HTTPXMock,
) -> None:
    httpx_mock.add_response(
        url=f"{SERVER}/chat/completions", json=completion_body(model="m", text="hi")
    )
    async with backend(base_url=SERVER, model="m") as local:
        await local.complete(REQUEST)
    sent = httpx_mock.get_request()
    assert sent is not None
    assert sent.headers["authorization"] == f"Bearer {KEY}"


async def test_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-from-env-000")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://proxy.example/v1/")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-from-env")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_from_env")
    config = plugin.configure()
    assert config.api_key is not None
    assert config.api_key.get_secret_value() == "sk-openai-from-env-000"
    assert config.base_url == "https://proxy.example/v1"
    assert (config.organization, config.project) == ("org-from-env", "proj_from_env")
    assert config.azure_endpoint is None
    assert plugin.configure(base_url="http://explicit.example").base_url == (
        "http://explicit.example"
    )

    httpx_mock.add_response(
        url="https://proxy.example/v1/chat/completions", json=completion_body(model="m", text="ok")
    )
    async with plugin.create(max_retries=0) as made:
        await made.complete(REQUEST)
    sent = httpx_mock.get_request()
    assert sent is not None
    assert sent.headers["authorization"] == "Bearer sk-openai-from-env-000"
    assert sent.headers["openai-organization"] == "org-from-env"
    assert sent.headers["openai-project"] == "proj_from_env"


async def test_an_explicit_base_url_beats_azure_openai_endpoint_in_the_environment(
    monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock
) -> None:
    # As in the official SDK, where base_url and azure_endpoint exclude each other: the
    # environment fills in what was not given, it does not redirect what was.
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", AZURE)
    httpx_mock.add_response(json=completion_body(model="m", text="local"))
    async with plugin.create(base_url=SERVER, api_key=KEY, model="m", max_retries=0) as local:
        await local.complete(REQUEST)
    sent = httpx_mock.get_request()
    assert sent is not None
    assert str(sent.url) == f"{SERVER}/chat/completions", "sent to Azure instead"
    assert sent.headers.get("authorization") == f"Bearer {KEY}"
    assert "api-key" not in sent.headers


async def test_an_explicit_azure_credential_beats_the_environment(
    monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock
) -> None:
    # The official SDK: "An explicit credential takes precedence over Azure credential
    # environment variables" (openai/lib/azure.py).
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", ENTRA_TOKEN)
    httpx_mock.add_response(
        url=f"{AZURE}/openai/v1/chat/completions", json=completion_body(model="m", text="ok")
    )
    async with azure(azure_api_key=AZURE_KEY) as openai:
        await openai.complete(REQUEST)
    sent = httpx_mock.get_request()
    assert sent is not None
    assert sent.headers.get("api-key") == AZURE_KEY
    assert "authorization" not in sent.headers, "the environment's token was sent instead"


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"base_url": "api.openai.com/v1"}, "base_url"),
        ({"extra_headers": {"Authorization": "Bearer sk-openai-smuggled"}}, "extra_headers"),
        ({"extra_headers": {"api-key": "sk-openai-smuggled"}}, "extra_headers"),
        ({"extra_headers": {"OpenAI-Organization": "org-smuggled"}}, "extra_headers"),
        ({"azure_endpoint": "foo"}, "azure_endpoint"),
        ({"azure_deployment": ""}, "azure_deployment"),
        ({"max_retries": -1}, "max_retries"),
        ({"timeout": 0}, "timeout"),
        ({"model": ""}, "model"),
        ({"modle": "typo"}, "modle"),
    ],
)
def test_invalid_settings_name_the_field(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        OpenAIBackendConfig(api_key=SecretStr(KEY), **settings)
    assert raised.value.field == field
    assert "sk-openai-smuggled" not in str(raised.value)


async def test_created_backends_stream_whatever_wraps_them(httpx_mock: HTTPXMock) -> None:
    # plugin.create wraps the backend (the core's retry loop): only the contract counts.
    httpx_mock.add_response(url=CHAT, headers=SSE, content=text_stream("Done."))
    async with plugin.create(api_key=KEY) as made:
        assert isinstance(made.inner, OpenAIBackend)
        response = await (await made.complete_stream(REQUEST)).collect()
    assert response.text == "Done."
    assert response.finish_reason is FinishReason.STOP
    assert response.usage == USAGE


# -- Azure OpenAI ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("deployment", "sent_model"),
    [(None, "gpt-4o"), ("dep-1", "dep-1")],
    ids=["model-names-the-deployment", "azure_deployment"],
)
async def test_azure_v1_api(httpx_mock: HTTPXMock, deployment: str | None, sent_model: str) -> None:
    httpx_mock.add_response(
        url=f"{AZURE}/openai/v1/chat/completions",
        method="POST",
        json=completion_body(model="gpt-4o-2024-11-20", text="Hello from Azure"),
    )
    async with azure(azure_api_key=AZURE_KEY, azure_deployment=deployment) as openai:
        response = await openai.complete(REQUEST.model_copy(update={"model": "gpt-4o"}))
    assert response.text == "Hello from Azure"
    sent = httpx_mock.get_request()
    assert sent is not None
    assert str(sent.url) == f"{AZURE}/openai/v1/chat/completions"
    assert sent.headers["api-key"] == AZURE_KEY
    assert "authorization" not in sent.headers
    assert json.loads(sent.content)["model"] == sent_model


@pytest.mark.parametrize(
    ("deployment", "request_model", "path_deployment"),
    [("dep-1", None, "dep-1"), (None, "my-gpt4o", "my-gpt4o"), ("dep-1", "other", "dep-1")],
    ids=["azure_deployment", "request-model", "azure_deployment-wins"],
)
async def test_azure_dated_api(
    httpx_mock: HTTPXMock, deployment: str | None, request_model: str | None, path_deployment: str
) -> None:
    url = f"{AZURE}/openai/deployments/{path_deployment}/chat/completions?api-version={API_VERSION}"
    httpx_mock.add_response(
        url=url, method="POST", json=completion_body(model="gpt-4o-2024-11-20", text="Dated")
    )
    async with azure(
        azure_api_key=AZURE_KEY, api_version=API_VERSION, azure_deployment=deployment
    ) as openai:
        response = await openai.complete(REQUEST.model_copy(update={"model": request_model}))
    assert response.text == "Dated"
    sent = httpx_mock.get_request()
    assert sent is not None
    assert str(sent.url) == url
    assert sent.headers["api-key"] == AZURE_KEY
    assert "authorization" not in sent.headers


async def test_azure_dated_api_streams(httpx_mock: HTTPXMock) -> None:
    # Azure's first chunk carries only the prompt's filter results: no model, no choices.
    prompt_filter = {
        "id": "",
        "object": "",
        "created": 0,
        "model": "",
        "choices": [],
        "prompt_filter_results": [
            {"prompt_index": 0, "content_filter_results": {"hate": {"filtered": False}}}
        ],
    }
    chunks = [prompt_filter, *stream_chunks(model="gpt-4o-2024-11-20", text="Filtered? No.")]
    url = f"{AZURE}/openai/deployments/dep-1/chat/completions?api-version={API_VERSION}"
    httpx_mock.add_response(url=url, headers=SSE, content=sse_bytes(chunks))
    async with azure(
        azure_api_key=AZURE_KEY, api_version=API_VERSION, azure_deployment="dep-1"
    ) as openai:
        stream = await openai.complete_stream(REQUEST)
        async with stream:
            response = await stream.collect()
    assert response.text == "Filtered? No."
    assert stream.model == "gpt-4o-2024-11-20"
    assert sent_body(httpx_mock)["stream"] is True


async def test_azure_entra_token_is_a_bearer_token_and_no_api_key(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=f"{AZURE}/openai/v1/chat/completions", json=completion_body(model="m", text="ok")
    )
    async with azure(azure_ad_token=ENTRA_TOKEN, azure_api_key=AZURE_KEY) as openai:
        await openai.complete(REQUEST)
    sent = httpx_mock.get_request()
    assert sent is not None
    assert sent.headers["authorization"] == f"Bearer {ENTRA_TOKEN}"
    assert "api-key" not in sent.headers


async def test_azure_takes_api_key_when_no_azure_api_key(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=f"{AZURE}/openai/v1/chat/completions", json=completion_body(model="m", text="ok")
    )
    async with azure(api_key=AZURE_KEY) as openai:
        await openai.complete(REQUEST)
    sent = httpx_mock.get_request()
    assert sent is not None
    assert sent.headers["api-key"] == AZURE_KEY
    assert "authorization" not in sent.headers


@pytest.mark.parametrize("api_version", [None, API_VERSION])
def test_azure_without_credentials_fails_at_creation(api_version: str | None) -> None:
    with pytest.raises(ConfigurationError, match="AZURE_OPENAI_API_KEY") as raised:
        plugin.create(azure_endpoint=AZURE, api_version=api_version)
    assert raised.value.field == "azure_api_key"
    with pytest.raises(ConfigurationError):
        azure(azure_api_key=SecretStr(""), azure_ad_token=SecretStr(""))


async def test_azure_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", f"{AZURE}/")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    monkeypatch.setenv("OPENAI_API_VERSION", API_VERSION)
    url = f"{AZURE}/openai/deployments/gpt-4o/chat/completions?api-version={API_VERSION}"
    httpx_mock.add_response(url=url, json=completion_body(model="gpt-4o", text="env"))
    async with plugin.create(model="gpt-4o", max_retries=0) as made:
        response = await made.complete(REQUEST)
    assert response.text == "env"
    sent = httpx_mock.get_request()
    assert sent is not None
    assert sent.headers["api-key"] == AZURE_KEY


@pytest.mark.parametrize(
    ("api_version", "models"),
    [(None, f"{AZURE}/openai/v1/models"), (API_VERSION, f"{AZURE}/openai/models?api-version=")],
    ids=["v1", "dated"],
)
async def test_azure_health_check(
    httpx_mock: HTTPXMock, api_version: str | None, models: str
) -> None:
    url = models + (api_version or "")
    httpx_mock.add_response(url=url, method="GET", json={"object": "list", "data": []})
    httpx_mock.add_response(url=url, method="GET", status_code=503, json=error_body("x", "y"))
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=url, method="GET")
    async with azure(azure_api_key=AZURE_KEY, api_version=api_version) as openai:
        assert [await openai.health_check() for _ in range(3)] == [True, False, False]
    assert httpx_mock.get_requests()[0].headers["api-key"] == AZURE_KEY


def test_azure_info_names_the_configured_deployment() -> None:
    info = azure(azure_api_key=AZURE_KEY, model="gpt-4o").info
    assert (info.name, info.default_model) == ("openai", "gpt-4o")
    assert (info.capabilities.max_context_tokens, info.capabilities.max_output_tokens) == (
        128_000,
        16_384,
    )
    assert info.available_models == ["gpt-4o"]
