"""The API key never shows: not in reprs, not in errors, not even when the API echoes it."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr
from pytest_httpx import HTTPXMock

from tachikoma_backend_claude import ClaudeBackend, ClaudeBackendConfig, plugin
from tachikoma_backends_core import BackendError, CompletionRequest, Message

SENTINEL = "sk-ant-api03-SENTINEL-7f3a9c-do-not-leak"
BASE = "http://claude.secrets"
REQUEST = CompletionRequest(messages=[Message.user("Hi")])


def test_config_repr_str_and_dump_hide_the_key() -> None:
    config = ClaudeBackendConfig(api_key=SecretStr(SENTINEL))
    for text in (repr(config), str(config), config.model_dump_json(), str(config.model_dump())):
        assert SENTINEL not in text


def test_backend_repr_and_info_hide_the_key() -> None:
    backend = plugin.create(api_key=SENTINEL)
    for text in (repr(backend), str(backend), repr(backend.info), backend.info.model_dump_json()):
        assert SENTINEL not in text


def test_invalid_config_does_not_echo_the_key() -> None:
    with pytest.raises(BackendError) as raised:
        ClaudeBackendConfig(api_key=SecretStr(SENTINEL), timeout="soon")  # type: ignore[arg-type]
    assert SENTINEL not in str(raised.value)
    assert SENTINEL not in repr(raised.value)


@pytest.mark.anyio
@pytest.mark.parametrize("status", [400, 401, 403, 429, 500, 529])
async def test_an_error_body_echoing_the_key_is_redacted(
    httpx_mock: HTTPXMock, status: int
) -> None:
    echo = {
        "type": "error",
        "error": {"type": "authentication_error", "message": f"invalid x-api-key: {SENTINEL}"},
    }
    httpx_mock.add_response(status_code=status, json=echo, headers={"request-id": SENTINEL})
    async with ClaudeBackend(
        ClaudeBackendConfig(api_key=SecretStr(SENTINEL), base_url=BASE)
    ) as backend:
        with pytest.raises(BackendError) as raised:
            await backend.complete(REQUEST)
    error = raised.value
    for text in (str(error), repr(error), error.message, str(error.args)):
        assert SENTINEL not in text
    assert "[REDACTED]" in error.message


@pytest.mark.anyio
async def test_a_stream_error_event_echoing_the_key_is_redacted(httpx_mock: HTTPXMock) -> None:
    event = '{"type": "error", "error": {"type": "api_error", "message": "key ' + SENTINEL + '"}}'
    httpx_mock.add_response(content=f"event: error\ndata: {event}\n\n".encode())
    async with ClaudeBackend(
        ClaudeBackendConfig(api_key=SecretStr(SENTINEL), base_url=BASE)
    ) as backend:
        with pytest.raises(BackendError) as raised:
            await backend.complete_stream(REQUEST)
    assert SENTINEL not in str(raised.value)


@pytest.mark.anyio
async def test_transport_errors_do_not_show_the_key(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ConnectError(f"refused while sending {SENTINEL}"))
    async with ClaudeBackend(
        ClaudeBackendConfig(api_key=SecretStr(SENTINEL), base_url=BASE)
    ) as backend:
        with pytest.raises(BackendError) as raised:
            await backend.complete(REQUEST)
    assert SENTINEL not in str(raised.value)
    assert SENTINEL not in repr(raised.value)
