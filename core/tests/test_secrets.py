"""No secret shows in a config's or backend's repr/str, nor in any error (sentinel key)."""

from __future__ import annotations

import traceback
from typing import Annotated

import pytest
from pydantic import Field, SecretStr

from tachikoma_backends_core import (
    AuthenticationError,
    Backend,
    BackendInfo,
    BackendPlugin,
    CompletionRequest,
    CompletionResponse,
    CompletionStream,
    ConfigurationError,
    EnvVar,
    PluginConfig,
)
from tachikoma_backends_core.errors import register_secret

SENTINEL = "sk-ant-SENTINEL-5f2a9c0e-never-print-me"


class AcmeConfig(PluginConfig):
    api_key: Annotated[SecretStr | None, EnvVar("ACME_TEST_API_KEY")] = None
    base_url: Annotated[str, EnvVar("ACME_TEST_BASE_URL")] = "https://api.acme.invalid"
    max_retries: int = Field(default=2, ge=0)


class AcmeBackend(Backend):
    """Pretends to be a provider that echoes the key in its 401 body, as some do."""

    def __init__(self, config: AcmeConfig) -> None:
        self.config = config

    @property
    def info(self) -> BackendInfo:
        return BackendInfo.model_validate(
            {
                "name": "acme",
                "version": "1",
                "default_model": "acme-1",
                "capabilities": {"max_context_tokens": 1000, "max_output_tokens": 100},
            }
        )

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        key = self.config.api_key.get_secret_value() if self.config.api_key else ""
        raise AuthenticationError(f"Incorrect API key provided: {key}", status_code=401)

    async def complete_stream(self, request: CompletionRequest) -> CompletionStream:
        return CompletionStream.from_chunks([], model="acme-1")

    async def health_check(self) -> bool:
        return False


PLUGIN = BackendPlugin(name="acme", config_model=AcmeConfig, factory=AcmeBackend)


def _shown(obj: object) -> str:
    return f"{obj!r} {obj!s}"


def test_config_and_backend_never_show_the_key() -> None:
    managed = PLUGIN.create(api_key=SENTINEL)
    backend = managed.inner
    assert isinstance(backend, AcmeBackend)
    assert backend.config.api_key is not None
    assert backend.config.api_key.get_secret_value() == SENTINEL
    for obj in (backend.config, backend, managed, PLUGIN, backend.config.model_dump_json()):
        assert SENTINEL not in _shown(obj)


def test_key_is_read_from_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_TEST_API_KEY", SENTINEL)
    config = PLUGIN.configure()
    assert config.api_key is not None
    assert config.api_key.get_secret_value() == SENTINEL
    assert AcmeConfig.environment_variables() == {
        "api_key": "ACME_TEST_API_KEY",
        "base_url": "ACME_TEST_BASE_URL",
    }
    assert PLUGIN.configure(api_key="explicit-wins-0000").api_key == SecretStr("explicit-wins-0000")


@pytest.mark.anyio
async def test_provider_errors_echoing_the_key_are_redacted() -> None:
    backend = PLUGIN.create(api_key=SENTINEL)
    with pytest.raises(AuthenticationError) as raised:
        await backend.complete(CompletionRequest.model_validate({"messages": [{"role": "user"}]}))
    formatted = "".join(traceback.format_exception(raised.value))
    assert SENTINEL not in formatted
    assert "[REDACTED]" in raised.value.message


@pytest.mark.parametrize(
    "settings",
    [
        {"api_key": SENTINEL, "max_retries": -1},  # another field invalid
        {"api_key": SENTINEL, "api_kye": SENTINEL},  # a typo repeating the key
        {"api_key": [SENTINEL]},  # the key itself of the wrong type
    ],
    ids=["other-field", "typo", "wrong-type"],
)
def test_configuration_errors_never_echo_input(settings: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError) as raised:
        PLUGIN.create(**settings)
    formatted = "".join(traceback.format_exception(raised.value))
    assert SENTINEL not in formatted
    assert raised.value.field in {"max_retries", "api_kye", "api_key"}


def test_provider_supplied_error_fields_are_redacted_too() -> None:
    register_secret(SENTINEL)
    error = AuthenticationError(
        "denied", provider_error_type=f"type {SENTINEL}", request_id=f"req-{SENTINEL}"
    )
    assert SENTINEL not in f"{error!r} {error!s} {error.request_id} {error.provider_error_type}"
