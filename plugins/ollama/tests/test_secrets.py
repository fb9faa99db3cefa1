"""An API key never shows: not in reprs, not in errors, not even when the server echoes it.

A local Ollama needs no key; ollama.com, or a proxy in front of a server, takes one as a
bearer token (``api_key`` or ``OLLAMA_API_KEY``).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from pytest_httpx import HTTPXMock

from tachikoma_backend_ollama import OllamaBackend, OllamaBackendConfig, plugin
from tachikoma_backend_ollama._scripting import chat_lines, ndjson_bytes
from tachikoma_backends_core import Backend, BackendError, CompletionRequest, Message

KEY = "SENTINEL-ollama-key-9f3e-do-not-leak"
BASE = "http://ollama.secrets:11434"
REQUEST = CompletionRequest(messages=[Message.user("Hi")])


@pytest.fixture(autouse=True)
def no_provider_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in OllamaBackendConfig.environment_variables().values():
        monkeypatch.delenv(variable, raising=False)


def settings() -> dict[str, Any]:
    return {"api_key": SecretStr(KEY), "base_url": BASE}


def assert_hidden(error: BaseException) -> None:
    texts = [str(error), repr(error), str(error.args)]
    if isinstance(error, BackendError):
        texts += [error.message, str(error.provider_error_type), str(error.request_id)]
        texts += [str(getattr(error, name, None)) for name in ("field", "problems")]
    for text in texts:
        assert KEY not in text


async def read_all(backend: OllamaBackend) -> None:
    await (await backend.complete_stream(REQUEST)).collect()


async def pull_all(backend: OllamaBackend) -> None:
    async for _event in backend.pull_model("llama3.2"):
        pass


def test_config_repr_str_and_dump_hide_the_key() -> None:
    config = OllamaBackendConfig(**settings())
    for text in (repr(config), str(config), config.model_dump_json(), str(config.model_dump())):
        assert KEY not in text


def test_a_key_from_the_environment_is_hidden_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_API_KEY", KEY)
    config = plugin.configure()
    assert config.api_key is not None
    assert config.api_key.get_secret_value() == KEY
    assert KEY not in repr(config)


def test_backend_repr_and_info_hide_the_key() -> None:
    created: Backend = plugin.create(**settings())
    direct: Backend = OllamaBackend(OllamaBackendConfig(**settings()))
    for backend in (created, direct):
        texts = (repr(backend), str(backend), repr(backend.info), backend.info.model_dump_json())
        for text in texts:
            assert KEY not in text


@pytest.mark.parametrize(
    "bad",
    [{"timeout": "soon"}, {"keep_alive": "forever"}, {"base_url": "ftp://x"}, {"num_ctx": -1}],
)
def test_invalid_config_does_not_echo_the_key(bad: dict[str, Any]) -> None:
    with pytest.raises(BackendError) as raised:
        OllamaBackendConfig(**{**settings(), **bad})
    assert_hidden(raised.value)


def test_a_key_smuggled_in_extra_headers_is_refused_unechoed() -> None:
    with pytest.raises(BackendError) as raised:
        OllamaBackendConfig(base_url=BASE, extra_headers={"Authorization": f"Bearer {KEY}"})
    assert_hidden(raised.value)


@pytest.mark.anyio
@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500, 503])
async def test_an_error_body_echoing_the_key_is_redacted(
    httpx_mock: HTTPXMock, status: int
) -> None:
    echo = {"error": f"invalid token {KEY}: unauthorized"}
    httpx_mock.add_response(status_code=status, json=echo, headers={"x-request-id": KEY})
    async with OllamaBackend(OllamaBackendConfig(**settings())) as backend:
        with pytest.raises(BackendError) as raised:
            await backend.complete(REQUEST)
    assert_hidden(raised.value)
    assert "[REDACTED]" in raised.value.message


@pytest.mark.anyio
async def test_a_plain_text_error_echoing_the_key_is_redacted(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=401, text=f"<html>bad bearer {KEY}</html>")
    async with OllamaBackend(OllamaBackendConfig(**settings())) as backend:
        with pytest.raises(BackendError) as raised:
            await backend.complete_stream(REQUEST)
    assert_hidden(raised.value)


@pytest.mark.anyio
@pytest.mark.parametrize("first", [True, False], ids=["instead-of-first-line", "mid-stream"])
async def test_a_stream_error_line_echoing_the_key_is_redacted(
    httpx_mock: HTTPXMock, first: bool
) -> None:
    opening = [] if first else chat_lines(model="llama3.2", text="Once upon a time")[:1]
    error = {"error": f"token {KEY} was revoked"}
    httpx_mock.add_response(content=ndjson_bytes([*opening, error]))
    async with OllamaBackend(OllamaBackendConfig(**settings())) as backend:
        with pytest.raises(BackendError) as raised:
            await read_all(backend)
    assert_hidden(raised.value)


@pytest.mark.anyio
async def test_a_pull_error_line_echoing_the_key_is_redacted(httpx_mock: HTTPXMock) -> None:
    lines = [{"status": "pulling manifest"}, {"error": f"pull model manifest: token {KEY}"}]
    httpx_mock.add_response(content=ndjson_bytes(lines))
    async with OllamaBackend(OllamaBackendConfig(**settings())) as backend:
        with pytest.raises(BackendError) as raised:
            await pull_all(backend)
    assert_hidden(raised.value)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError],
    ids=["connect", "read-timeout", "protocol"],
)
async def test_transport_errors_do_not_show_the_key(
    httpx_mock: HTTPXMock, error: type[httpx.TransportError]
) -> None:
    httpx_mock.add_exception(error(f"failed while sending {KEY}"))
    async with OllamaBackend(OllamaBackendConfig(**settings())) as backend:
        with pytest.raises(BackendError) as raised:
            await backend.complete(REQUEST)
    assert_hidden(raised.value)
