"""The ``claude`` entry point: config model and factory only.

Imports core and pydantic, nothing else: listing plugins must not pay for httpx or the
backend, which the factory imports when a backend is actually made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field, SecretStr, field_validator

from tachikoma_backends_core import BackendPlugin, EnvVar, PluginConfig

from ._models import DEFAULT_MODEL

if TYPE_CHECKING:
    from ._backend import ClaudeBackend

__all__ = ["ClaudeBackendConfig", "plugin"]

# Headers the backend owns: secrets go through api_key (a SecretStr), the version
# through anthropic_version.
_RESERVED_HEADERS = frozenset({"x-api-key", "authorization", "anthropic-version"})


class ClaudeBackendConfig(PluginConfig):
    """Settings for ``registry.create("claude", ...)``.

    Attributes:
        api_key: the Anthropic API key (``ANTHROPIC_API_KEY``); required to create a backend.
        base_url: where the Messages API lives (``ANTHROPIC_BASE_URL``), e.g. a proxy.
        model: the model used when a request names none.
        anthropic_version: the ``anthropic-version`` header (the API's wire version).
        max_tokens: ``max_tokens`` for requests that set none (the API requires one),
            capped at the model's documented output limit.
        timeout: seconds to wait for each read, write and pool slot.
        connect_timeout: seconds to wait for a connection.
        max_retries: extra attempts the core's retry policy makes for retryable errors
            (``0`` disables retries; the backend itself never retries).
        extra_headers: sent with every request, e.g. ``{"anthropic-beta": "..."}``.

    Examples:
        >>> config = ClaudeBackendConfig(api_key="sk-ant-example-key", max_retries=0)
        >>> config.api_key
        SecretStr('**********')
        >>> ClaudeBackendConfig.environment_variables()
        {'api_key': 'ANTHROPIC_API_KEY', 'base_url': 'ANTHROPIC_BASE_URL'}
    """

    api_key: Annotated[SecretStr | None, EnvVar("ANTHROPIC_API_KEY")] = None
    base_url: Annotated[str, EnvVar("ANTHROPIC_BASE_URL")] = "https://api.anthropic.com"
    model: str = Field(default=DEFAULT_MODEL, min_length=1)
    anthropic_version: str = Field(default="2023-06-01", min_length=1)
    max_tokens: int = Field(default=4096, ge=1)
    timeout: float = Field(default=600.0, gt=0)
    connect_timeout: float = Field(default=5.0, gt=0)
    max_retries: int = Field(default=2, ge=0)
    extra_headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("extra_headers")
    @classmethod
    def _no_reserved_headers(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = sorted(name for name in value if name.lower() in _RESERVED_HEADERS)
        if reserved:
            raise ValueError(
                f"{', '.join(reserved)} cannot be set here: use api_key / anthropic_version"
            )
        return value


def _create(config: ClaudeBackendConfig) -> ClaudeBackend:
    from ._backend import ClaudeBackend  # httpx and the wire layer load only now

    return ClaudeBackend(config)


plugin = BackendPlugin(
    name="claude",
    config_model=ClaudeBackendConfig,
    factory=_create,
    harness="tachikoma_backend_claude.harness:ClaudeHarness",
    description="Anthropic Claude via the Messages API (streaming, tools, vision).",
)
