"""HttpPluginConfig: the settings every HTTP provider shares, and what they refuse."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, ClassVar

import pytest
from pydantic import SecretStr

from tachikoma_backend_mock import MockBackend
from tachikoma_backends_core import BackendPlugin, ConfigurationError, EnvVar, PluginConfig
from tachikoma_backends_core.http import HttpPluginConfig


class AcmeConfig(HttpPluginConfig):
    reserved_headers: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"authorization": "api_key", "acme-version": "acme_version"}
    )

    api_key: Annotated[SecretStr | None, EnvVar("ACME_API_KEY")] = None
    base_url: Annotated[str, EnvVar("ACME_BASE_URL")] = "https://api.acme.example"
    model: str = "acme-1"
    acme_version: str = "2026-01-01"


def test_defaults_are_the_official_sdks() -> None:
    config = AcmeConfig()
    assert (config.timeout, config.connect_timeout, config.max_retries) == (600.0, 5.0, 2)
    assert (config.read_timeout, config.pool_timeout) == (None, None)
    assert (config.max_connections, config.keepalive_connections) == (1000, 100)
    assert AcmeConfig(max_connections=20).keepalive_connections == 20
    assert (config.proxy, config.ca_bundle, config.verify, config.trust_env) == (
        None,
        None,
        True,
        True,
    )


def test_base_url_must_be_http_and_loses_its_trailing_slash() -> None:
    assert AcmeConfig(base_url="http://127.0.0.1:8080/").base_url == "http://127.0.0.1:8080"
    with pytest.raises(ConfigurationError) as raised:
        AcmeConfig(base_url="api.acme.example")
    assert raised.value.field == "base_url"


@pytest.mark.parametrize("header", ["Authorization", "ACME-VERSION"])
def test_headers_the_backend_owns_are_refused_naming_the_setting(header: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        AcmeConfig(extra_headers={header: "Bearer sk-acme-smuggled-0000"})
    assert raised.value.field == "extra_headers"
    assert "use api_key" in str(raised.value) or "use acme_version" in str(raised.value)
    assert "sk-acme-smuggled" not in str(raised.value)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"timeout": 0}, "timeout"),
        ({"read_timeout": -1}, "read_timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_connections": 0}, "max_connections"),
        ({"max_connections": 5, "max_keepalive_connections": 6}, "max_keepalive_connections"),
        ({"modle": "typo"}, "modle"),
    ],
)
def test_invalid_settings_name_the_field(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        AcmeConfig(**settings)
    assert raised.value.field == field


def test_a_missing_key_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACME_API_KEY", raising=False)
    with pytest.raises(ConfigurationError) as raised:
        AcmeConfig().require_api_key("acme", label="Acme")
    assert raised.value.message == "no Acme API key: pass api_key=... or set ACME_API_KEY"
    assert (raised.value.field, raised.value.provider) == ("api_key", "acme")
    with pytest.raises(ConfigurationError, match="no Acme API key"):
        AcmeConfig(api_key=SecretStr("")).require_api_key("acme", label="Acme")
    monkeypatch.setenv("ACME_API_KEY", "sk-acme-from-env-0000")
    assert AcmeConfig().require_api_key("acme", label="Acme") == "sk-acme-from-env-0000"


def test_a_provider_without_a_key_variable_says_pass_it() -> None:
    class Local(HttpPluginConfig):
        base_url: str = "http://127.0.0.1:11434"
        model: str = "local"

    with pytest.raises(ConfigurationError) as raised:
        Local().require_api_key("local", label="Local")
    assert raised.value.message == "no Local API key: pass api_key=..."


def test_the_proxy_is_a_secret() -> None:
    config = AcmeConfig(proxy=SecretStr("http://user:proxy-pass-0000@proxy.corp:3128"))
    assert "proxy-pass-0000" not in repr(config)
    assert "proxy-pass-0000" not in str(config)


def test_every_plugin_config_has_max_retries_and_create_sizes_the_loop_with_it() -> None:
    class Bare(PluginConfig):
        pass

    plugin = BackendPlugin(name="bare", config_model=Bare, factory=lambda config: MockBackend())
    assert plugin.create().retry_policy.max_attempts == 1, "0 retries unless asked"
    assert plugin.create(max_retries=3).retry_policy.max_attempts == 4
    http_plugin = BackendPlugin(
        name="acme", config_model=AcmeConfig, factory=lambda config: MockBackend()
    )
    assert http_plugin.create().retry_policy.max_attempts == 3, "HTTP providers: 2 retries"
