"""The settings every HTTP provider shares, declared once.

A provider's config subclasses `HttpPluginConfig` and adds only what is its own (a
version header, a default ``max_tokens``), giving ``api_key``, ``base_url`` and ``model``
their defaults and environment variables:

```python
class AcmeConfig(HttpPluginConfig):
    api_key: Annotated[SecretStr | None, EnvVar("ACME_API_KEY")] = None
    base_url: Annotated[str, EnvVar("ACME_BASE_URL")] = "https://api.acme.example"
    model: str = "acme-1"
```

This module imports pydantic and core only, never httpx: a plugin's entry point module
imports its config, and loading a plugin must stay cheap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from tachikoma_backends_core.errors import ConfigurationError
from tachikoma_backends_core.plugin import PluginConfig

__all__ = ["HttpPluginConfig"]

_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
_DEFAULT_KEEPALIVE = 100  # the official SDKs' (with 1000 connections)


class HttpPluginConfig(PluginConfig):
    """Settings of an HTTP provider plugin: where, who, how long, how many, through what.

    Attributes:
        api_key: the provider's key (``None`` where the provider needs none).
        base_url: where the API lives (``http://`` or ``https://``; a trailing ``/`` is
            dropped), e.g. a gateway or a local server.
        model: the model used when a request names none.
        timeout: seconds allowed for sending a request and for each read of the answer
            (a non-streamed answer is one long read: the default, 600, is the official
            SDKs'), and for a free connection unless ``pool_timeout`` says otherwise.
        connect_timeout: seconds allowed to establish a connection.
        read_timeout: the per-read idle timeout: the longest silence tolerated between
            two pieces of an answer, streamed or not. ``None`` uses ``timeout``; lower it
            to notice a stalled stream sooner.
        pool_timeout: seconds to wait for a free connection when ``max_connections``
            are all busy (``None``: ``timeout``). Running out is a retryable
            ``BackendTimeoutError``.
        max_retries: retries the core's retry loop makes for a retryable failure
            (``0`` disables them); the backend itself never retries.
        extra_headers: sent with every request (``{"x-team": "search"}``); the headers
            that carry credentials or versions are refused, use their settings.
        max_connections: the most connections open at once (the official SDKs' 1000).
        max_keepalive_connections: idle connections kept for reuse (``None``: the SDKs'
            100, or ``max_connections`` if that is lower).
        proxy: a proxy URL for every request (``http://``, ``https://`` or ``socks5://``;
            credentials inside it are treated as a secret). Without it, and with
            ``trust_env``, ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` and ``NO_PROXY``
            apply, as in httpx.
        ca_bundle: a CA bundle file (or a directory of certificates) to verify the
            server with, e.g. a corporate root. Without it, and with ``trust_env``,
            ``SSL_CERT_FILE``/``SSL_CERT_DIR`` apply, else certifi's bundle.
        verify: verify the server's TLS certificate. Turn off only for a local test
            server: a man in the middle could then read the API key.
        trust_env: honour the proxy and certificate environment variables above.
    """

    #: Headers the backend sets itself, each with the setting to use instead.
    reserved_headers: ClassVar[Mapping[str, str]] = MappingProxyType({"authorization": "api_key"})

    api_key: SecretStr | None = None
    base_url: str
    model: str = Field(min_length=1)
    timeout: float = Field(default=600.0, gt=0)
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float | None = Field(default=None, gt=0)
    pool_timeout: float | None = Field(default=None, gt=0)
    max_retries: int = Field(default=2, ge=0)
    extra_headers: dict[str, str] = Field(default_factory=dict)
    max_connections: int = Field(default=1000, ge=1)
    max_keepalive_connections: int | None = Field(default=None, ge=0)
    proxy: SecretStr | None = None
    ca_bundle: str | None = None
    verify: bool = True
    trust_env: bool = True

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("extra_headers")
    @classmethod
    def _no_reserved_headers(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = sorted(name for name in value if name.lower() in cls.reserved_headers)
        if reserved:
            settings = sorted({cls.reserved_headers[name.lower()] for name in reserved})
            raise ValueError(
                f"{', '.join(reserved)} cannot be set here: use {' / '.join(settings)}"
            )
        return value

    @field_validator("proxy")
    @classmethod
    def _proxy_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parts = urlsplit(value.get_secret_value())
            if parts.scheme not in _PROXY_SCHEMES or not parts.hostname:
                raise ValueError(f"must be a URL starting with {', '.join(_PROXY_SCHEMES)}://")
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _existing_path(cls, value: str | None) -> str | None:
        if value is not None and not os.path.exists(value):
            raise ValueError("no such file or directory")
        return value

    @model_validator(mode="after")
    def _keepalive_within_pool(self) -> HttpPluginConfig:
        keepalive = self.max_keepalive_connections
        if keepalive is not None and keepalive > self.max_connections:
            raise ValueError(
                "max_keepalive_connections: must not exceed max_connections "
                f"({self.max_connections})"
            )
        return self

    @property
    def keepalive_connections(self) -> int:
        """The idle connections kept: ``max_keepalive_connections``, or its default."""
        if self.max_keepalive_connections is not None:
            return self.max_keepalive_connections
        return min(_DEFAULT_KEEPALIVE, self.max_connections)

    def require_api_key(self, provider: str, *, label: str) -> str:
        """The API key's value; a `ConfigurationError` saying how to give one if missing.

        Call it when the backend is built, so a missing key fails ``registry.create``
        rather than the first request.
        """
        if self.api_key is None or not self.api_key.get_secret_value():
            variable = self.environment_variables().get("api_key")
            where = f"pass api_key=... or set {variable}" if variable else "pass api_key=..."
            raise ConfigurationError(
                f"no {label} API key: {where}", field="api_key", provider=provider
            )
        return self.api_key.get_secret_value()
