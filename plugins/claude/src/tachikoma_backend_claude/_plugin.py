"""The ``claude`` entry point: config model and factory only.

Imports core, pydantic and the HTTP kit's config, nothing else: listing plugins must not
pay for httpx or the backend, which the factory imports when a backend is actually made.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, ClassVar

from pydantic import Field, SecretStr

from tachikoma_backends_core import BackendPlugin, EnvVar, RateLimitConfig
from tachikoma_backends_core.http import HttpPluginConfig

from ._models import DEFAULT_MODEL

if TYPE_CHECKING:
    from ._backend import ClaudeBackend

__all__ = ["ClaudeBackendConfig", "plugin"]


class ClaudeBackendConfig(HttpPluginConfig):
    """Settings for ``registry.create("claude", ...)``.

    The settings every HTTP provider has (timeouts, ``max_retries``, ``extra_headers``,
    pool, proxy and CA) are `HttpPluginConfig`'s; these are Claude's own:

    Attributes:
        api_key: the Anthropic API key (``ANTHROPIC_API_KEY``); required to create a backend.
        base_url: where the Messages API lives (``ANTHROPIC_BASE_URL``), e.g. a proxy.
        model: the model used when a request names none.
        anthropic_version: the ``anthropic-version`` header (the API's wire version).
        max_tokens: ``max_tokens`` for requests that set none (the API requires one),
            capped at the model's documented output limit.

    Examples:
        >>> config = ClaudeBackendConfig(api_key="sk-ant-example-key", max_retries=0)
        >>> config.api_key
        SecretStr('**********')
        >>> ClaudeBackendConfig.environment_variables()
        {'api_key': 'ANTHROPIC_API_KEY', 'base_url': 'ANTHROPIC_BASE_URL'}
    """

    # Secrets go through api_key (a SecretStr), the version through anthropic_version.
    reserved_headers: ClassVar[Mapping[str, str]] = MappingProxyType(
        {
            "x-api-key": "api_key",
            "authorization": "api_key",
            "anthropic-version": "anthropic_version",
        }
    )

    api_key: Annotated[SecretStr | None, EnvVar("ANTHROPIC_API_KEY")] = None
    base_url: Annotated[str, EnvVar("ANTHROPIC_BASE_URL")] = "https://api.anthropic.com"
    model: str = Field(default=DEFAULT_MODEL, min_length=1)
    anthropic_version: str = Field(default="2023-06-01", min_length=1)
    max_tokens: int = Field(default=4096, ge=1)


def _create(config: ClaudeBackendConfig) -> ClaudeBackend:
    from ._backend import ClaudeBackend  # httpx and the wire layer load only now

    return ClaudeBackend(config)


plugin = BackendPlugin(
    name="claude",
    config_model=ClaudeBackendConfig,
    factory=_create,
    harness="tachikoma_backend_claude.harness:ClaudeHarness",
    description="Anthropic Claude via the Messages API (streaming, tools, vision).",
    rate_limit=RateLimitConfig.claude_default,
)
