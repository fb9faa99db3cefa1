"""Credentials never show: not in reprs, not in errors, not even when the server echoes them.

Three kinds of credential: an OpenAI key (``Authorization: Bearer``), an Azure resource
key (``api-key``) and a Microsoft Entra token (a bearer token for Azure).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from pytest_httpx import HTTPXMock

from tachikoma_backend_openai import OpenAIBackend, OpenAIBackendConfig, plugin
from tachikoma_backends_core import Backend, BackendError, CompletionRequest, Message

OPENAI_KEY = "sk-proj-SENTINEL-openai-4b1d-do-not-leak"
AZURE_KEY = "SENTINELazure0key5e2c9do0not0leak"
ENTRA_TOKEN = "eyJ0eXAi.SENTINEL-entra-token-77aa.do-not-leak"
SECRETS = (OPENAI_KEY, AZURE_KEY, ENTRA_TOKEN)
BASE = "http://openai.secrets/v1"
AZURE = "https://secrets.openai.azure.com"
REQUEST = CompletionRequest(messages=[Message.user("Hi")])

# Each way to authenticate: its settings, and the credential it sends.
CREDENTIALS: dict[str, tuple[dict[str, Any], str]] = {
    "openai": ({"api_key": SecretStr(OPENAI_KEY), "base_url": BASE}, OPENAI_KEY),
    "azure-key": (
        {"azure_endpoint": AZURE, "azure_api_key": SecretStr(AZURE_KEY)},
        AZURE_KEY,
    ),
    "azure-dated-key": (
        {
            "azure_endpoint": AZURE,
            "azure_api_key": SecretStr(AZURE_KEY),
            "api_version": "2024-10-21",
            "azure_deployment": "dep-1",
        },
        AZURE_KEY,
    ),
    "entra-token": (
        {"azure_endpoint": AZURE, "azure_ad_token": SecretStr(ENTRA_TOKEN)},
        ENTRA_TOKEN,
    ),
}


@pytest.fixture(autouse=True)
def no_provider_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in OpenAIBackendConfig.environment_variables().values():
        monkeypatch.delenv(variable, raising=False)


def all_settings() -> dict[str, Any]:
    """Every credential at once (the Entra token is the one Azure would send)."""
    return {
        "api_key": SecretStr(OPENAI_KEY),
        "azure_endpoint": AZURE,
        "azure_api_key": SecretStr(AZURE_KEY),
        "azure_ad_token": SecretStr(ENTRA_TOKEN),
    }


def assert_hidden(error: BackendError) -> None:
    texts = [str(error), repr(error), error.message, str(error.args)]
    texts += [str(getattr(error, name, None)) for name in ("field", "problems")]
    texts += [str(error.provider_error_type), str(error.request_id)]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_config_repr_str_and_dump_hide_every_credential() -> None:
    config = OpenAIBackendConfig(**all_settings())
    for text in (repr(config), str(config), config.model_dump_json(), str(config.model_dump())):
        for secret in SECRETS:
            assert secret not in text


@pytest.mark.parametrize("kind", list(CREDENTIALS))
def test_backend_repr_and_info_hide_the_credential(kind: str) -> None:
    settings, _secret = CREDENTIALS[kind]
    created: Backend = plugin.create(**settings)
    direct: Backend = OpenAIBackend(OpenAIBackendConfig(**settings))
    for backend in (created, direct):
        texts = (repr(backend), str(backend), repr(backend.info), backend.info.model_dump_json())
        for text in texts:
            for secret in SECRETS:
                assert secret not in text


@pytest.mark.parametrize(
    "bad",
    [{"timeout": "soon"}, {"azure_endpoint": "foo"}, {"extra_headers": {"api-key": AZURE_KEY}}],
)
def test_invalid_config_does_not_echo_a_credential(bad: dict[str, Any]) -> None:
    with pytest.raises(BackendError) as raised:
        OpenAIBackendConfig(**{**all_settings(), **bad})
    assert_hidden(raised.value)


@pytest.mark.anyio
@pytest.mark.parametrize("kind", list(CREDENTIALS))
@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500, 503])
async def test_an_error_body_echoing_the_credential_is_redacted(
    httpx_mock: HTTPXMock, kind: str, status: int
) -> None:
    settings, secret = CREDENTIALS[kind]
    echo = {
        "error": {
            "message": f"Incorrect API key provided: {secret}. You can find your API key at ...",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    httpx_mock.add_response(status_code=status, json=echo, headers={"x-request-id": secret})
    async with OpenAIBackend(OpenAIBackendConfig(**settings)) as backend:
        with pytest.raises(BackendError) as raised:
            await backend.complete(REQUEST)
    assert_hidden(raised.value)
    assert "[REDACTED]" in raised.value.message


@pytest.mark.anyio
@pytest.mark.parametrize("where", ["param", "code", "type"])
async def test_every_field_of_an_error_body_echoing_the_key_is_redacted(
    httpx_mock: HTTPXMock, where: str
) -> None:
    # A proxy or compatible server may put anything anywhere; the key must not come out.
    error = {"message": "bad request", "type": "invalid_request_error", "param": None, "code": None}
    error[where] = OPENAI_KEY
    httpx_mock.add_response(status_code=400, json={"error": error})
    settings, _secret = CREDENTIALS["openai"]
    async with OpenAIBackend(OpenAIBackendConfig(**settings)) as backend:
        with pytest.raises(BackendError) as raised:
            await backend.complete(REQUEST)
    assert_hidden(raised.value)


@pytest.mark.anyio
@pytest.mark.parametrize("kind", list(CREDENTIALS))
async def test_a_stream_error_event_echoing_the_credential_is_redacted(
    httpx_mock: HTTPXMock, kind: str
) -> None:
    settings, secret = CREDENTIALS[kind]
    event = (
        '{"error": {"message": "key ' + secret + ' was revoked", "type": "invalid_request_error",'
        ' "param": null, "code": "invalid_api_key"}}'
    )
    httpx_mock.add_response(content=f"data: {event}\n\ndata: [DONE]\n\n".encode())
    async with OpenAIBackend(OpenAIBackendConfig(**settings)) as backend:
        with pytest.raises(BackendError) as raised:
            await backend.complete_stream(REQUEST)
    assert_hidden(raised.value)


@pytest.mark.anyio
@pytest.mark.parametrize("kind", list(CREDENTIALS))
@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError],
    ids=["connect", "read-timeout", "protocol"],
)
async def test_transport_errors_do_not_show_the_credential(
    httpx_mock: HTTPXMock, kind: str, error: type[httpx.TransportError]
) -> None:
    settings, secret = CREDENTIALS[kind]
    httpx_mock.add_exception(error(f"failed while sending {secret}"))
    async with OpenAIBackend(OpenAIBackendConfig(**settings)) as backend:
        with pytest.raises(BackendError) as raised:
            await backend.complete(REQUEST)
    assert_hidden(raised.value)
