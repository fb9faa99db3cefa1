"""OllamaBackend over httpx (scripted with pytest-httpx): the contract, end to end.

Where each request goes and what it carries (``stream`` always said, the config's
``num_ctx``, ``keep_alive`` and ``think``), how a whole answer and an NDJSON stream come
back (thinking and tool calls included), how errors, transport failures and health are
typed, and the settings read from the environment (``OLLAMA_HOST`` in Ollama's forms).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from pytest_httpx import HTTPXMock

from tachikoma_backend_ollama import OllamaBackend, OllamaBackendConfig, plugin
from tachikoma_backend_ollama._scripting import chat_answer, chat_lines, ndjson_bytes
from tachikoma_backends_core import (
    BackendTimeoutError,
    CompletionRequest,
    ConfigurationError,
    FinishReason,
    InvalidRequestError,
    Message,
    ModelNotFoundError,
    NetworkError,
    OverloadedError,
    ServerError,
    StreamProtocolError,
    ToolCall,
    ToolDefinition,
    Usage,
)

pytestmark = pytest.mark.anyio

BASE = "http://ollama.test:11434"
CHAT = f"{BASE}/api/chat"
VERSION = f"{BASE}/api/version"
MODEL = "llama3.2"
REQUEST = CompletionRequest(messages=[Message.system("Be brief."), Message.user("Hi")])
USAGE = Usage(26, 9)
NDJSON = {"content-type": "application/x-ndjson"}
STORY = "Once upon a time, a llama left its pasture."
WEATHER = ToolDefinition.builder("get_weather").required_string("city").build()
CALLS = [
    ToolCall(id="call_paris01", name="get_weather", arguments='{"city": "Paris"}'),
    ToolCall(id="call_tokyo02", name="get_weather", arguments='{"city": "Tokyo"}'),
]


@pytest.fixture(autouse=True)
def no_provider_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's OLLAMA_HOST and OLLAMA_API_KEY must not steer these tests."""
    for variable in OllamaBackendConfig.environment_variables().values():
        monkeypatch.delenv(variable, raising=False)


def backend(**settings: Any) -> OllamaBackend:
    settings.setdefault("base_url", BASE)
    return OllamaBackend(OllamaBackendConfig(**settings))


def text_stream(text: str = STORY, **answer: Any) -> bytes:
    return ndjson_bytes(chat_lines(model=MODEL, text=text, usage=USAGE, **answer))


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


# -- the request, the answer, the stream -------------------------------------------------


async def test_complete_sends_the_wire_request_and_decodes_the_answer(
    httpx_mock: HTTPXMock,
) -> None:
    answer = chat_answer(
        model=MODEL, text="Bonjour!", thinking="They said hi.", usage=USAGE, done_reason="stop"
    )
    httpx_mock.add_response(url=CHAT, method="POST", json=answer)
    settings: dict[str, Any] = {"num_ctx": 8192, "keep_alive": "10m", "think": True}
    async with backend(extra_headers={"x-team": "search"}, **settings) as ollama:
        response = await ollama.complete(REQUEST.with_max_tokens(256).with_temperature(0.2))
    assert response.text == "Bonjour!"
    assert response.thinking == "They said hi."
    assert response.model == MODEL
    assert response.finish_reason is FinishReason.STOP
    assert response.usage == USAGE
    sent = httpx_mock.get_request()
    assert sent is not None
    assert str(sent.url) == CHAT
    assert sent.method == "POST"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["accept"] == "application/json"
    assert sent.headers["x-team"] == "search"
    assert "authorization" not in sent.headers, "a local server needs no key"
    body = json.loads(sent.content)
    assert body == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
        "stream": False,
        "options": {"num_ctx": 8192, "num_predict": 256, "temperature": 0.2},
        "think": True,
        "keep_alive": "10m",
    }


async def test_without_settings_only_stream_is_added(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=CHAT, json=chat_answer(model=MODEL, text="ok"))
    async with backend() as ollama:
        await ollama.complete(REQUEST)
    body = sent_body(httpx_mock)
    assert body["stream"] is False, "Ollama streams unless told not to"
    for absent in ("options", "think", "keep_alive", "tools", "format"):
        assert absent not in body


async def test_a_request_model_and_effort_win_over_the_config(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=CHAT, json=chat_answer(model="qwen3:0.6b", text="ok"))
    async with backend(think=True, keep_alive=0, options={"top_k": 20}) as ollama:
        request = REQUEST.with_model("qwen3:0.6b").with_reasoning_effort("none")
        response = await ollama.complete(request)
    assert response.model == "qwen3:0.6b"
    body = sent_body(httpx_mock)
    assert body["model"] == "qwen3:0.6b"
    assert body["think"] is False
    assert body["keep_alive"] == 0
    assert body["options"] == {"top_k": 20}


async def test_a_whole_answer_with_tool_calls(httpx_mock: HTTPXMock) -> None:
    answer = chat_answer(model=MODEL, tool_calls=CALLS, usage=USAGE)
    httpx_mock.add_response(url=CHAT, json=answer)
    async with backend() as ollama:
        response = await ollama.complete(REQUEST.with_tools([WEATHER]))
    assert [(c.id, c.name, c.parsed_arguments()) for c in response.tool_calls] == [
        (c.id, c.name, c.parsed_arguments()) for c in CALLS
    ]
    assert response.finish_reason is FinishReason.TOOL_CALLS
    assert response.content is None
    body = sent_body(httpx_mock)
    assert body["tools"][0]["type"] == "function"
    assert body["tools"][0]["function"]["name"] == "get_weather"


async def test_a_stream_is_decoded_with_its_thinking_and_usage(httpx_mock: HTTPXMock) -> None:
    body = RecordingStream([text_stream(thinking="Let me think about llamas.")])
    httpx_mock.add_response(url=CHAT, headers=NDJSON, stream=body)
    async with backend(num_ctx=16384, keep_alive=300, think="high") as ollama:
        stream = await ollama.complete_stream(REQUEST)
        async with stream:
            assert stream.model == MODEL, "the model the first line names"
            chunks = [chunk async for chunk in stream]
    assert "".join(c.delta for c in chunks) == STORY
    assert "".join(c.thinking for c in chunks) == "Let me think about llamas."
    assert [c.finish_reason for c in chunks if c.finish_reason] == [FinishReason.STOP]
    assert chunks[-1].usage == USAGE
    assert stream.usage == USAGE
    sent = sent_body(httpx_mock)
    assert sent["stream"] is True, "said explicitly"
    assert sent["options"] == {"num_ctx": 16384}
    assert sent["keep_alive"] == 300
    assert sent["think"] == "high"
    assert body.closed


@pytest.mark.parametrize("on_done_line", [False, True], ids=["own-line", "done-line"])
async def test_a_stream_of_tool_calls_collects_each_call(
    httpx_mock: HTTPXMock, on_done_line: bool
) -> None:
    lines = chat_lines(model=MODEL, tool_calls=CALLS, calls_on_done_line=on_done_line)
    httpx_mock.add_response(url=CHAT, headers=NDJSON, content=ndjson_bytes(lines))
    async with backend() as ollama, await ollama.complete_stream(REQUEST) as stream:
        response = await stream.collect()
    assert [(c.id, c.name, c.parsed_arguments()) for c in response.tool_calls] == [
        (c.id, c.name, c.parsed_arguments()) for c in CALLS
    ]
    assert response.finish_reason is FinishReason.TOOL_CALLS


async def test_tool_calls_without_ids_get_numbered_ones(httpx_mock: HTTPXMock) -> None:
    # Ollama before 0.12.10 sent no ids.
    lines = chat_lines(model=MODEL, tool_calls=CALLS)
    for line in lines:
        for call in line["message"].get("tool_calls", ()):
            del call["id"]
    httpx_mock.add_response(url=CHAT, headers=NDJSON, content=ndjson_bytes(lines))
    async with backend() as ollama:
        response = await (await ollama.complete_stream(REQUEST)).collect()
    assert [c.id for c in response.tool_calls] == ["call_0", "call_1"]


async def test_leaving_a_stream_early_closes_the_http_response(httpx_mock: HTTPXMock) -> None:
    raw = text_stream(STORY * 4)
    body = RecordingStream([raw[:300], raw[300:]])
    httpx_mock.add_response(url=CHAT, headers=NDJSON, stream=body)
    async with backend() as ollama:
        async with await ollama.complete_stream(REQUEST) as stream:
            async for _chunk in stream:
                break
        assert body.closed


# -- errors -------------------------------------------------------------------------------


async def test_a_missing_model_raises_from_the_await_with_the_pull_hint(
    httpx_mock: HTTPXMock,
) -> None:
    httpx_mock.add_response(url=CHAT, status_code=404, json={"error": "model 'llama3.2' not found"})
    async with backend() as ollama:
        with pytest.raises(ModelNotFoundError) as raised:
            await ollama.complete_stream(REQUEST)
    assert "tachikoma pull llama3.2" in raised.value.message
    assert raised.value.status_code == 404
    assert raised.value.provider == "ollama"
    assert raised.value.retryable is False


async def test_a_plain_text_404_says_to_check_the_url(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=CHAT, status_code=404, text="404 page not found")
    async with backend() as ollama:
        with pytest.raises(InvalidRequestError, match="check base_url"):
            await ollama.complete(REQUEST)


async def test_a_full_queue_is_overloaded(httpx_mock: HTTPXMock) -> None:
    busy = "server busy, please try again.  maximum pending requests exceeded"
    httpx_mock.add_response(url=CHAT, status_code=503, json={"error": busy})
    async with backend() as ollama:
        with pytest.raises(OverloadedError) as raised:
            await ollama.complete_stream(REQUEST)
    assert raised.value.retryable is True
    assert raised.value.status_code == 503


async def test_an_error_line_instead_of_the_first_line_fails_the_await(
    httpx_mock: HTTPXMock,
) -> None:
    line = {"error": "an error was encountered while running the model"}
    body = RecordingStream([ndjson_bytes([line])])
    httpx_mock.add_response(url=CHAT, headers=NDJSON, stream=body)
    async with backend() as ollama:
        with pytest.raises(ServerError, match="while running the model"):
            await ollama.complete_stream(REQUEST)
    assert body.closed


async def test_a_mid_stream_error_line_comes_after_the_text_before_it(
    httpx_mock: HTTPXMock,
) -> None:
    opening = chat_lines(model=MODEL, text="Once upon a time")[:2]  # two pieces, no done
    error = {"error": "an error was encountered while running the model"}
    httpx_mock.add_response(url=CHAT, headers=NDJSON, content=ndjson_bytes([*opening, error]))
    async with backend() as ollama:
        stream = await ollama.complete_stream(REQUEST)
        first = await stream.__anext__()
        second = await stream.__anext__()
        with pytest.raises(ServerError, match="while running the model"):
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
    httpx_mock.add_response(url=CHAT, headers=NDJSON, stream=body)
    async with backend() as ollama:
        stream = await ollama.complete_stream(REQUEST)
        with pytest.raises(expected):
            await stream.collect()
    assert body.closed


async def test_a_stream_cut_before_done_is_a_protocol_error(httpx_mock: HTTPXMock) -> None:
    lines = chat_lines(model=MODEL, text=STORY)[:-1]  # no done line
    httpx_mock.add_response(url=CHAT, headers=NDJSON, content=ndjson_bytes(lines))
    async with backend() as ollama:
        stream = await ollama.complete_stream(REQUEST)
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
@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_transport_errors_are_typed(
    httpx_mock: HTTPXMock, error: Exception, expected: type[Exception], streamed: bool
) -> None:
    httpx_mock.add_exception(error, url=CHAT)
    async with backend() as ollama:
        call: Callable[[CompletionRequest], Awaitable[object]] = (
            ollama.complete_stream if streamed else ollama.complete
        )
        with pytest.raises(expected) as raised:
            await call(REQUEST)
    assert raised.value.retryable is True  # type: ignore[attr-defined]
    assert raised.value.provider == "ollama"  # type: ignore[attr-defined]


async def test_the_backend_never_retries(httpx_mock: HTTPXMock) -> None:
    error = {"error": "model runner has unexpectedly stopped"}
    httpx_mock.add_response(url=CHAT, status_code=500, json=error, is_reusable=True)
    async with backend() as ollama:
        with pytest.raises(ServerError) as raised:
            await ollama.complete(REQUEST)
    assert raised.value.retryable is True, "retryable, yet not retried here"
    async with plugin.create(base_url=BASE, max_retries=0) as made:
        with pytest.raises(ServerError):
            await made.complete_stream(REQUEST)
    assert len(httpx_mock.get_requests()) == 2, "one attempt per call"


async def test_max_tokens_above_the_context_sends_nothing(httpx_mock: HTTPXMock) -> None:
    async with backend() as ollama:
        with pytest.raises(InvalidRequestError, match="max_tokens") as raised:
            await ollama.complete(REQUEST.with_max_tokens(4097))
        with pytest.raises(InvalidRequestError, match="num_ctx"):
            await ollama.complete_stream(REQUEST.with_max_tokens(5000))
    assert raised.value.field == "max_tokens"
    assert httpx_mock.get_requests() == []


async def test_a_larger_num_ctx_allows_more_tokens(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=CHAT, json=chat_answer(model=MODEL, text="ok"))
    async with backend(num_ctx=32768) as ollama:
        await ollama.complete(REQUEST.with_max_tokens(8192))
    assert sent_body(httpx_mock)["options"] == {"num_ctx": 32768, "num_predict": 8192}


# -- health, closing, info -------------------------------------------------------------


async def test_health_check_asks_for_the_version(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=VERSION, method="GET", json={"version": "0.32.15"})
    httpx_mock.add_response(url=VERSION, method="GET", status_code=503, json={"error": "busy"})
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=VERSION, method="GET")
    async with backend() as ollama:
        assert [await ollama.health_check() for _ in range(3)] == [True, False, False]
    assert [r.method for r in httpx_mock.get_requests()] == ["GET"] * 3


async def test_aclose_is_idempotent_and_a_closed_backend_says_so() -> None:
    ollama = backend()
    await ollama.aclose()
    await ollama.aclose()
    with pytest.raises(ConfigurationError, match="closed"):
        await ollama.complete(REQUEST)
    with pytest.raises(ConfigurationError, match="closed"):
        await ollama.complete_stream(REQUEST)
    assert await ollama.health_check() is False
    assert ollama.started_server is False


def test_info_before_a_model_is_shown() -> None:
    info = backend().info
    assert (info.name, info.default_model) == ("ollama", "llama3.2")
    assert info.available_models == ["llama3.2"]
    caps = info.capabilities
    assert (caps.max_context_tokens, caps.max_output_tokens) == (4096, 4096)
    assert (caps.streaming, caps.tool_calling, caps.json_mode) == (True, True, True)
    assert caps.vision is False, "unknown until /api/show says"


def test_info_uses_num_ctx_and_the_configured_model() -> None:
    info = backend(model="qwen3:0.6b", num_ctx=40960).info
    assert info.default_model == "qwen3:0.6b"
    caps = info.capabilities
    assert (caps.max_context_tokens, caps.max_output_tokens) == (40960, 40960)


# -- settings --------------------------------------------------------------------------


async def test_an_api_key_is_sent_as_a_bearer_token(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=CHAT, json=chat_answer(model=MODEL, text="ok"))
    httpx_mock.add_response(url=VERSION, json={"version": "0.32.15"})
    async with backend(api_key=SecretStr("ollama-key-0123")) as ollama:
        await ollama.complete(REQUEST)
        assert await ollama.health_check() is True
    for sent in httpx_mock.get_requests():
        assert sent.headers["authorization"] == "Bearer ollama-key-0123"


async def test_an_empty_api_key_sends_no_authorization(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=CHAT, json=chat_answer(model=MODEL, text="ok"))
    async with backend(api_key=SecretStr("")) as ollama:
        await ollama.complete(REQUEST)
    sent = httpx_mock.get_request()
    assert sent is not None
    assert "authorization" not in sent.headers


async def test_ollama_api_key_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock
) -> None:
    monkeypatch.setenv("OLLAMA_API_KEY", "ollama-env-key-777")
    httpx_mock.add_response(url=CHAT, json=chat_answer(model=MODEL, text="ok"))
    async with plugin.create(base_url=BASE, max_retries=0) as made:
        await made.complete(REQUEST)
    sent = httpx_mock.get_request()
    assert sent is not None
    assert sent.headers["authorization"] == "Bearer ollama-env-key-777"


@pytest.mark.parametrize(
    ("value", "chat_url"),
    [
        ("gpu-box", "http://gpu-box:11434/api/chat"),
        ("gpu-box:11500", "http://gpu-box:11500/api/chat"),
        (":11500", "http://127.0.0.1:11500/api/chat"),
        ("0.0.0.0", "http://127.0.0.1:11434/api/chat"),
        ("0.0.0.0:9000", "http://127.0.0.1:9000/api/chat"),
        ("http://10.0.0.7", "http://10.0.0.7:80/api/chat"),
        ("https://example.com/ollama/", "https://example.com:443/ollama/api/chat"),
        ("[::1]:11500", "http://[::1]:11500/api/chat"),
        ("::1", "http://[::1]:11434/api/chat"),
        (' "gpu-box" ', "http://gpu-box:11434/api/chat"),
        ("", "http://127.0.0.1:11434/api/chat"),
    ],
)
async def test_ollama_host_from_the_environment_in_its_forms(
    monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock, value: str, chat_url: str
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", value)
    httpx_mock.add_response(url=chat_url, json=chat_answer(model=MODEL, text="ok"))
    async with plugin.create(max_retries=0) as made:
        response = await made.complete(REQUEST)
    assert response.text == "ok"
    sent = httpx_mock.get_request()
    assert sent is not None
    assert httpx.URL(str(sent.url)) == httpx.URL(chat_url)
    expected_base = chat_url.removesuffix("/api/chat")
    assert plugin.configure().base_url == expected_base
    assert OllamaBackendConfig().base_url == expected_base


async def test_an_explicit_base_url_beats_ollama_host(
    monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "gpu-box:11500")
    httpx_mock.add_response(url=CHAT, json=chat_answer(model=MODEL, text="ok"))
    async with plugin.create(base_url="ollama.test", max_retries=0) as made:
        await made.complete(REQUEST)
    sent = httpx_mock.get_request()
    assert sent is not None
    assert str(sent.url) == CHAT


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"base_url": "ftp://gpu-box"}, "base_url"),
        ({"keep_alive": "ten minutes"}, "keep_alive"),
        ({"num_ctx": 0}, "num_ctx"),
        ({"think": "extreme"}, "think"),
        ({"model": ""}, "model"),
        ({"start_timeout": 0}, "start_timeout"),
        ({"modle": "typo"}, "modle"),
    ],
)
def test_invalid_settings_name_the_field(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        OllamaBackendConfig(**settings)
    assert raised.value.field == field


def test_a_bare_number_keep_alive_is_seconds() -> None:
    # Ollama refuses "300" (a Go duration needs a unit): sent as the number 300.
    assert OllamaBackendConfig(keep_alive="300").keep_alive == 300.0
    assert OllamaBackendConfig(keep_alive="1h30m").keep_alive == "1h30m"


async def test_created_backends_stream_whatever_wraps_them(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=CHAT, headers=NDJSON, content=text_stream("Done."))
    async with plugin.create(base_url=BASE) as made:
        assert isinstance(made.inner, OllamaBackend)
        response = await (await made.complete_stream(REQUEST)).collect()
    assert response.text == "Done."
    assert response.finish_reason is FinishReason.STOP
    assert response.usage == USAGE
